"""Interconnect suite: all-reduce over MPI ranks (the library's MPI_Allreduce, aibench's
own one-sided RMA algorithms, NCCL) and the point-to-point link matrix.

Every rank of the run takes part in every case (the suite is `uses_mpi`); rank 0's
CaseResult is the one recorded. Case families (param `pattern`):
  allreduce  size x dtype x inplace; metrics as nccl-tests reports them: time_us (the
             slowest rank's average per iteration), algbw_gbps = bytes / time,
             busbw_gbps = algbw x 2(n-1)/n, lat_p50_us / lat_p99_us of the slowest rank's
             per-iteration times. After timing, one checked run with exact small-integer
             inputs and NaN-poisoned outputs; any wrong element on any rank fails the case.
  p2p        the pairwise bandwidth / latency matrix (p2p.py), impl `mpi` only.
Impls: `mpi` (host buffers on the cpu target; CuPy buffers through a CUDA-aware MPI on the
cuda target), `rma-<algorithm>` (passive target: Lock_all + Put + Flush + counters) and
`rma-<algorithm>-fence` (active target: Fence) for ring, recursive-doubling and
rabenseifner (rma.py), and `nccl` (cuda target, CuPy).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ... import mpi
from ...errors import SkipCase, UsageError
from ...results import FAILED, PASSED, SKIPPED, CaseResult, Metric, RunDocument, Validation, now_iso
from ...stats import summarize
from ...targets import Target
from ..base import AsvSpec, AsvTrack, Impl, Param, RunContext, Suite, choice, per_target_asv_specs
from .common import DTYPES, FORMATS, GiB, MiB, ExactInputs, busbw_factor, fmt_size, parse_bool, parse_size, sweep_sizes
from .measure import max_iterations, min_iterations, time_collective

PATTERNS = ("allreduce", "p2p")
RMA_ALGORITHMS = ("ring", "recursive-doubling", "rabenseifner")
_RMA_IMPLS = {f"rma-{alg}{'-fence' if sync == 'fence' else ''}": (alg, sync)
              for alg in RMA_ALGORITHMS for sync in ("flush", "fence")}
_RMA_DESCRIPTION = {
    "ring": "ring reduce-scatter + all-gather (bandwidth-optimal)",
    "recursive-doubling": "recursive doubling (latency-bound sizes)",
    "rabenseifner": "Rabenseifner: recursive-halving reduce-scatter + recursive-doubling all-gather",
}
_MAX_BYTES = {"cpu": {"quick": 64 * MiB, "standard": 256 * MiB, "full": 256 * MiB},
              "cuda": {"quick": 64 * MiB, "standard": 256 * MiB, "full": 1 * GiB}}
_P2P_BYTES = {"quick": [4 * MiB], "standard": [4 * MiB], "full": [64 * 1024, 4 * MiB, 64 * MiB]}


def _host_mpi_reason(target: Target) -> str | None:
    return mpi.mpi_unavailable_reason()


def _mpi_reason(target: Target) -> str | None:
    reason = mpi.mpi_unavailable_reason()
    if reason is None and target.kind == "cuda":
        from .gpu import gpu_unavailable_reason

        reason = gpu_unavailable_reason()
    return reason


def _nccl_reason(target: Target) -> str | None:
    from .gpu import nccl_unavailable_reason

    return mpi.mpi_unavailable_reason() or nccl_unavailable_reason()


class InterconnectSuite(Suite):
    name = "interconnect"
    description = ("All-reduce busbw/algbw over MPI ranks (MPI_Allreduce, own RMA ring/recursive-doubling/"
                   "Rabenseifner, NCCL), validated exactly; point-to-point link matrix")
    uses_mpi = True  # every rank runs every case (runner.py, cli.py)
    params = {
        "pattern": Param("pattern", choice(PATTERNS), "allreduce, or p2p (pairwise bandwidth/latency matrix)"),
        "size": Param("size", parse_size, "message bytes: 8, 4k, 1M, 256MiB"),
        "dtype": Param("dtype", choice(DTYPES), "element type: " + " ".join(DTYPES)),
        "inplace": Param("inplace", parse_bool, "in-place all-reduce: true/false"),
    }
    target_kinds = ("cpu", "cuda")
    comparisons = tuple((name, "mpi") for name in _RMA_IMPLS) + (("nccl", "mpi"),)

    def impls(self) -> list[Impl]:
        out = [Impl("mpi", "the MPI library's MPI_Allreduce (mpi4py buffer methods; cuda target: CuPy "
                           "buffers through a CUDA-aware MPI)", ("cpu", "cuda"), _mpi_reason)]
        for name, (alg, sync) in _RMA_IMPLS.items():
            how = "Fence per step" if sync == "fence" else "passive target: Lock_all, Put + Flush + atomic counters"
            out.append(Impl(name, f"own one-sided all-reduce, {_RMA_DESCRIPTION[alg]}; {how}; SIMD local sum",
                            ("cpu",), _host_mpi_reason))
        out.append(Impl("nccl", "NCCL ncclAllReduce through CuPy (cupy.cuda.nccl)", ("cuda",), _nccl_reason))
        return out

    def impls_for_case(self, params: dict[str, Any], impls: list[Impl]) -> list[Impl]:
        """The p2p matrix is the MPI library's point-to-point: impl `mpi` only."""
        if params.get("pattern") == "p2p":
            return [i for i in impls if i.name == "mpi"]
        return impls

    def default_cases(self, tier: str, target: Target) -> list[dict[str, Any]]:
        if target.kind not in _MAX_BYTES:
            raise UsageError(f"suite interconnect does not run on target {target}")
        sizes = sweep_sizes(_MAX_BYTES[target.kind][tier])
        if target.kind == "cpu":
            dtypes = ["fp32", "bf16"] if tier == "full" else ["fp32"]
        else:
            dtypes = {"quick": ["fp32"], "standard": ["fp32", "bf16"], "full": ["fp32", "bf16", "fp16"]}[tier]
        inplace = [False] if tier == "quick" else [False, True]
        cases = [{"pattern": "allreduce", "size": s, "dtype": d, "inplace": ip}
                 for d in dtypes for ip in inplace for s in sizes]
        if target.kind == "cpu":
            cases += [{"pattern": "p2p", "size": s, "dtype": "fp32", "inplace": False} for s in _P2P_BYTES[tier]]
        return cases

    def asv_specs(self) -> list[AsvSpec]:
        """AllreduceCpu and AllreduceCuda: size x dtype x inplace x impl, tracking busbw
        (GB/s) and the time per all-reduce (seconds). The p2p matrix stays out of asv."""
        specs = per_target_asv_specs(
            self, "Allreduce", ("cpu", "cuda"), ("size", "dtype", "inplace"),
            lambda p: (p["size"], p["dtype"], p["inplace"]),
            lambda kind: (tuple(sweep_sizes(max(_MAX_BYTES[kind].values()))), DTYPES, (False, True)),
            (AsvTrack("track_busbw", "busbw_gbps", "GB/s"), AsvTrack("track_time", "time_us", "seconds", 1e-6)),
            version="1")

        def allreduce_only(spec: AsvSpec) -> AsvSpec:
            inner = spec.key
            return dataclasses.replace(spec, key=lambda params, target, impl: None
                                       if params.get("pattern") != "allreduce" else inner(params, target, impl))

        return [allreduce_only(s) for s in specs]

    def check_case(self, params: dict[str, Any], target: Target) -> None:
        size, dtype = params["size"], params["dtype"]
        if params["pattern"] == "allreduce":
            item = FORMATS[dtype].itemsize
            if size % item:
                raise UsageError(f"interconnect size {size} B is not a whole number of {dtype} elements ({item} B each)")
        if size > 1 << 40:
            raise UsageError(f"interconnect size {fmt_size(size)} is impossible (more than 1 TiB per rank)")
        try:
            import psutil

            total = psutil.virtual_memory().total
        except Exception:  # noqa: BLE001
            total = None
        if not total:
            return
        # Impossible on this node: every rank on it allocates its own buffers, and even the
        # least hungry impl's do not fit in the node's memory. Whether the impl that runs
        # fits in the memory *available* then is checked per impl before it allocates
        # (_run_allreduce, _run_p2p: a skip).
        local, world = ranks_on_this_node()
        if params["pattern"] == "p2p":
            ranks, per_rank = p2p_ranks(local, mpi.current()), p2p_bytes_per_rank(size)
            what = "receive window and the expected pattern"
        else:
            count = size // FORMATS[dtype].itemsize
            per_rank, impl = min((host_bytes_per_rank(i, target.kind, count, dtype, bool(params["inplace"]), world), i)
                                 for i in _host_impls(target.kind))
            ranks, what = local, f"send, receive and scratch buffers of the least hungry impl, {impl}"
        need = per_rank * ranks
        if need > total:
            raise UsageError(f"interconnect size {fmt_size(size)} does not fit: {ranks} rank(s) on this node x "
                             f"{per_rank / GiB:.1f} GiB per rank ({what}) = {need / GiB:.1f} GiB, "
                             f"this node has {total / GiB:.1f} GiB")

    def case_id(self, params: dict[str, Any]) -> str:
        if params["pattern"] == "p2p":
            return f"p2p-{fmt_size(params['size'])}"
        return f"allreduce-{fmt_size(params['size'])}-{params['dtype']}{'-inplace' if params['inplace'] else ''}"

    # ---- running one case (collective) ---------------------------------------------------------
    def run_case(self, params: dict[str, Any], impl: Impl, ctx: RunContext) -> CaseResult:
        session = mpi.current()
        if session is None:
            if not mpi.under_launcher():
                return self._run_launched(params, impl, ctx)
            session = mpi.start_session()
        result = CaseResult(suite=self.name, case_id=self.case_id(params), params=dict(params),
                            target=str(ctx.target), impl=impl.name, status=SKIPPED, started_at=now_iso())
        started = time.perf_counter()
        result.impl_detail = {"topology": session.topology(), "mpi_library": session.info.get("library")}
        try:
            if params["pattern"] == "p2p":
                self._run_p2p(session, params, impl, ctx, result)
            else:
                self._run_allreduce(session, params, impl, ctx, result)
        finally:
            result.duration_s = time.perf_counter() - started
        return result

    def _skip_or_fail(self, result: CaseResult, errors: list[tuple[int, str, str]], session: mpi.Session) -> None:
        failed = [e for e in errors if e[1] == FAILED]
        rank, kind, message = (failed or errors)[0]
        where = f" (rank {rank} on {session.hosts[rank]})" if session.size > 1 else ""
        if kind == SKIPPED:
            result.status = SKIPPED
            result.validation = Validation(status=SKIPPED, reason=message + where)
        else:
            result.status = FAILED
            result.error = message + where
            result.validation = Validation(status=FAILED, reason="the case raised an exception")

    def _run_allreduce(self, session: mpi.Session, params: dict[str, Any], impl: Impl, ctx: RunContext,
                       result: CaseResult) -> None:
        comm, rank, size = session.comm, session.rank, session.size
        dtype, nbytes, inplace = params["dtype"], params["size"], bool(params["inplace"])
        count = nbytes // FORMATS[dtype].itemsize

        def check_available() -> None:
            reason = impl.unavailable_reason(ctx.target) if ctx.target.kind in impl.target_kinds else \
                f"impl {impl.name} does not run on the {ctx.target.kind} target"
            if reason is None:
                reason = _memory_reason(session, host_bytes_per_rank(impl.name, ctx.target.kind, count, dtype,
                                                                     inplace, size))
            if reason is not None:
                raise SkipCase(reason)

        _, errors = _phase(comm, check_available)
        if errors:
            return self._skip_or_fail(result, errors, session)
        runner, errors = _phase(comm, lambda: _make_runner(impl.name, ctx.target, comm, count, dtype, inplace, session))
        if errors:
            return self._skip_or_fail(result, errors, session)
        inputs = ExactInputs(dtype, size)
        budget = ctx.policy.budget_s

        def timed():
            runner.fill(inputs, rank)  # never zeros: the same small integers as the check
            return time_collective(comm, runner.run, nbytes, budget, min_iterations(budget), max_iterations(budget))

        timing, errors = _phase(comm, timed)
        if errors:
            return self._skip_or_fail(result, errors, session)

        def checked() -> tuple[int, int | None]:
            runner.prepare_check(inputs, rank)  # collective for RMA (poisons the scratch slots)
            runner.run()
            return inputs.count_wrong(runner.result_host())

        check, errors = _phase(comm, checked)
        if errors:
            return self._skip_or_fail(result, errors, session)
        wrong_by_rank = comm.allgather(check)
        detail, errors = _phase(comm, runner.detail)
        _, close_errors = _phase(comm, runner.close)
        if not session.is_root:
            return
        result.impl_detail.update(detail or {})
        result.impl_detail.update({"elements": count, "ranks": size, "iterations": timing.iters,
                                   "time_us_min_rank": min(timing.rank_avg) * 1e6,
                                   "time_us_avg_rank": float(np.mean(timing.rank_avg)) * 1e6,
                                   "time_us_max_rank": max(timing.rank_avg) * 1e6,
                                   "check_inputs": f"((i + rank) mod {inputs.k}) - {inputs.amp}"})
        result.stats = timing.stats()
        wrong = sum(w for w, _ in wrong_by_rank)
        if wrong:
            bad = [(r, w, f) for r, (w, f) in enumerate(wrong_by_rank) if w]
            r0, _, f0 = bad[0]
            result.status = FAILED
            result.validation = Validation(
                status=FAILED, max_rel_error=None, tolerance=0.0,
                reason=(f"wrong result: {wrong} wrong element(s) summed over {len(bad)} of {size} rank(s) "
                        f"({count} elements per rank; first at index {f0} on rank {r0})"))
            result.error = result.validation.reason
            return
        result.validation = Validation(status=PASSED, max_rel_error=0.0, tolerance=0.0)
        if close_errors:
            result.impl_detail["close_error"] = close_errors[0][2]
        result.status = PASSED
        t = timing.time_s
        algbw = nbytes / t / 1e9
        samples_us = timing.samples * 1e6
        result.metrics = {
            "busbw_gbps": Metric(algbw * busbw_factor(size), "GB/s", True),
            "algbw_gbps": Metric(algbw, "GB/s", True),
            "time_us": Metric(t * 1e6, "us", False),
            "lat_p50_us": Metric(float(np.percentile(samples_us, 50)), "us", False),
            "lat_p99_us": Metric(float(np.percentile(samples_us, 99)), "us", False),
        }

    def _run_p2p(self, session: mpi.Session, params: dict[str, Any], impl: Impl, ctx: RunContext,
                 result: CaseResult) -> None:
        from .p2p import link_matrix, participants

        comm = session.comm
        nbytes = params["size"]

        def check_available() -> None:
            reason = impl.unavailable_reason(ctx.target) if impl.name == "mpi" and ctx.target.kind == "cpu" else \
                "the p2p matrix runs with impl mpi on the cpu target"
            if reason is None and len(participants(session)) < 2:
                reason = "the p2p matrix needs at least 2 ranks"
            if reason is None:
                reason = _memory_reason(session, p2p_bytes_per_rank(nbytes), p2p_ranks(session.local_size, session))
            if reason is not None:
                raise SkipCase(reason)

        _, errors = _phase(comm, check_available)
        if errors:
            return self._skip_or_fail(result, errors, session)
        budget = ctx.policy.budget_s
        matrix, errors = _phase(comm, lambda: link_matrix(session, nbytes, budget, min_iterations(budget)))
        if errors:
            return self._skip_or_fail(result, errors, session)
        if not session.is_root:
            return
        result.impl_detail["p2p"] = matrix
        times = matrix.pop("weakest_window_times_s")
        if times:
            result.stats = {"number": 1, "warmup_reps": 2, "stopped_by": "iterations",
                            **summarize(times).to_dict(), "samples_s": times,
                            "what": "seconds per window of the weakest link"}
        if matrix["wrong_bytes"]:
            result.status = FAILED
            result.validation = Validation(status=FAILED, tolerance=0.0,
                                           reason=f"wrong data: {matrix['wrong_bytes']} byte(s) received wrong on "
                                                  f"{', '.join(matrix['wrong_links'])}")
            result.error = result.validation.reason
            return
        result.status = PASSED
        result.validation = Validation(status=PASSED, max_rel_error=0.0, tolerance=0.0)
        bw = [g for row in matrix["bw_gbps"] for g in row if g is not None]
        p50 = [v for row in matrix["lat_p50_us"] for v in row if v is not None]
        p99 = [v for row in matrix["lat_p99_us"] for v in row if v is not None]
        result.metrics = {
            "gbps": Metric(min(bw), "GB/s", True),  # the weakest link
            "gbps_median": Metric(float(np.median(bw)), "GB/s", True),
            "lat_p50_us": Metric(max(p50), "us", False),  # the worst pair
            "lat_p99_us": Metric(max(p99), "us", False),
            "slow_links": Metric(float(len(matrix["slow_links"])), "links", False),
        }

    # ---- outside any MPI run (asv, a plain Python call) -----------------------------------------
    def _run_launched(self, params: dict[str, Any], impl: Impl, ctx: RunContext) -> CaseResult:
        """Run this one case through `aibench run`, which launches the ranks itself."""
        result = CaseResult(suite=self.name, case_id=self.case_id(params), params=dict(params),
                            target=str(ctx.target), impl=impl.name, status=SKIPPED, started_at=now_iso())
        reason = mpi.mpi_unavailable_reason()
        if reason is not None:
            result.validation = Validation(status=SKIPPED, reason=reason)
            return result
        with tempfile.TemporaryDirectory(prefix="aibench-ic-") as tmp:
            out = Path(tmp) / "case.json"
            args = ["run", "--suite", self.name, "--target", str(ctx.target), "--impl", impl.name, "--no-asv",
                    "--output", str(out), "--time-budget", repr(ctx.policy.budget_s),
                    "--ranks", os.environ.get("AIBENCH_RANKS", str(mpi.DEFAULT_RANKS))]
            for key, value in params.items():
                args += ["--param", f"{key}={str(value).lower() if isinstance(value, bool) else value}"]
            proc = subprocess.run([sys.executable, "-m", "aibench.cli", *args], capture_output=True, text=True,
                                  timeout=1800)
            if out.exists():
                cases = [c for c in RunDocument.load(out).cases if c.impl == impl.name]
                if cases:
                    return cases[0]
        result.status = FAILED
        result.error = f"launched run exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-500:]}"
        return result


# ---- helpers ---------------------------------------------------------------------------------------


def _phase(comm, fn: Callable[[], Any]) -> tuple[Any, list[tuple[int, str, str]]]:
    """Run fn on every rank; all ranks learn whether any failed. Returns (value, errors)
    where errors lists (rank, 'skipped'|'failed', message) for every rank that did."""
    err = None
    value = None
    try:
        value = fn()
    except SkipCase as e:
        err = (SKIPPED, str(e))
    except Exception as e:  # noqa: BLE001 - one rank's failure fails the case on every rank
        err = (FAILED, f"{type(e).__name__}: {e}")
        if os.environ.get("AIBENCH_DEBUG"):
            traceback.print_exc()
    if mpi.agree(comm, err is None):
        return value, []
    errors = comm.allgather(err)
    return value, [(r, e[0], e[1]) for r, e in enumerate(errors) if e is not None]


def _memory_reason(session: mpi.Session, per_rank_bytes: int, ranks: int | None = None) -> str | None:
    """Why `ranks` ranks on this node (default: all of them), each holding per_rank_bytes,
    cannot run in the memory available now, or None."""
    try:
        import psutil

        available = psutil.virtual_memory().available
    except Exception:  # noqa: BLE001
        return None
    ranks = session.local_size if ranks is None else ranks
    need = per_rank_bytes * ranks
    if need > 0.8 * available:
        return (f"needs {need / GiB:.1f} GiB on {session.host} ({ranks} rank(s) x "
                f"{per_rank_bytes / GiB:.2f} GiB), {available / GiB:.1f} GiB available")
    return None


# Host bytes the exact check (common.ExactInputs) holds at its peak on each rank, whatever
# the message size: its expected block (at most 8 B per value) plus the int64 / float64
# steps of fill and count_wrong (16 B per value, measured), over blocks of at most 2**18 + K
# values (K <= 9); 32 B per value leaves a margin.
CHECK_BYTES = 32 * ((1 << 18) + 16)
# p2p._pattern builds its bytes through int64 steps: two int64 arrays and the uint8 result.
_PATTERN_BYTES_PER_BYTE = 17


def host_bytes_per_rank(impl_name: str, target_kind: str, count: int, dtype: str, inplace: bool,
                        nranks: int) -> int:
    """Peak host memory one rank holds for one all-reduce case of `count` elements with
    this impl, over `nranks` ranks in all:
      rma-*       the MPI window (rma.window_layout: counters, result, fold slot, two
                  parities of scratch slots; 3n to 2n(lg p + 1) + n for n message bytes)
                  and the send buffer (out of place);
      mpi (cpu)   result and send buffers, and the library's scratch (MPICH's allreduce
                  algorithms allocate a count x extent temporary);
      GPU impls   device buffers are checked by the runner (gpu.py); on the host, the
                  staging arrays fill / prepare_check / result_host make (n, 2n out of place);
    each plus the exact check's block temporaries (CHECK_BYTES)."""
    itemsize = FORMATS[dtype].itemsize
    nbytes = count * itemsize
    send = 0 if inplace else nbytes
    if impl_name in _RMA_IMPLS:
        from .rma import window_bytes

        return window_bytes(_RMA_IMPLS[impl_name][0], count, itemsize, nranks) + send + CHECK_BYTES
    if impl_name == "mpi" and target_kind == "cpu":
        return nbytes + send + (nbytes if nranks > 1 else 0) + CHECK_BYTES
    return nbytes + send + CHECK_BYTES


def p2p_bytes_per_rank(nbytes: int) -> int:
    """Peak host memory of one rank in the p2p matrix (p2p.py): as a receiver, the window of
    W buffers, then the expected pattern (built through int64 steps) or the W x nbytes
    comparison with it; a sender holds only its pattern (less). Plus 1 MiB for the small
    arrays (latency and acknowledgement buffers, timings)."""
    window = min(64, max(1, (64 * MiB) // nbytes))
    return window * nbytes + max(_PATTERN_BYTES_PER_BYTE * nbytes, window * nbytes + nbytes) + MiB


def p2p_ranks(local: int, session: mpi.Session | None = None) -> int:
    """Ranks of this node that take part in the p2p matrix at the same time: every rank of
    a one-node run, one per node (the lowest) when there are several (p2p.participants)."""
    if session is not None and len(session.node_ranks()) > 1:
        return 1
    return local


def _host_impls(target_kind: str) -> list[str]:
    if target_kind == "cuda":
        return ["mpi", "nccl"]
    return ["mpi", *_RMA_IMPLS]


def ranks_on_this_node() -> tuple[int, int]:
    """(ranks on this node, ranks in the run): from the MPI session; before it starts, from
    the launcher's environment (Open MPI, MPICH hydra, Slurm); outside any launcher (a run
    that has yet to launch its ranks) 1 and 1 — the launched ranks check again."""
    session = mpi.current()
    if session is not None:
        return session.local_size, session.size
    if not mpi.under_launcher():
        return 1, 1
    env = os.environ
    local = _env_count(env, "OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_STEP_TASKS_PER_NODE",
                       "SLURM_TASKS_PER_NODE")
    world = _env_count(env, "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS")
    local = local or 1
    return local, max(world or local, local)


def _env_count(env, *names: str) -> int | None:
    """The first of `names` set to a count: an integer, or Slurm's tasks-per-node list
    ("4(x2),3": the largest)."""
    for name in names:
        text = env.get(name, "").strip()
        if not text:
            continue
        counts = [int(part.split("(")[0]) for part in text.split(",") if part.split("(")[0].strip().isdigit()]
        if counts:
            return max(counts)
    return None


def _make_runner(name: str, target: Target, comm, count: int, dtype: str, inplace: bool, session: mpi.Session):
    if name in _RMA_IMPLS:
        from .host import RmaRunner

        alg, sync = _RMA_IMPLS[name]
        return RmaRunner(comm, count, dtype, inplace, alg, sync)
    if name == "mpi" and target.kind == "cpu":
        from .host import MpiHostAllreduce

        return MpiHostAllreduce(comm, count, dtype, inplace)
    if name == "mpi":
        from .gpu import CudaMpiAllreduce

        return CudaMpiAllreduce(comm, count, dtype, inplace, session.local_rank)
    if name == "nccl":
        from .gpu import NcclAllreduce

        return NcclAllreduce(comm, count, dtype, inplace, session.local_rank)
    raise SkipCase(f"unknown interconnect impl {name!r}")
