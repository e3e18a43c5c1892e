"""The memory guards count what a case really makes the process (and, for MPI, every rank
on the node) hold, and refuse a case that does not fit before anything is allocated.

Each under-count the guards had is reproduced first (the old figure fits, the case does
not), then the guard is shown to refuse; and the guards' figures are checked against the
peak that tracemalloc measures (numpy reports its array allocations to tracemalloc), so
that they cannot silently under-count again. No timing assertions.
"""

from __future__ import annotations

import inspect
import json
import math
import re
import subprocess
import sys
import textwrap
import tracemalloc
import types

import numpy as np
import psutil
import pytest

from aibench import mpi
from aibench.errors import UsageError
from aibench.fit import fits
from aibench.harness import SamplingPolicy
from aibench.suites import get_suite
from aibench.suites.base import RunContext
from aibench.targets import Target
from mpi_helpers import clean_env, mpiexec, needs_mpi

GiB, MiB = 1 << 30, 1 << 20
CTX = RunContext(Target("cpu"), SamplingPolicy(budget_s=0.05))


@pytest.fixture(autouse=True)
def fixed_llc(monkeypatch):
    """A 32 MiB last-level cache, so that buffer-set counts (and these tests' memory) do
    not depend on the machine's cache."""
    from aibench.suites.attention import cpu as attention_cpu
    from aibench.suites.gemm import cpu as gemm_cpu

    monkeypatch.setattr(gemm_cpu, "last_level_cache_bytes", lambda: 32 * MiB)
    monkeypatch.setattr(attention_cpu, "last_level_cache_bytes", lambda: 32 * MiB)


def host_bytes_per_rank(impl_name: str, target_kind: str, count: int, dtype: str, inplace: bool,
                        nranks: int) -> int:
    """Peak host memory one rank holds for one all-reduce case: the impl's own
    AllreduceImpl.host_bytes, which the suite's memory guard reads."""
    from aibench.suites.interconnect import InterconnectSuite

    info = next(i for i in InterconnectSuite().impls() if i.name == impl_name)
    return info.for_kind(target_kind).host_bytes(count, dtype, inplace, nranks)


# The one shape of every fit guard's reason (aibench.fit.fits).
SHAPE = re.compile(r"^\S.* does not fit: it needs \d+\.\d (GiB|MiB)( for .+)?, "
                   r"more than (the|\d+(\.\d+)?% of the) \d+\.\d (GiB|MiB) \S.*$")


def test_fits_is_none_within_the_share_and_else_one_line_of_one_shape():
    assert fits(8 * GiB, 10 * GiB, "x") is None  # 80% exactly: fits
    assert fits(8 * GiB + 1, 10 * GiB, "x") == "x does not fit: it needs 8.0 GiB, more than 80% of the 10.0 GiB " \
                                                "of memory available"
    assert fits(300 * MiB, 2 * GiB, "the case", held="its buffers", share=1 / 8, of="of GPU memory free") == \
        "the case does not fit: it needs 300.0 MiB for its buffers, more than 12.5% of the 2.0 GiB of GPU memory free"
    assert fits(3 * GiB, 2 * GiB, "y", share=1, of="this node has") == \
        "y does not fit: it needs 3.0 GiB, more than the 2.0 GiB this node has"
    assert fits(2 * GiB, 2 * GiB, "y", share=1) is None
    for reason in (fits(1, 0, "a b"), fits(5 * GiB, GiB, "c", held="d e", share=0.9, of="free on cuda:0")):
        assert SHAPE.match(reason) and "\n" not in reason


def test_the_storage_and_objectstore_guards_give_the_same_shape(monkeypatch):
    from aibench.errors import SkipCase
    from aibench.suites.objectstore import _check_embedded_memory

    _memory(monkeypatch, 8 * GiB, total=8 * GiB)
    with pytest.raises(UsageError) as err:  # 256M x 64 x 1 = 16 GiB of buffers, a quarter of 8 GiB usable
        get_suite("storage").check_case({"pattern": "seq", "bs": 256 * MiB, "qd": 64, "threads": 1, "direct": 1},
                                        Target("cpu"))
    assert SHAPE.match(str(err.value)) and "more than 25% of the 8.0 GiB of memory" in str(err.value)
    with pytest.raises(SkipCase) as skip:  # 64 x 256 MiB in flight: over an eighth of 8 GiB
        _check_embedded_memory({"workload": "whole", "size": 256 * MiB, "concurrency": 64})
    reason = str(skip.value)
    assert reason.startswith("the local S3 endpoint keeps every object it serves in memory: 64 x 256M in flight "
                             "does not fit: it needs 16.0 GiB, more than 12.5% of the 8.0 GiB of memory available")
    _check_embedded_memory({"workload": "whole", "size": 16 * MiB, "concurrency": 64})  # 1 GiB: fits


def test_the_test_files_free_space_check_gives_the_same_shape():
    from aibench.suites.storage.source import MIN_FILE_SIZE, check_free_space

    check_free_space("/data", GiB, 10 * GiB)  # a tenth of the free space left: fits
    with pytest.raises(UsageError) as err:
        check_free_space("/data", 2 * GiB, 2 * GiB)
    reason = str(err.value).removeprefix("not enough free space in /data: ")
    assert SHAPE.match(reason) and "more than 90% of the 2.0 GiB free;" in reason
    with pytest.raises(UsageError, match="a test file needs at least 16.0 MiB, 30.0 MiB is free"):
        check_free_space("/data", MIN_FILE_SIZE // 2, 30 * MiB)  # the default size: a quarter of the free space


def _memory(monkeypatch, available: int, total: int | None = None) -> None:
    monkeypatch.setattr(psutil, "virtual_memory",
                        lambda: types.SimpleNamespace(available=available, total=total or available))


def _peak(fn) -> tuple[int, object]:
    """(peak bytes traced while fn ran, its result): numpy arrays are traced."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        result = fn()
        return tracemalloc.get_traced_memory()[1] - base, result
    finally:
        tracemalloc.stop()


# ---- GEMM on the cpu target ----------------------------------------------------------------------

EXAMPLE = {"m": 65536, "k": 65536, "n": 1, "dtype": "fp32"}  # aibench run --suite gemm --param ...


def test_gemm_example_fp32_is_generated_without_a_float64_copy():
    """The example's under-count was operand generation: uniform float64, then a float32
    copy (A alone: 32 GiB + 16 GiB while the guard counted 16 GiB for A, B and C). The same
    shape scaled down 256x in m: generating A now peaks at A itself."""
    from aibench.suites.gemm import cpu

    m, k = EXAMPLE["m"] // 256, EXAMPLE["k"]
    rng = np.random.default_rng(0)
    peak, a = _peak(lambda: cpu._random_operand(rng, (m, k), "fp32", k))
    assert a.dtype == np.float32 and a.nbytes == m * k * 4
    old_peak = m * k * (8 + 4)  # what rng.uniform(-1, 1, shape).astype(np.float32) held
    assert peak <= a.nbytes + cpu.generation_temp_bytes("fp32", m * k) + 64 * 1024 < old_peak


def test_gemm_example_guard_counts_more_than_a_b_c_and_refuses_what_does_not_fit(monkeypatch):
    from aibench.suites.gemm import cpu

    suite = get_suite("gemm")
    old = cpu.set_bytes(EXAMPLE)  # what the guard counted: A, B and C once
    need = cpu.memory_needed(EXAMPLE)
    assert old == (65536 * 65536 + 65536 + 65536) * 4  # 16.0005 GiB
    # Now also the validation's float64 samples (24 rows of A: 24 x 65536 values) and the
    # own kernel's packing buffer; no generation temporary for fp32 any more.
    assert need >= old + cpu.validation_temp_bytes(EXAMPLE) >= old + 24 * 65536 * (4 + 8)
    assert cpu.generation_temp_bytes("fp32", 65536 * 65536) == 0
    # Under-count reproduced: with 0.8 x available between the two figures the old guard
    # let the case through; now it is refused, in one line, before anything is allocated.
    available = int((old + need) / 2 / 0.8)
    assert old <= 0.8 * available < need
    _memory(monkeypatch, available)
    with pytest.raises(UsageError) as err:
        suite.check_case(dict(EXAMPLE), Target("cpu"))
    assert "\n" not in str(err.value)
    assert re.search(r"^gemm 65536x1x65536 fp32 does not fit: it needs 16\.\d GiB for A, B and C \(1 buffer set",
                     str(err.value))
    assert SHAPE.match(str(err.value))
    # 40 GiB available: the real peak is now about 16 GiB (it was about 48 GiB), which fits.
    assert need - old < GiB  # validation samples and packing buffers: megabytes
    _memory(monkeypatch, 40 * GiB)
    suite.check_case(dict(EXAMPLE), Target("cpu"))


def test_gemm_guard_counts_every_buffer_set(monkeypatch):
    """Cache-sized shapes rotate through up to 64 sets of A, B and C; the guard counted one."""
    from aibench.suites.gemm import cpu

    params = {"m": 256, "n": 256, "k": 256, "dtype": "fp32"}
    one = cpu.set_bytes(params)  # 768 KiB: the old count
    assert cpu.buffer_sets(params) == 64 and cpu.memory_needed(params) >= 64 * one
    _memory(monkeypatch, 40 * MiB)  # 32 MiB usable: one set fits, 64 (48 MiB) do not
    assert one <= 0.8 * 40 * MiB
    with pytest.raises(UsageError, match="64 buffer set"):
        get_suite("gemm").check_case(params, Target("cpu"))


@pytest.mark.parametrize("params", [
    {"m": 4096, "k": 4096, "n": 1, "dtype": "fp32"},  # the example's shape, scaled down
    {"m": 1500, "k": 1300, "n": 700, "dtype": "fp64"},
    {"m": 2048, "k": 1024, "n": 3, "dtype": "bf16"},  # more than one generation chunk
    {"m": 1000, "k": 3000, "n": 200, "dtype": "int8"},
    {"m": 64, "k": 64, "n": 64, "dtype": "fp32"},  # many buffer sets
], ids=lambda p: f"{p['m']}x{p['n']}x{p['k']}-{p['dtype']}")
def test_gemm_guard_is_at_least_the_measured_peak(params):
    """Operands of every buffer set, output, one GEMM and the validation, measured."""
    from aibench.suites.gemm import cpu

    def run():
        if params["dtype"] in ("fp32", "fp64"):
            runner = cpu.BlasRunner(params, CTX)
            runner.run()
        else:  # numpy has no bf16/int8 GEMM: the buffers and the validation's reads
            runner = cpu._NumpyOperands(params, CTX)
        runner.params, runner.seed = params, CTX.seed
        runner.validate()
        return runner

    peak, runner = _peak(run)
    sets = len(runner.a)
    assert sets == cpu.buffer_sets(params)
    assert peak <= cpu.memory_needed(params)
    if sets > 1:  # the old guard counted one set
        assert cpu.set_bytes(params) < peak


@pytest.mark.parametrize("dtype", ["fp32", "fp64", "bf16"])
def test_gemm_generation_peak_is_within_its_count_and_values_stay_uniform(dtype):
    from aibench.dtypes import bf16_to_float32
    from aibench.suites.gemm import cpu

    shape = (1000, 2500)  # 2.5 M values: more than one bf16 chunk
    n = math.prod(shape)
    rng = np.random.default_rng(1)
    peak, x = _peak(lambda: cpu.uniform_values(rng, shape, dtype))
    assert x.shape == shape and peak <= x.nbytes + cpu.generation_temp_bytes(dtype, n) + 64 * 1024
    values = bf16_to_float32(x) if dtype == "bf16" else x
    assert values.dtype == (np.float64 if dtype == "fp64" else np.float32)
    assert -1.0 <= values.min() < -0.999 and 0.999 < values.max() <= 1.0
    assert abs(float(values.mean())) < 2e-3 and abs(float(values.std()) - 1 / math.sqrt(3)) < 2e-3
    if dtype != "bf16":
        assert values.max() < 1.0  # [-1, 1)


def test_gemm_guard_samples_what_the_validation_samples():
    from aibench.suites import gemm
    from aibench.suites.gemm import cpu

    assert inspect.signature(gemm.common.sample_indices).parameters["count"].default == cpu._SAMPLES


# ---- attention on the cpu target -----------------------------------------------------------------

ATTENTION_CASES = [
    {"batch": 2, "heads": 8, "kv_heads": 2, "seqlen": 512, "kv_seqlen": 700, "head_dim": 40, "causal": True,
     "dtype": "fp32"},
    {"batch": 1, "heads": 4, "kv_heads": 4, "seqlen": 1024, "kv_seqlen": 1024, "head_dim": 64, "causal": False,
     "dtype": "bf16"},
    {"batch": 1, "heads": 4, "kv_heads": 1, "seqlen": 1536, "kv_seqlen": 1536, "head_dim": 128, "causal": True,
     "dtype": "bf16"},
]


def _old_attention_count(p):
    from aibench.suites.attention import cpu

    return cpu._set_bytes(p) + 2 * 4 * p["batch"] * p["heads"] * p["seqlen"] * p["kv_seqlen"]


@pytest.mark.parametrize("p", ATTENTION_CASES, ids=lambda p: f"{p['dtype']}-causal{p['causal']}")
def test_attention_guard_is_at_least_the_measured_peak_of_the_numpy_impl(p):
    """The numpy impl holds the most: float32 copies, two score arrays, the output."""
    from aibench.suites.attention import cpu

    def run():
        runner = cpu.NumpyAttentionRunner(p, CTX)
        runner.params, runner.seed = p, CTX.seed
        runner.time(1)
        runner.run()
        runner.validate()

    peak, _ = _peak(run)
    assert peak <= cpu.memory_needed(p)
    assert _old_attention_count(p) < peak  # the old count: one set and the scores


def test_attention_guard_refuses_what_only_the_old_count_let_through(monkeypatch):
    """bf16 keys and values the numpy impl holds as float32 (twice their bytes), with a
    short query: the old count (operands once + two score arrays) fits, the case does not."""
    from aibench.suites.attention import cpu

    p = {"batch": 1, "heads": 8, "kv_heads": 8, "seqlen": 64, "kv_seqlen": 65536, "head_dim": 128,
         "causal": False, "dtype": "bf16"}
    old, need = _old_attention_count(p), cpu.memory_needed(p)
    available = int((old + need) / 2 / 0.8)
    assert old <= 0.8 * available < need
    _memory(monkeypatch, available)
    with pytest.raises(UsageError) as err:
        get_suite("attention").check_case(p, Target("cpu"))
    assert "\n" not in str(err.value) and str(err.value).startswith("attention case does not fit: it needs ")
    assert SHAPE.match(str(err.value))


def test_attention_guard_counts_the_validation_blocks():
    from aibench.suites.attention import common, cpu

    assert cpu.VALIDATION_ROWS is common.VALIDATION_ROWS


# ---- interconnect ---------------------------------------------------------------------------------


def _fake_session(monkeypatch, local: int, nodes: int = 1):
    hosts = [f"node{i}" for i in range(nodes) for _ in range(local)]
    session = mpi.Session(comm=None, rank=0, size=len(hosts), hosts=hosts)
    monkeypatch.setattr(mpi, "current", lambda: session)
    return session


def test_interconnect_check_counts_every_rank_on_the_node(monkeypatch):
    """Each rank on a node allocates its own buffers: 8 ranks x (send + receive + the
    library's scratch) of 1 GiB do not fit in 16 GiB, though one rank's send and receive
    (what the guard counted) do."""
    suite = get_suite("interconnect")
    params = {"pattern": "allreduce", "size": GiB, "dtype": "fp32", "inplace": False}
    _memory(monkeypatch, 16 * GiB, total=16 * GiB)
    assert 2 * params["size"] <= 16 * GiB  # the old count
    suite.check_case(params, Target("cpu"))  # no session, no launcher: one rank
    _fake_session(monkeypatch, local=8)
    with pytest.raises(UsageError) as err:
        suite.check_case(params, Target("cpu"))
    assert "\n" not in str(err.value) and SHAPE.match(str(err.value))
    assert "for 8 rank(s) on this node x 3.0 GiB per rank" in str(err.value)
    assert "more than the 16.0 GiB this node has" in str(err.value)
    _fake_session(monkeypatch, local=4)  # 4 x 3 GiB: fits
    suite.check_case(params, Target("cpu"))


def test_interconnect_check_reads_the_launchers_rank_count(monkeypatch):
    """Before the session starts (the plan is checked first), the launcher's environment
    says how many ranks share the node."""
    from aibench.suites import interconnect

    for key in ("OMPI_COMM_WORLD_LOCAL_SIZE", "OMPI_COMM_WORLD_SIZE", "SLURM_STEP_TASKS_PER_NODE",
                "SLURM_TASKS_PER_NODE", "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS", "PMIX_SIZE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(mpi, "current", lambda: None)
    monkeypatch.setattr(mpi, "under_launcher", lambda: True)
    monkeypatch.setenv("MPI_LOCALNRANKS", "8")
    monkeypatch.setenv("PMI_SIZE", "16")
    assert interconnect.ranks_on_this_node() == (8, 16)
    _memory(monkeypatch, 16 * GiB, total=16 * GiB)
    with pytest.raises(UsageError, match="8 rank"):
        get_suite("interconnect").check_case({"pattern": "allreduce", "size": GiB, "dtype": "fp32",
                                              "inplace": False}, Target("cpu"))
    monkeypatch.delenv("MPI_LOCALNRANKS")
    monkeypatch.delenv("PMI_SIZE")
    monkeypatch.setenv("SLURM_STEP_TASKS_PER_NODE", "4(x2),3")
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "11")
    assert interconnect.ranks_on_this_node() == (4, 11)


def test_interconnect_rma_windows_of_all_local_ranks_are_counted(monkeypatch):
    """rma-recursive-doubling over 8 ranks: the window holds the result and two parities of
    lg 8 = 3 full-size slots (7n) besides the send buffer (n). Per rank send + receive
    (the old count, 512 MiB) fits, and so do 8 ranks' of them; 8 ranks' windows do not."""
    from aibench.suites.interconnect import _memory_reason
    from aibench.suites.interconnect.rma import window_layout

    session = _fake_session(monkeypatch, local=8)
    n = 256 * MiB
    count = n // 4
    per_rank = host_bytes_per_rank("rma-recursive-doubling", "cpu", count, "fp32", False, 8)
    layout = window_layout("recursive-doubling", count, 4, 8)
    assert layout["total"] >= 7 * n and per_rank >= layout["total"] + n  # 8n per rank: 2 GiB
    _memory(monkeypatch, 8 * GiB)
    assert 8 * 2 * n <= 0.8 * 8 * GiB  # the old per-rank count, even times the local ranks
    reason = _memory_reason(session, per_rank)
    assert reason is not None and "8 rank(s) x 2.0" in reason and SHAPE.match(reason)
    # the mpi impl (result, send and the library's scratch: 3n per rank) fits
    assert _memory_reason(session, host_bytes_per_rank("mpi", "cpu", count, "fp32", False, 8)) is None


@pytest.mark.parametrize("algorithm, ranks, factor", [
    ("ring", 2, 3.0), ("recursive-doubling", 2, 4.0), ("rabenseifner", 2, 3.0),
    ("recursive-doubling", 3, 5.0), ("rabenseifner", 3, 4.0), ("recursive-doubling", 8, 8.0),
])
def test_interconnect_rma_figures_come_from_the_window_layout(algorithm, ranks, factor):
    """Bytes per rank over the message size, out of place: send + window (result, fold slot
    for a non-power-of-two rank count, two parities of scratch slots)."""
    from aibench.suites.interconnect.common import CHECK_BYTES

    n = 64 * MiB
    per_rank = host_bytes_per_rank(f"rma-{algorithm}", "cpu", n // 4, "fp32", False, ranks)
    assert per_rank - CHECK_BYTES == pytest.approx(factor * n, rel=1e-3)


def test_interconnect_host_staging_of_gpu_impls_and_mpi_scratch_are_counted():
    from aibench.suites.interconnect.common import CHECK_BYTES

    n = 64 * MiB
    assert host_bytes_per_rank("nccl", "cuda", n // 4, "fp32", False, 4) == 2 * n + CHECK_BYTES  # was 0
    assert host_bytes_per_rank("nccl", "cuda", n // 4, "fp32", True, 4) == n + CHECK_BYTES
    assert host_bytes_per_rank("mpi", "cpu", n // 4, "fp32", False, 4) == 3 * n + CHECK_BYTES  # + library tmp_buf
    assert host_bytes_per_rank("mpi", "cpu", n // 4, "fp32", True, 1) == n + CHECK_BYTES


@pytest.mark.parametrize("dtype", ["fp32", "fp64", "bf16", "fp16"])
def test_interconnect_exact_check_temporaries_are_within_their_count(dtype):
    from aibench.suites.interconnect.common import CHECK_BYTES
    from aibench.suites.interconnect.common import FORMATS, ExactInputs

    out = np.empty(3 << 20, dtype=FORMATS[dtype].storage)  # many check blocks
    for ranks in (2, 3, 64):
        def check():
            inputs = ExactInputs(dtype, ranks)
            inputs.fill(out, 1)
            inputs.count_wrong(out)

        peak, _ = _peak(check)
        assert peak <= CHECK_BYTES


@pytest.mark.parametrize("nbytes", [256 * 1024, 1 * MiB, 4 * MiB])
def test_p2p_guard_is_at_least_the_measured_peak_of_a_receiver(nbytes):
    """A receiver holds its window of buffers, then builds the expected pattern (through
    int64 steps: 16 B per byte) and compares the whole window with it (a bool per byte):
    the old count, (window + 1) x size, was short. (At 64 MiB and more, a window of one,
    the pattern's int64 steps dominate: 17 x size against the old 2 x size.)"""
    from aibench.suites.interconnect import p2p_bytes_per_rank
    from aibench.suites.interconnect.p2p import _pattern

    window = min(64, max(1, (64 * MiB) // nbytes))

    def receive():
        bufs = np.full((window, nbytes), 0xFF, dtype=np.uint8)
        want = _pattern(1, nbytes)
        return int(np.count_nonzero(bufs != want[None, :]))

    peak, _ = _peak(receive)
    assert (window + 1) * nbytes < peak <= p2p_bytes_per_rank(nbytes)


def test_p2p_ranks_are_every_local_rank_on_one_node_and_one_per_node_on_several(monkeypatch):
    from aibench.suites.interconnect import p2p_ranks

    assert p2p_ranks(4, _fake_session(monkeypatch, local=4)) == 4
    assert p2p_ranks(4, _fake_session(monkeypatch, local=4, nodes=2)) == 1


_RUN_SCRIPT = textwrap.dedent("""
    import json, sys, types
    import psutil
    from aibench import mpi
    from aibench.harness import SamplingPolicy
    from aibench.suites import get_suite
    from aibench.suites.base import RunContext
    from aibench.targets import Target

    session = mpi.start_session()
    available = int(sys.argv[1])
    psutil.virtual_memory = lambda: types.SimpleNamespace(available=available, total=available)
    suite = get_suite("interconnect")
    params = {"pattern": "allreduce", "size": int(sys.argv[2]), "dtype": "fp32", "inplace": False}
    out = {}
    for name in sys.argv[3].split(","):
        impl = next(i for i in suite.impls() if i.name == name)
        r, = suite.run_case(params, impl, RunContext(Target("cpu"), SamplingPolicy(budget_s=0.05)))
        out[name] = [r.status, r.validation.reason if r.validation else None]
    if session.is_root:
        print(json.dumps(out))
""")


@needs_mpi
def test_interconnect_run_skips_an_impl_whose_windows_do_not_fit_before_allocating(tmp_path):
    """Two real ranks, 8 MiB fp32 messages, 90 MiB available (72 usable): 2 x the mpi
    impl's 32 MiB fits and runs; 2 x rma-recursive-doubling's 40 MiB (window 3n, send n,
    check) does not and is skipped before its window is allocated."""
    script = tmp_path / "run.py"
    script.write_text(_RUN_SCRIPT)
    p = subprocess.run([*mpiexec(2), sys.executable, "-m", "mpi4py", str(script), str(90 * MiB), str(8 * MiB),
                        "mpi,rma-recursive-doubling"], capture_output=True, text=True, timeout=120, env=clean_env())
    assert p.returncode == 0, p.stdout + p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["mpi"][0] == "passed", out
    status, reason = out["rma-recursive-doubling"]
    assert status == "skipped" and "2 rank(s) x 0.04 GiB" in reason, out
