"""Every impl's validation catches a wrong result: AIBENCH_TEST_FAULT (faults.py) corrupts
what the impl computed, after it computed it, and the case must fail (exit 1 in a run).

The impls come from the suites' IMPLS tables, so a new impl cannot be added without
either a case here (CASES, by suite) or a stated reason it cannot be fault-injected
(NOT_VALIDATED)."""

import json
import subprocess
import sys

import pytest
from mpi_helpers import clean_env, needs_mpi

from aibench.faults import ENV, FACTOR_ENV, corrupt, fault_for
from aibench.harness import SamplingPolicy
from aibench.suites import all_suites
from aibench.suites.base import RunContext, impl_infos
from aibench.targets import cpu as cpu_target
from aibench.targets import parse_target

# A small case per suite (every impl of the suite runs it).
CASES = {
    "gemm": {"m": 64, "n": 48, "k": 40, "dtype": "fp32"},
    "power": {"m": 64, "n": 48, "k": 40, "dtype": "fp32"},
    "attention": {"batch": 1, "heads": 4, "kv_heads": 2, "seqlen": 64, "kv_seqlen": 64, "head_dim": 32,
                  "causal": True, "dtype": "fp32"},
    "storage": {"pattern": "seq", "bs": 1 << 20, "qd": 2, "threads": 1, "direct": 1},
    "objectstore": {"workload": "small", "size": 4096, "concurrency": 1},
    "interconnect": {"pattern": "allreduce", "size": 4004, "dtype": "fp32", "inplace": False},
    "memory": {"kernel": "triad", "size": 1 << 20, "node": 0},
}
# Impls whose data aibench does not check, and why (their figures are a peer's).
NOT_VALIDATED = {
    ("storage", "fio"): "a peer tool: fio reads the same file and aibench does not check fio's data",
}
KERNEL_KINDS = ("element", "nan", "scale")


def _impls(kinds=("cpu",)):
    """(suite, impl class) of every built-in suite's table on the given target kinds."""
    return [(name, cls) for name, suite in all_suites().items() if suite.package is None
            for cls in suite.IMPLS if set(cls.target_kinds) & set(kinds)]


def test_every_impl_has_a_fault_test():
    for suite, cls in _impls(("cpu", "cuda", "jax")):
        assert suite in CASES or (suite, cls.name) in NOT_VALIDATED, f"{suite} impl {cls.name}: no fault test"


def test_the_setting_is_parsed_strictly(monkeypatch):
    monkeypatch.setenv(ENV, "blas:element, aibench:nan")
    assert fault_for("blas") == "element" and fault_for("aibench") == "nan" and fault_for("torch") is None
    monkeypatch.setenv(ENV, "reduce")  # the old form: every impl
    assert fault_for("rma-ring") == "reduce"
    monkeypatch.setenv(ENV, "blas:typo")
    with pytest.raises(ValueError):
        fault_for("blas")


@pytest.mark.parametrize("fmt, dtype", [("fp32", "float32"), ("fp64", "float64"), ("fp16", "float16"),
                                        ("bf16", "uint16"), ("int32", "int32")])
@pytest.mark.parametrize("kind", KERNEL_KINDS)
def test_each_kind_changes_the_output(fmt, dtype, kind):
    import numpy as np

    from aibench.dtypes import bf16_bits

    values = np.random.default_rng(0).uniform(0.5, 60.0, (16, 8))
    out = bf16_bits(values.astype(np.float32)) if fmt == "bf16" else values.astype(dtype)
    before = out.copy()
    corrupt(out, fmt, kind)
    changed = int(np.count_nonzero(out != before))
    assert changed == 1 if kind != "scale" else changed > 1


def _run_in_process(suite_name, cls, target, monkeypatch, tmp_path, kind, budget_s=0.05):
    suite = all_suites()[suite_name]
    options = {"path": str(tmp_path), "file_size": 16 << 20} if suite_name == "storage" else {}
    monkeypatch.setenv(ENV, f"{cls.name}:{kind}")
    info = impl_infos([cls])[0]
    ctx = RunContext(target=target, policy=SamplingPolicy(budget_s=budget_s, warmup_s=0.01, settle_s=0.0), options=options)
    try:
        result, = suite.run_case(dict(CASES[suite_name]), info, ctx)
    finally:
        ctx.close()
    return result


@pytest.mark.parametrize("suite_name, cls", [p for p in _impls() if p[0] in ("gemm", "power", "attention")],
                         ids=lambda x: getattr(x, "name", x))
@pytest.mark.parametrize("kind", KERNEL_KINDS)
@pytest.mark.parametrize("dtype", ["fp32", "bf16", "int8"])
def test_a_corrupted_kernel_output_fails_its_case(suite_name, cls, kind, dtype, monkeypatch, tmp_path):
    """Every dtype the CPU runs, on every CPU: bf16 and int8 run widened where the CPU
    lacks the native instructions."""
    reason = cls.unavailable(parse_target("cpu"))
    if reason:
        pytest.skip(reason)
    if suite_name == "attention" and dtype == "int8":
        pytest.skip("attention has no int8")
    monkeypatch.setitem(CASES, suite_name, {**CASES[suite_name], "dtype": dtype})
    r = _run_in_process(suite_name, cls, parse_target("cpu"), monkeypatch, tmp_path, kind)
    if r.status == "skipped":  # only numpy's BLAS, which has no bf16 or int8 GEMM
        assert cls.name == "blas" and dtype in ("bf16", "int8"), (cls.name, dtype, r.validation.reason)
        pytest.skip(r.validation.reason)
    assert r.status == "failed" and "wrong result" in r.error and not r.metrics, (r.status, r.error)


# Suites whose figures have no independent bound yet, and why (their inflate test expects
# the case to pass with no bound recorded, which this table states instead of a skip).
NO_BOUND: dict[str, str] = {}
# The inflate fault's factor in these tests. faults.INFLATE_FACTOR (3) crosses the bound
# of a figure above a third of it, as on a quiet machine (the CLI check in docs); on a
# loaded shared machine a tiny GEMM can run at 0.01% of its bound, so the tests multiply
# by far more: what they prove is that every impl's figure reaches the bound check.
_TEST_INFLATE = 1e12


@pytest.mark.parametrize("suite_name, cls", [p for p in _impls() if p[0] != "interconnect"],
                         ids=lambda x: getattr(x, "name", x))
def test_an_inflated_rate_fails_its_case_through_the_bound(suite_name, cls, monkeypatch, tmp_path):
    """AIBENCH_TEST_FAULT=IMPL:inflate: validation passes, the rates are multiplied after
    measuring, and the case fails naming its bound (the interconnect impls: below, under MPI)."""
    reason = cls.unavailable(parse_target("cpu"))
    if reason:
        pytest.skip(reason)
    monkeypatch.setenv(FACTOR_ENV, str(_TEST_INFLATE))
    monkeypatch.setattr(cpu_target, "_FRESH_TRIES", 0)  # no second measurement of the bound: the figure is far above
    if suite_name == "memory":  # its bound is the DIMM table, which a VM lacks: a fixed one (test_memory_suite)
        from test_memory_suite import past_the_cache, with_dimm_table

        with_dimm_table(monkeypatch)
        past_the_cache(monkeypatch)
    if suite_name == "storage":
        from test_storage import _real_fs_dir

        if _real_fs_dir() is None:
            pytest.skip("no directory on a disk filesystem for O_DIRECT")
        import tempfile

        # Page-cache reads (direct=0): their bound, the memory copy bandwidth, holds on any
        # machine; direct reads are bounded only by a device link sysfs gives (a VM's
        # virtio disk has none), so a direct case here could record no bound at all.
        monkeypatch.setitem(CASES, "storage", {**CASES["storage"], "direct": 0})
        with tempfile.TemporaryDirectory(dir=_real_fs_dir()) as d:
            from pathlib import Path

            # a window of whole 0.1 s intervals: the reader's samples
            r = _run_in_process(suite_name, cls, parse_target("cpu"), monkeypatch, Path(d), "inflate", budget_s=0.3)
    else:
        r = _run_in_process(suite_name, cls, parse_target("cpu"), monkeypatch, tmp_path, "inflate")
    if suite_name in NO_BOUND:
        assert r.status == "passed" and r.bound is None, (r.status, r.error, r.bound)
        return
    assert r.status == "failed" and r.error.startswith("exceeds physical bound: "), (r.status, r.error)
    assert r.bound["source"] in r.error and not r.metrics


@pytest.mark.parametrize("suite_name, cls", [p for p in _impls(("jax",))], ids=lambda x: getattr(x, "name", x))
def test_a_corrupted_jax_output_fails_its_case(suite_name, cls, monkeypatch, tmp_path):
    pytest.importorskip("jax")
    target = parse_target("jax")
    reason = cls.unavailable(target)
    if reason:
        pytest.skip(reason)
    r = _run_in_process(suite_name, cls, target, monkeypatch, tmp_path, "element")
    assert r.status == "failed" and "wrong result" in r.error, (r.status, r.error)


@pytest.mark.gpu
@pytest.mark.parametrize("suite_name, cls", [p for p in _impls(("cuda",)) if p[0] in ("gemm", "attention")],
                         ids=lambda x: getattr(x, "name", x))
def test_a_corrupted_gpu_output_fails_its_case(suite_name, cls, monkeypatch, tmp_path):
    target = parse_target("cuda")
    reason = cls.unavailable(target)
    if reason:
        pytest.skip(reason)
    params = {**CASES[suite_name], "dtype": "bf16"}
    monkeypatch.setitem(CASES, suite_name, params)
    r = _run_in_process(suite_name, cls, target, monkeypatch, tmp_path, "element")
    assert r.status == "failed" and "wrong result" in r.error, (r.status, r.error)


@pytest.mark.parametrize("suite_name, cls", [p for p in _impls() if p[0] in ("storage", "objectstore")
                                             and p not in [(s, c) for s, c in _impls() if (s, c.name) in NOT_VALIDATED]],
                         ids=lambda x: getattr(x, "name", x))
def test_corrupted_data_read_fails_its_case(suite_name, cls, monkeypatch, tmp_path):
    from test_storage import _real_fs_dir

    reason = cls.unavailable(parse_target("cpu"))
    if reason:
        pytest.skip(reason)
    disk = _real_fs_dir() if suite_name == "storage" else tmp_path
    if disk is None:
        pytest.skip("no directory on a disk filesystem for O_DIRECT")
    import tempfile

    with tempfile.TemporaryDirectory(dir=disk) as d:
        from pathlib import Path

        r = _run_in_process(suite_name, cls, parse_target("cpu"), monkeypatch, Path(d), "element")
    assert r.status == "failed" and "differs from what aibench" in r.error and not r.metrics, (r.status, r.error)


def _host_interconnect_run(tmp_path, impls: list[str], size: str, fault_env: dict) -> list[dict]:
    """One 2-rank launch of every host all-reduce impl and the p2p matrix at `size`, under
    `fault_env`: it must exit 1, with a case of every impl; its cases."""
    out = tmp_path / "run.json"
    args = ["run", "--suite", "interconnect", "--param", f"size={size}", "--param", "pattern=allreduce,p2p",
            "--param", "dtype=fp32", "--param", "inplace=false", "--time-budget", "0.1", "--no-asv",
            "--output", str(out), "--ranks", "2"]
    for name in impls:
        args += ["--impl", name]
    p = subprocess.run([sys.executable, "-m", "aibench.cli", *args], env=clean_env(**fault_env), capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 1, p.stdout[-2000:] + p.stderr[-2000:]
    cases = json.loads(out.read_text())["cases"]
    assert {c["impl"] for c in cases if c["params"]["pattern"] == "allreduce"} == set(impls)
    return cases


@needs_mpi
def test_every_allreduce_and_the_p2p_check_catch_a_corrupted_result(tmp_path):
    """One launch: each host all-reduce impl with its own fault, and the p2p matrix."""
    impls = [cls.name for suite, cls in _impls() if suite == "interconnect"]
    kinds = {name: ("rank" if i % 2 else "element") for i, name in enumerate(impls)}
    cases = _host_interconnect_run(tmp_path, impls, "4004", {ENV: ",".join(f"{n}:{k}" for n, k in kinds.items())})
    for c in cases:
        assert c["status"] == "failed" and not c["metrics"], (c["case_id"], c["impl"], c["status"], c["error"])
        assert "wrong" in c["error"]


@pytest.mark.gpu
@needs_mpi
def test_gpu_allreduces_catch_a_corrupted_result(tmp_path):
    """NCCL and the CUDA-aware MPI_Allreduce: the same exact check, on the cuda target."""
    from aibench.targets.cuda import unavailable_reason

    if unavailable_reason(parse_target("cuda")):
        pytest.skip(unavailable_reason(parse_target("cuda")))
    out = tmp_path / "run.json"
    args = ["run", "--suite", "interconnect", "--target", "cuda", "--param", "size=4004", "--param", "dtype=fp32",
            "--param", "inplace=false", "--time-budget", "0.1", "--no-asv", "--output", str(out), "--ranks", "2",
            "--impl", "nccl", "--impl", "mpi"]
    env = clean_env(**{ENV: "nccl:element,mpi:rank"})
    p = subprocess.run([sys.executable, "-m", "aibench.cli", *args], env=env, capture_output=True, text=True,
                       timeout=600)
    cases = json.loads(out.read_text())["cases"]
    ran = [c for c in cases if c["status"] != "skipped"]
    assert ran, [c["validation"]["reason"] for c in cases]
    for c in ran:
        assert c["status"] == "failed" and "wrong" in c["error"], (c["impl"], c["status"], c["error"])
    assert p.returncode == 1


@needs_mpi
def test_every_host_allreduce_and_the_p2p_matrix_fail_an_inflated_rate_through_the_bound(tmp_path):
    """One launch: each host all-reduce impl and the p2p matrix with the inflate fault."""
    impls = [cls.name for suite, cls in _impls() if suite == "interconnect"]
    cases = _host_interconnect_run(tmp_path, impls, "64K", {ENV: ",".join(f"{n}:inflate" for n in impls),
                                                           FACTOR_ENV: str(_TEST_INFLATE)})
    for c in cases:
        assert c["status"] == "failed" and c["error"].startswith("exceeds physical bound: "), (c["impl"], c["error"])
        assert "memory copy rate" in c["bound"]["source"]
