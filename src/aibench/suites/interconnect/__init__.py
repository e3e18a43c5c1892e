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
import traceback
from typing import Any, Callable

import numpy as np

from ... import mpi, watchdog
from ...faults import stop_if_hang
from ...fit import amount, fits
from ...errors import SkipCase, UsageError
from ...results import FAILED, SKIPPED, CaseResult, Metric, Samples, Validation, now_iso
from ...targets import Target
from ...units import choice, parse_bool, parse_size
from ..base import (AsvSpec, AsvTrack, CaseFailed, Impl, ImplInfo, Option, Param, RunContext, Suite,
                    per_target_asv_specs)
from ..charts import Chart, size_ticks
from ...registry import register_suite
from ...units import GiB, MiB
from .common import DTYPES, FORMATS, RUN_SESSION, busbw_factor, fmt_size, sweep_sizes
from .gpu import CudaMpiAllreduce, NcclAllreduce
from .host import RMA_IMPLS, MpiHostAllreduce
from .measure import DEFAULT_TIMING, TIMINGS
from .p2p import P2pMatrix

PATTERNS = ("allreduce", "p2p")
_MAX_BYTES = {"cpu": {"quick": 64 * MiB, "standard": 256 * MiB, "full": 256 * MiB},
              "cuda": {"quick": 64 * MiB, "standard": 256 * MiB, "full": 1 * GiB}}
_P2P_BYTES = {"quick": [4 * MiB], "standard": [4 * MiB], "full": [64 * 1024, 4 * MiB, 64 * MiB]}


@register_suite
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
    options = (Option("timing", "how all-reduce calls are timed: pipelined (back to back, as nccl-tests and "
                              "IMB-MPI1 -sync off; the default) or barrier (a barrier before each call, as "
                              "osu_allreduce and IMB-MPI1's default)", "STYLE"),)
    target_kinds = ("cpu", "cuda")
    IMPLS = (MpiHostAllreduce, *RMA_IMPLS, CudaMpiAllreduce, NcclAllreduce)
    comparisons = tuple((c.name, "mpi") for c in RMA_IMPLS) + (("nccl", "mpi"),)
    # The p2p link matrix is not an all-reduce: its gbps is a link's rate.
    charts = (Chart(name="interconnect-allreduce", title="All-reduce bus bandwidth against message size", x="size",
                    x_label="message size (bytes)", x_ticks=size_ticks, log_x=True, metric="busbw_gbps",
                    y_label="busbw (GB/s)", series=("dtype", "inplace"),
                    labels={"inplace": lambda inplace: "in-place" if inplace else ""},
                    where=lambda p: p.get("pattern") == "allreduce"),)

    def impls_for_case(self, params: dict[str, Any], impls: list[ImplInfo]) -> list[ImplInfo]:
        """The p2p matrix is the MPI library's point-to-point: impl `mpi` only."""
        if params.get("pattern") == "p2p":
            return [i for i in impls if i.name == "mpi"]
        return impls

    def normalize_case(self, case: dict[str, Any]) -> dict[str, Any]:
        """The p2p matrix moves bytes: dtype and inplace do not apply to it."""
        return {**case, "dtype": "fp32", "inplace": False} if case.get("pattern") == "p2p" else case

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

        def allreduce_only(spec: AsvSpec) -> AsvSpec:  # and the default timing and thread level only
            inner = spec.key
            return dataclasses.replace(spec, key=lambda params, target, impl: None
                                       if params.get("pattern") != "allreduce"
                                       or params.get("timing", DEFAULT_TIMING) != DEFAULT_TIMING
                                       or params.get("mpi_thread_level", mpi.DEFAULT_THREAD_LEVEL)
                                       != mpi.DEFAULT_THREAD_LEVEL
                                       else inner(params, target, impl))

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
        # (prepare: a skip).
        local, world = ranks_on_this_node()
        if params["pattern"] == "p2p":
            ranks, per_rank = p2p_ranks(local, mpi.current()), p2p_bytes_per_rank(size)
            what = "receive window and the expected pattern"
        else:
            count = size // FORMATS[dtype].itemsize
            per_rank, impl = min((c.host_bytes(count, dtype, bool(params["inplace"]), world), c.name)
                                 for c in self.impl_classes() if target.kind in c.target_kinds)
            ranks, what = local, f"send, receive and scratch buffers of the least hungry impl, {impl}"
        reason = fits(per_rank * ranks, total, f"interconnect size {fmt_size(size)}", share=1,
                      held=f"{ranks} rank(s) on this node x {amount(per_rank)} per rank ({what})", of="this node has")
        if reason:
            raise UsageError(reason)

    def validate_options(self, options: dict[str, Any]) -> None:
        timing = options.get("timing")
        if timing is not None and timing not in TIMINGS:
            raise UsageError(f"bad --timing {timing!r}: expected one of {', '.join(TIMINGS)}")

    def case_id(self, params: dict[str, Any]) -> str:
        # The timing and the MPI thread level change what the figure means (the library
        # may take another path by level): a non-default one is its own case.
        level = params.get("mpi_thread_level", mpi.DEFAULT_THREAD_LEVEL)
        level_suffix = "" if level == mpi.DEFAULT_THREAD_LEVEL else "-thread-" + level
        if params["pattern"] == "p2p":
            return f"p2p-{fmt_size(params['size'])}{level_suffix}"
        timing = params.get("timing", DEFAULT_TIMING)
        return (f"allreduce-{fmt_size(params['size'])}-{params['dtype']}{'-inplace' if params['inplace'] else ''}"
                f"{'' if timing == DEFAULT_TIMING else '-' + timing}{level_suffix}")

    # ---- running one case (collective) ---------------------------------------------------------
    def run_case(self, params: dict[str, Any], impls: list[ImplInfo] | ImplInfo, ctx: RunContext) -> list[CaseResult]:
        group = [impls] if isinstance(impls, ImplInfo) else list(impls)
        session = mpi.current()
        if session is None:
            if not mpi.under_launcher():  # asv_benchmarks.run_point launches the ranks for asv
                return [self._outside_mpi(params, impl, ctx) for impl in group]
            session = mpi.start_session()
        # The run holds the session for its impls (RUN_SESSION); MPI is initialised once per
        # process, so the process, not the run, ends it.
        self._session = ctx.resource(RUN_SESSION, lambda: session)
        # Recorded in the result's params and case id.
        params = {**params, "mpi_thread_level": session.thread_level}
        if params["pattern"] == "allreduce":
            params = {**params, "timing": ctx.options.get("timing") or DEFAULT_TIMING}
        with watchdog.section(f"{self.name} {self.case_id(params)}"):
            results = super().run_case(params, group, ctx)
        for r in results:
            r.impl_detail = {"topology": session.topology(), "mpi_library": session.info.get("library"),
                             "mpi_thread_level": mpi.provided_thread_level(), **r.impl_detail}
        return results

    def _outside_mpi(self, params: dict[str, Any], impl: ImplInfo, ctx: RunContext) -> CaseResult:
        """A case asked for outside any MPI run: skipped, saying how its ranks are started."""
        reason = mpi.mpi_unavailable_reason() or ("needs MPI ranks: `aibench run --suite interconnect` launches them "
                                                  "(or mpiexec -n N aibench run ...)")
        return CaseResult(suite=self.name, case_id=self.case_id(params), params=dict(params), target=str(ctx.target),
                          impl=impl.name, status=SKIPPED, started_at=now_iso(),
                          validation=Validation(status=SKIPPED, reason=reason))

    def stage(self, step: Callable[[], Any]) -> Any:
        """Every rank runs the step; all learn whether any rank skipped or failed it, and
        all raise the same outcome (the first failing rank's, naming it)."""
        session = self._session
        watchdog.progress()
        value, errors = _phase(session.comm, step)
        watchdog.progress()
        if not errors:
            return value
        failed = [e for e in errors if e[1] == FAILED]
        rank, kind, message = (failed or errors)[0]
        where = f" (rank {rank} on {session.hosts[rank]})" if session.size > 1 else ""
        raise SkipCase(message + where) if kind == SKIPPED else CaseFailed(message + where)

    def prepare(self, params: dict[str, Any], impl: type[Impl], ctx: RunContext) -> Impl:
        session = self._session
        watchdog.where(impl.name)
        stop_if_hang(impl.name, session.rank, session.size)  # tests: a rank that stops answering
        nbytes = params["size"]
        if params["pattern"] == "p2p":
            if impl.name != "mpi" or ctx.target.kind != "cpu":
                raise SkipCase("the p2p matrix runs with impl mpi on the cpu target")
            op = P2pMatrix(params, ctx)
            _check_memory(session, p2p_bytes_per_rank(nbytes), p2p_ranks(session.local_size, session))
            return op
        dtype, inplace = params["dtype"], bool(params["inplace"])
        count = nbytes // FORMATS[dtype].itemsize
        _check_memory(session, impl.host_bytes(count, dtype, inplace, session.size))
        return impl(params, ctx)

    def metrics(self, params: dict[str, Any], samples: Samples, op: Impl) -> dict[str, Metric]:
        if params["pattern"] == "p2p":
            m = op.matrix
            bw = [g for row in m["bw_gbps"] for g in row if g is not None]
            p50 = [v for row in m["lat_p50_us"] for v in row if v is not None]
            p99 = [v for row in m["lat_p99_us"] for v in row if v is not None]
            return {
                "gbps": Metric(min(bw), "GB/s", True),  # the weakest link
                "gbps_median": Metric(float(np.median(bw)), "GB/s", True),
                "lat_p50_us": Metric(max(p50), "us", False),  # the worst pair
                "lat_p99_us": Metric(max(p99), "us", False),
                "slow_links": Metric(float(len(m["slow_links"])), "links", False),
            }
        # As nccl-tests reports them: the slowest rank's average per iteration.
        t = op.timing.time_s
        algbw = params["size"] / t / 1e9
        samples_us = np.asarray(samples.samples_s) * 1e6
        return {
            "busbw_gbps": Metric(algbw * busbw_factor(self._session.size), "GB/s", True),
            "algbw_gbps": Metric(algbw, "GB/s", True),
            "time_us": Metric(t * 1e6, "us", False),
            "lat_p50_us": Metric(float(np.percentile(samples_us, 50)), "us", False),
            "lat_p99_us": Metric(float(np.percentile(samples_us, 99)), "us", False),
        }

    def bound(self, params: dict[str, Any], op: Impl, metrics: dict[str, Metric],
              fresh: bool = False) -> dict | None:
        """busbw (p2p: a link's GB/s) <= what host memory moves (bounds.host_bound); GPU
        collectives: busbw <= what the GPUs' links move, from NVML (bounds.gpu_bound)."""
        from .bounds import gpu_bound, host_bound

        if "cpu" not in type(op).target_kinds:
            return gpu_bound(self._session, op.device_index, op.shares_gpu)
        return host_bound(self._session, params["size"], fresh)


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
    return fits(per_rank_bytes * ranks, available, f"the case on {session.host}",
                held=f"{ranks} rank(s) x {per_rank_bytes / GiB:.2f} GiB")


def _check_memory(session: mpi.Session, per_rank_bytes: int, ranks: int | None = None) -> None:
    reason = _memory_reason(session, per_rank_bytes, ranks)
    if reason is not None:
        raise SkipCase(reason)


# p2p._pattern builds its bytes through int64 steps: two int64 arrays and the uint8 result.
_PATTERN_BYTES_PER_BYTE = 17


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
