"""The interconnect suite with real MPI ranks (mpiexec -n 2 and -n 3 from the MPICH wheel):
exact all-reduce results from every impl, the self-launch path, rank-0-only output, an
injected wrong reduction failing its case, usage errors before any launch, and asv."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from aibench import mpi
from aibench.suites import get_suite
from mpi_helpers import clean_env, mpiexec, needs_mpi

REPO = Path(__file__).resolve().parents[1]
CPU_IMPLS = ["mpi", "rma-ring", "rma-ring-fence", "rma-recursive-doubling", "rma-recursive-doubling-fence",
             "rma-rabenseifner", "rma-rabenseifner-fence"]


def run_cli(*args, timeout=120, **env):
    return subprocess.run([sys.executable, "-m", "aibench.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=clean_env(**env))


_EXACT_SCRIPT = textwrap.dedent("""
    import json, sys
    from mpi4py import MPI
    from aibench import mpi
    from aibench.harness import SamplingPolicy
    from aibench.suites.base import RunContext
    from aibench.suites.interconnect import InterconnectSuite
    from aibench.suites.interconnect.common import RUN_SESSION, ExactInputs, FORMATS
    from aibench.targets import Target

    session = mpi.start_session()
    comm, rank = session.comm, session.rank
    ctx = RunContext(Target("cpu"), SamplingPolicy())
    ctx.resource(RUN_SESSION, lambda: session)  # as the suite's run_case holds it
    impls = sys.argv[1].split(",")
    classes = {i.name: i.for_kind("cpu") for i in InterconnectSuite().impls()}
    failures = []
    for impl in impls:
        for dtype in ("fp32", "fp64", "bf16", "fp16"):
            for count in (1, 3, 1001):
                for inplace in (False, True):
                    params = {"size": count * FORMATS[dtype].itemsize, "dtype": dtype, "inplace": inplace}
                    runner = classes[impl](params, ctx)
                    inputs = ExactInputs(dtype, session.size)
                    for attempt in range(3):  # both scratch parities, then the first again
                        runner.prepare_check(inputs, rank)
                        runner.run()
                        wrong, first = inputs.count_wrong(runner.result_host())
                        total = comm.allreduce(wrong)
                        if total:
                            failures.append([impl, dtype, count, inplace, attempt, total])
                    runner.close()
    if rank == 0:
        print(json.dumps({"ranks": session.size, "failures": failures, "checked": len(impls) * 4 * 3 * 2 * 3}))
""")


@needs_mpi
@pytest.mark.parametrize("ranks", [2, 3])
def test_every_impl_is_exact_for_uneven_counts_and_every_dtype(tmp_path, ranks):
    """1, 3 and 1001 elements (not divisible by the rank count), fp32/fp64/bf16/fp16,
    in and out of place, three calls in a row on the same buffers."""
    script = tmp_path / "exact.py"
    script.write_text(_EXACT_SCRIPT)
    p = subprocess.run([*mpiexec(ranks), sys.executable, "-m", "mpi4py", str(script), ",".join(CPU_IMPLS)],
                       capture_output=True, text=True, timeout=120, env=clean_env())
    assert p.returncode == 0, p.stdout + p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["ranks"] == ranks and out["checked"] == len(CPU_IMPLS) * 72
    assert out["failures"] == []


@needs_mpi
def test_self_launch_writes_one_document_with_every_impl(tmp_path):
    out = tmp_path / "run.json"
    p = run_cli("run", "--suite", "interconnect", "--quick", "--param", "size=8,1001k,64k", "--output", str(out),
                "--no-asv", "--machine", "ic-test")
    assert p.returncode == 0, p.stdout + p.stderr
    # The parent printed nothing of its own: one summary, one banner, from rank 0.
    assert p.stdout.count("aibench results") == 1, p.stdout
    assert p.stderr.count("case(s), tier quick") == 1, p.stderr
    doc = json.loads(out.read_text())
    assert doc["status"] == "complete" and doc["machine"] == "ic-test"
    cases = doc["cases"]
    allreduce = [c for c in cases if c["params"]["pattern"] == "allreduce"]
    assert {c["impl"] for c in allreduce} == set(CPU_IMPLS)
    assert len(allreduce) == 3 * len(CPU_IMPLS)  # each case once: only rank 0 wrote
    for c in allreduce:
        assert c["status"] == "passed", c
        assert c["validation"]["status"] == "passed"
        m = c["metrics"]
        assert m["busbw_gbps"]["value"] == pytest.approx(m["algbw_gbps"]["value"])  # 2(n-1)/n = 1 for n = 2
        assert m["algbw_gbps"]["value"] == pytest.approx(c["params"]["size"] / m["time_us"]["value"] / 1e3)
        assert m["lat_p50_us"]["value"] <= m["lat_p99_us"]["value"]
        assert len(c["stats"]["samples_s"]) == c["stats"]["n"] == c["impl_detail"]["iterations"]
        assert c["impl_detail"]["time_us_min_rank"] <= c["impl_detail"]["time_us_max_rank"]
        assert m["time_us"]["value"] == pytest.approx(c["impl_detail"]["time_us_max_rank"])
        topo = c["impl_detail"]["topology"]
        assert topo["ranks"] == 2 and topo["ranks_per_node"] == 2 and len(topo["hosts"]) == 1
    # The p2p matrix: one pair of ranks on one node, both directions, impl mpi only.
    p2p = [c for c in cases if c["params"]["pattern"] == "p2p"]
    assert [c["impl"] for c in p2p] == ["mpi"] * len(p2p) and p2p
    matrix = p2p[0]["impl_detail"]["p2p"]
    assert matrix["bw_gbps"][0][0] is None and matrix["bw_gbps"][0][1] > 0 and matrix["bw_gbps"][1][0] > 0
    assert matrix["lat_p50_us"][0][1] == matrix["lat_p50_us"][1][0] > 0
    assert matrix["slow_links"] == [] or all(link["fraction_of_median"] < 0.8 for link in matrix["slow_links"])
    assert p2p[0]["metrics"]["gbps"]["value"] == min(matrix["bw_gbps"][0][1], matrix["bw_gbps"][1][0])
    # What every MPI run records: hosts, ranks per node, library version, behaviour env.
    system_mpi = doc["system"]["mpi"]
    assert system_mpi["ranks"] == 2 and system_mpi["nodes"] == 1 and system_mpi["ranks_per_node"] == 2
    from mpi4py import MPI  # the library the ranks ran with is the one this process loads

    assert system_mpi["library_version"] == MPI.Get_library_version().strip()
    assert isinstance(system_mpi["env"], dict) and "launcher" in system_mpi


@needs_mpi
def test_three_ranks_through_the_cli_and_behaviour_env_is_recorded(tmp_path):
    out = tmp_path / "run.json"
    p = run_cli("run", "--suite", "interconnect", "--ranks", "3", "--param", "size=12,4004",
                "--param", "pattern=allreduce", "--param", "dtype=fp32,bf16", "--param", "inplace=false,true",
                "--impl", "mpi", "--impl", "rma-rabenseifner", "--impl", "rma-recursive-doubling-fence",
                "--output", str(out), "--no-asv", "--time-budget", "0.2", MPIR_CVAR_ASYNC_PROGRESS="0")
    assert p.returncode == 0, p.stdout + p.stderr
    doc = json.loads(out.read_text())
    assert doc["system"]["mpi"]["ranks"] == 3
    assert doc["system"]["mpi"]["env"].get("MPIR_CVAR_ASYNC_PROGRESS") == "0"
    assert len(doc["cases"]) == 2 * 2 * 2 * 3
    for c in doc["cases"]:
        assert c["status"] == "passed", c
        assert c["metrics"]["busbw_gbps"]["value"] == pytest.approx(c["metrics"]["algbw_gbps"]["value"] * 4 / 3)


@needs_mpi
def test_under_an_external_mpiexec_every_rank_runs_and_rank_0_alone_writes(tmp_path):
    out = tmp_path / "run.json"
    p = subprocess.run([*mpiexec(3), sys.executable, "-m", "aibench.cli", "run", "--suite", "interconnect",
                        "--param", "size=4k", "--param", "pattern=allreduce,p2p", "--param", "inplace=false",
                        "--impl", "mpi", "--impl", "rma-ring", "--output", str(out), "--no-asv", "--time-budget", "0.1"],
                       capture_output=True, text=True, timeout=120, env=clean_env())
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count("aibench results") == 1 and p.stderr.count("case(s), tier") == 1
    doc = json.loads(out.read_text())
    assert doc["system"]["mpi"]["ranks"] == 3
    assert doc["system"]["mpi"]["launcher"] != "none (singleton)"  # detected from the launcher's environment
    assert [(c["case_id"], c["impl"], c["status"]) for c in doc["cases"]] == [
        ("allreduce-4KiB-fp32", "mpi", "passed"), ("allreduce-4KiB-fp32", "rma-ring", "passed"),
        ("p2p-4KiB", "mpi", "passed")]
    matrix = doc["cases"][2]["impl_detail"]["p2p"]
    assert len(matrix["participants"]) == 3 and matrix["rounds"] == 3  # every pair of the 3 ranks
    assert all((x is None) == (i == j) for i, row in enumerate(matrix["bw_gbps"]) for j, x in enumerate(row))


@needs_mpi
def test_injected_wrong_reduction_fails_the_case_with_exit_1(tmp_path):
    out = tmp_path / "run.json"
    p = run_cli("run", "--suite", "interconnect", "--param", "size=4004", "--param", "pattern=allreduce",
                "--impl", "rma-ring", "--impl", "rma-rabenseifner-fence", "--impl", "mpi", "--output", str(out),
                "--no-asv", "--quick", "--time-budget", "0.1", AIBENCH_TEST_FAULT="reduce")
    assert p.returncode == 1, p.stdout + p.stderr
    cases = {c["impl"]: c for c in json.loads(out.read_text())["cases"]}
    for impl in ("rma-ring", "rma-rabenseifner-fence"):
        assert cases[impl]["status"] == "failed" and cases[impl]["metrics"] == {}
        assert "wrong result" in cases[impl]["error"] and "wrong element" in cases[impl]["error"]
        assert cases[impl]["validation"]["status"] == "failed"
    assert cases["mpi"]["status"] == "passed"  # the library's own reduction is untouched
    assert "FAILED" in p.stderr  # rank 0 reports the failure as it happens
    # An orderly exit 1, not an MPI abort: the summary is the last thing printed.
    assert "Abort" not in p.stdout + p.stderr and "BAD TERMINATION" not in p.stdout + p.stderr
    assert p.stdout.strip().splitlines()[-1] == "1 passed, 2 failed, 0 skipped", p.stdout[-500:]
    assert p.stderr.rstrip().endswith(str(out)) and "run document:" in p.stderr[-300:]


def _aibench_processes() -> list[str]:
    out = subprocess.run(["ps", "-ww", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "aibench.cli" in line and "ps -eo" not in line]


def _start_and_wait_for_cases(out, cases=3, **popen):
    import time

    proc = subprocess.Popen([sys.executable, "-m", "aibench.cli", "run", "--suite", "interconnect", "--quick",
                             "--no-asv", "--output", str(out), "--time-budget", "0.2"],
                            env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=out.parent, **popen)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until some cases are saved
        try:
            if len(json.loads(out.read_text())["cases"]) >= cases:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    return proc


@needs_mpi
def test_sigkill_of_a_self_launching_parent_stops_its_ranks_and_they_save(tmp_path):
    """mpiexec gets SIGTERM when its parent dies (even by SIGKILL); the ranks finish the
    case they are in, save an `interrupted` document and exit."""
    import signal
    import time

    out = tmp_path / "run.json"
    before = set(_aibench_processes())
    proc = _start_and_wait_for_cases(out)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 60
    while set(_aibench_processes()) - before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not set(_aibench_processes()) - before
    doc = json.loads(out.read_text())
    assert doc["status"] == "interrupted" and len(doc["cases"]) >= 3


def _rank_pid(out, rank: int) -> int:
    for line in _aibench_processes():
        pid = int(line.split()[0])
        if str(out) not in line:
            continue
        try:
            if f"PMI_RANK={rank}".encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                return pid
        except OSError:
            pass
    raise AssertionError(f"no rank {rank} of the run writing {out}")


@needs_mpi
def test_a_killed_rank_leaves_a_failed_document_with_every_finished_case(tmp_path):
    import signal
    import time

    out = tmp_path / "run.json"
    before = set(_aibench_processes())
    proc = _start_and_wait_for_cases(out)
    os.kill(_rank_pid(out, 1), signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode not in (0, 130)
    doc = json.loads(out.read_text())
    assert doc["status"] == "failed" and "the MPI job ended" in doc["ended_by"] and len(doc["cases"]) >= 3
    assert "the ranks did not finish the run document" in stderr
    time.sleep(1)
    assert not set(_aibench_processes()) - before


@needs_mpi
def test_ctrl_c_on_a_self_launched_run_saves_the_document_and_leaves_no_rank(tmp_path):
    """Ctrl-C in a terminal sends SIGINT to the whole foreground process group: aibench,
    mpiexec and the ranks. The run must exit 130 with an `interrupted` document holding
    the finished cases, print no MPI abort, and leave no rank behind."""
    import signal
    import time

    out = tmp_path / "run.json"
    before = set(_aibench_processes())
    proc = _start_and_wait_for_cases(out, start_new_session=True)
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stdout[-1000:] + stderr[-2000:]
    doc = json.loads(out.read_text())
    assert doc["status"] == "interrupted" and len(doc["cases"]) >= 3 and doc["ended_by"] == "signal SIGINT"
    assert "Abort" not in stdout + stderr and "Traceback" not in stderr, stderr[-2000:]
    assert stderr.rstrip().endswith(str(out)) and "interrupted:" in stderr[-300:]
    time.sleep(1)
    assert set(_aibench_processes()) <= before, _aibench_processes()


@needs_mpi
def test_non_mpi_suite_in_an_mpi_run_runs_on_rank_0_only(tmp_path):
    out = tmp_path / "run.json"
    p = run_cli("run", "--suite", "gemm", "--suite", "interconnect", "--quick", "--impl", "aibench", "--impl", "mpi",
                "--param", "m=64", "--param", "n=48", "--param", "k=32", "--param", "dtype=fp32",
                "--param", "size=4k", "--param", "pattern=allreduce", "--param", "inplace=false",
                "--output", str(out), "--no-asv", "--time-budget", "0.05")
    assert p.returncode == 0, p.stdout + p.stderr
    cases = json.loads(out.read_text())["cases"]
    assert [(c["suite"], c["impl"]) for c in cases] == [("gemm", "aibench"), ("interconnect", "mpi")]


@needs_mpi
def test_gpu_impls_skip_cleanly_without_a_gpu(tmp_path):
    from aibench.suites.interconnect.gpu import gpu_unavailable_reason

    if gpu_unavailable_reason() is None:
        pytest.skip("this host has a GPU")
    out = tmp_path / "run.json"
    p = run_cli("run", "--suite", "interconnect", "--target", "cuda", "--quick", "--param", "size=4k",
                "--output", str(out), "--no-asv")
    assert p.returncode == 1 and "nothing was measured" in p.stderr, p.stdout + p.stderr  # all skipped
    cases = json.loads(out.read_text())["cases"]
    assert {c["impl"] for c in cases} == {"mpi", "nccl"}
    for c in cases:
        assert c["status"] == "skipped" and c["target"] == "cuda:0"
        assert "GPU" in c["validation"]["reason"] or "CuPy" in c["validation"]["reason"]


class _FakeMpiexec:
    """An mpiexec that only records that it was started."""

    def __init__(self, tmp_path):
        self.marker = tmp_path / "launched"
        self.path = tmp_path / "fake-mpiexec"
        self.path.write_text(f"#!/bin/sh\ntouch {self.marker}\nexit 0\n")
        self.path.chmod(0o755)


@pytest.mark.parametrize("args, message", [
    (["--ranks", "0"], "--ranks must be between 1 and 256"),
    (["--ranks", "two"], "invalid int value"),
    (["--param", "size=abc"], "bad value 'abc' for interconnect parameter 'size'"),
    (["--param", "size=0"], "must be at least 1"),
    (["--param", "size=6", "--param", "dtype=fp32"], "not a whole number of fp32 elements"),
    (["--param", "size=2T"], "bad value '2T'"),
    (["--param", "size=64G"], "does not fit"),
    (["--param", "size=2048G"], "impossible"),
    (["--param", "dtype=fp8"], "bad value 'fp8'"),
    (["--param", "inplace=maybe"], "expected true or false"),
    (["--param", "pattern=alltoall"], "bad value 'alltoall'"),
    (["--impl", "rma-tree"], "unknown impl 'rma-tree'"),
    (["--mpi-thread-level", "many"], "invalid choice: 'many'"),
])
def test_usage_errors_are_one_line_exit_2_without_launching(tmp_path, args, message):
    fake = _FakeMpiexec(tmp_path)
    p = run_cli("run", "--suite", "interconnect", *args, AIBENCH_MPIEXEC=str(fake.path))
    assert p.returncode == 2, p.stdout + p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], p.stderr
    assert not fake.marker.exists(), "mpiexec was started for a usage error"


def test_self_launch_uses_mpiexec_and_returns_its_code(tmp_path):
    script = tmp_path / "fake-mpiexec"
    log = tmp_path / "argv"
    script.write_text(f"#!/bin/sh\n[ \"$1\" = --version ] && exit 0\n"
                      f"printf '%s ' \"$@\" > {log}\nenv | grep AIBENCH_MPI_CHILD >> {log}\nexit 7\n")
    script.chmod(0o755)
    p = run_cli("run", "--suite", "interconnect", "--quick", "--ranks", "3", "--output", str(tmp_path / "run.json"),
                AIBENCH_MPIEXEC=str(script))
    assert p.returncode == 7 and p.stdout == "" and p.stderr == ""
    assert not (tmp_path / "run.json").exists()  # the ranks wrote nothing, and neither did aibench
    argv = log.read_text()
    assert argv.startswith(f"-n 3 {sys.executable} -m aibench.cli run --suite interconnect --quick --ranks 3")
    assert "AIBENCH_MPI_CHILD=1" in argv


def test_sigterm_to_a_self_launching_run_reaches_mpiexec(tmp_path):
    """Killing `aibench run` must not leave its ranks running."""
    import signal
    import time

    script, got = tmp_path / "fake-mpiexec", tmp_path / "got-term"
    script.write_text(f"#!/bin/sh\n[ \"$1\" = --version ] && exit 0\n"
                      f"trap 'touch {got}; exit 143' TERM\ntouch {tmp_path / 'started'}\n"
                      "while :; do sleep 0.05; done\n")
    script.chmod(0o755)
    proc = subprocess.Popen([sys.executable, "-m", "aibench.cli", "run", "--suite", "interconnect", "--quick"],
                            env=clean_env(AIBENCH_MPIEXEC=str(script)), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (tmp_path / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 143 and got.exists()


@pytest.mark.parametrize("env, expected", [
    ({}, None),
    ({"PMI_RANK": "0", "PMI_SIZE": "2"}, "PMI"),
    ({"MPI_LOCALNRANKS": "2"}, "PMI"),
    ({"OMPI_COMM_WORLD_SIZE": "4"}, "Open MPI"),
    ({"PMIX_RANK": "3"}, "PMIx"),
    ({"SLURM_PROCID": "0", "SLURM_NTASKS": "8", "SLURM_STEP_ID": "0"}, "srun"),
    ({"SLURM_PROCID": "0", "SLURM_NTASKS": "8"}, None),  # the batch script itself, no srun step
    ({"SLURM_PROCID": "0", "SLURM_NTASKS": "8", "SLURM_STEP_ID": "4294967291"}, None),
    ({mpi.CHILD_MARKER: "1"}, "self-launch"),
])
def test_launcher_detection(monkeypatch, env, expected):
    for k in list(os.environ):
        if k.startswith(("PMI", "OMPI_", "SLURM_", "MPI_LOCAL", "MV2_")) or k == mpi.CHILD_MARKER:
            monkeypatch.delenv(k)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    got = mpi.launcher()
    assert (got is None) if expected is None else (expected in got)


def test_mpiexec_is_found_next_to_python_or_from_the_wheel(monkeypatch):
    monkeypatch.delenv("AIBENCH_MPIEXEC", raising=False)
    found = mpi.find_mpiexec()
    if found is None:
        pytest.skip("no mpiexec installed")
    assert os.access(found, os.X_OK)
    monkeypatch.setenv("AIBENCH_MPIEXEC", "/nonexistent/mpiexec")
    assert mpi.find_mpiexec() is None


def test_behaviour_env_keeps_tuning_variables_only():
    env = {"MPIR_CVAR_CH4_OFI_ENABLE_TAGGED": "1", "NCCL_ALGO": "Ring", "UCX_TLS": "rc", "FI_PROVIDER": "efa",
           "I_MPI_FABRICS": "shm:ofi", "OMPI_MCA_btl": "^openib", "MPICH_GPU_SUPPORT_ENABLED": "1", "HOME": "/root",
           "OMPI_MCA_orte_ess_num_procs": "2", "PATH": "/bin"}
    assert mpi.behaviour_env(env) == {k: env[k] for k in ("FI_PROVIDER", "I_MPI_FABRICS", "MPICH_GPU_SUPPORT_ENABLED",
                                                           "MPIR_CVAR_CH4_OFI_ENABLE_TAGGED", "NCCL_ALGO",
                                                           "OMPI_MCA_btl", "UCX_TLS")}


def test_tournament_covers_every_pair_once_in_disjoint_rounds():
    from aibench.suites.interconnect.p2p import tournament

    for n in range(1, 10):
        rounds = tournament(n)
        pairs = [p for r in rounds for p in r]
        assert sorted(pairs) == [(a, b) for a in range(n) for b in range(a + 1, n)]
        for r in rounds:
            members = [x for p in r for x in p]
            assert len(members) == len(set(members))


def test_default_sweeps_follow_the_design():
    from aibench.targets import Target

    suite = get_suite("interconnect")
    quick = suite.default_cases("quick", Target("cpu"))
    sizes = [c["size"] for c in quick if c["pattern"] == "allreduce"]
    assert sizes[0] == 8 and sizes[-1] == 64 * 2**20 and all(b == 2 * a for a, b in zip(sizes, sizes[1:]))
    assert max(c["size"] for c in suite.default_cases("standard", Target("cpu"))) == 256 * 2**20
    assert max(c["size"] for c in suite.default_cases("full", Target("cuda", 0))) == 2**30
    assert {c["dtype"] for c in quick} == {"fp32"}
    assert {c["inplace"] for c in suite.default_cases("standard", Target("cpu"))} == {False, True}


@needs_mpi
def test_asv_launches_the_ranks_of_an_interconnect_case_and_a_bare_call_skips():
    """What asv does (suites/benchmarks.py -> asv_benchmarks.run_point): a case of an MPI
    suite asked for from a plain process runs as a run of its own, whose ranks it launches.
    The suite itself, called outside any MPI run, skips saying how ranks are started (it
    never launches a run: a suite does not import the session above it)."""
    from aibench.asv_benchmarks import run_point
    from aibench.harness import SamplingPolicy
    from aibench.suites.base import RunContext
    from aibench.targets import Target

    suite = get_suite("interconnect")
    params = {"pattern": "allreduce", "size": 4096, "dtype": "fp32", "inplace": False}
    result = run_point(suite, params, "rma-ring", "cpu", 0.1)
    assert result.status == "passed" and result.metrics["busbw_gbps"].value > 0
    assert result.impl_detail["topology"]["ranks"] == 2
    impl = next(i for i in suite.impls() if i.name == "rma-ring")
    bare, = suite.run_case(params, impl, RunContext(Target("cpu"), SamplingPolicy(budget_s=0.1)))
    assert bare.status == "skipped" and "aibench run --suite interconnect" in bare.validation.reason


def test_asv_benchmarks_match_asv_discovery():
    list_benchmarks = pytest.importorskip("asv_runner.discovery").list_benchmarks

    from aibench.asv_export import benchmark_dicts

    buf = io.StringIO()
    list_benchmarks(str(REPO / "suites"), buf)
    discovered = {b["name"]: b for b in json.loads(buf.getvalue())}
    exported = [b for spec in get_suite("interconnect").asv_specs() for b in benchmark_dicts(spec, "interconnect")]
    assert {e["name"] for e in exported} == {f"interconnect.Allreduce{k}.{t}" for k in ("Cpu", "Cuda")
                                              for t in ("track_busbw", "track_time")}
    for e in exported:
        found = discovered[e["name"]]
        for key in ("type", "unit", "version", "param_names", "params"):
            assert found[key] == e[key], key


def test_asv_key_maps_allreduce_cases_and_leaves_p2p_out():
    cpu, cuda = get_suite("interconnect").asv_specs()
    assert (cpu.class_name, cuda.class_name) == ("AllreduceCpu", "AllreduceCuda")
    assert cpu.param_names == ("size", "dtype", "inplace", "impl")
    case = {"pattern": "allreduce", "size": 1024, "dtype": "bf16", "inplace": True}
    key = cpu.key(case, "cpu", "rma-ring")
    assert key == (1024, "bf16", True, "rma-ring")
    for name, values in zip(cpu.param_names, cpu.param_values):
        assert key[cpu.param_names.index(name)] in values
    assert cuda.key(case, "cpu", "rma-ring") is None and cuda.key(case, "cuda:0", "nccl") == (1024, "bf16", True, "nccl")
    assert cpu.key({"pattern": "p2p", "size": 4096, "dtype": "fp32", "inplace": False}, "cpu", "mpi") is None
    assert max(cuda.param_values[0]) == 2**30 and "nccl" not in cpu.param_values[3]


@needs_mpi
def test_run_lands_in_asv_results(tmp_path):
    from aibench.fingerprint import git_commit

    if git_commit() is None:
        pytest.skip("aibench not built from a git checkout")
    results = tmp_path / "results"
    p = run_cli("run", "--suite", "interconnect", "--param", "size=4k", "--param", "pattern=allreduce",
                "--param", "inplace=false", "--impl", "mpi", "--impl", "rma-ring", "--output", str(tmp_path / "r.json"),
                "--asv-results", str(results), "--machine", "ic-node", "--time-budget", "0.1")
    assert p.returncode == 0, p.stdout + p.stderr
    files = list((results / "ic-node").glob("*.json"))
    data = [json.loads(f.read_text()) for f in files if f.name != "machine.json"]
    assert data, files
    track = data[0]["results"]["interconnect.AllreduceCpu.track_busbw"]
    values = [v for v in track[0] if v is not None]
    assert len(values) == 2 and all(v > 0 for v in values)  # mpi and rma-ring at 4 KiB fp32
    machine = json.loads((results / "ic-node" / "machine.json").read_text())
    from mpi4py import MPI

    assert machine["mpi"] == MPI.Get_library_version().strip().splitlines()[0].strip()


# ---- the MPI thread level (--mpi-thread-level) ------------------------------------------------


def _thread_level_run(tmp_path, name, launch, *args, **env):
    """A tiny all-reduce run (mpi, 4 KiB, 2 ranks) and its document."""
    out = tmp_path / f"{name}.json"
    cli = ["run", "--suite", "interconnect", "--impl", "mpi", "--param", "pattern=allreduce", "--param", "size=4k",
           "--param", "inplace=false", "--time-budget", "0.1", "--no-asv", "--output", str(out), *args]
    p = subprocess.run([*launch, sys.executable, "-m", "aibench.cli", *cli], capture_output=True, text=True,
                       timeout=120, env=clean_env(**env))
    assert p.returncode == 0, p.stdout + p.stderr
    return json.loads(out.read_text())


@needs_mpi
def test_the_default_thread_level_is_plain_mpi_init_like_imb_and_osu(tmp_path):
    # Self-launched ranks; mpi4py's own override variables must not decide the level.
    doc = _thread_level_run(tmp_path, "default", [], "--ranks", "2", MPI4PY_RC_THREADS="true",
                            MPI4PY_RC_THREAD_LEVEL="multiple")
    info = doc["system"]["mpi"]
    # thread_level is what MPI_Query_thread returned on every rank (gathered).
    assert (info["init_call"], info["thread_level_requested"], info["thread_level"]) == ("MPI_Init", "single", "single")
    [case] = doc["cases"]
    assert case["case_id"] == "allreduce-4KiB-fp32" and case["status"] == "passed"
    assert case["params"]["mpi_thread_level"] == "single" and case["impl_detail"]["mpi_thread_level"] == "single"


@needs_mpi
def test_a_chosen_thread_level_reaches_every_rank_and_is_its_own_case(tmp_path):
    # Under an external mpiexec every rank parses the option itself.
    doc = _thread_level_run(tmp_path, "multiple", mpiexec(2), "--mpi-thread-level", "multiple")
    info = doc["system"]["mpi"]
    assert info["init_call"] == "MPI_Init_thread(MPI_THREAD_MULTIPLE)"
    assert (info["thread_level_requested"], info["thread_level"]) == ("multiple", "multiple")
    [case] = doc["cases"]
    assert case["case_id"] == "allreduce-4KiB-fp32-thread-multiple" and case["status"] == "passed"
    assert case["params"]["mpi_thread_level"] == "multiple" and case["impl_detail"]["mpi_thread_level"] == "multiple"


def test_a_non_default_thread_level_stays_out_of_asv():
    suite = get_suite("interconnect")
    base = {"pattern": "allreduce", "size": 1 << 20, "dtype": "fp32", "inplace": False, "timing": "pipelined"}
    keys = {level: [spec.key({**base, "mpi_thread_level": level}, "cpu", "mpi") for spec in suite.asv_specs()]
            for level in mpi.THREAD_LEVELS}
    assert sum(k is not None for k in keys["single"]) == 1  # the cpu class
    assert all(k is None for level in ("funneled", "serialized", "multiple") for k in keys[level])
    assert suite.case_id({"pattern": "p2p", "size": 4 << 20, "mpi_thread_level": "funneled"}) == "p2p-4MiB-thread-funneled"

