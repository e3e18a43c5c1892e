"""Storage suite: sequential and random reads of a local file or block device.

Impls: `aibench`, the C++ reader of csrc/io (io_uring with registered buffers and
batched submission, or a pread thread pool where io_uring is unavailable; the engine is
recorded in impl_detail), and `fio` running the same job, side by side. Runs are
time-based: a ramp, then a measurement window of the tier's time budget. Metrics:
`gbps` (decimal GB/s), `iops`, latency percentiles from log-linear histograms
(`lat_p50_us`, `lat_p99_us`, ...), CPU time. A sample of the blocks aibench reads is
checked against the content it wrote: a wrong block fails the case.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable

from ...errors import SkipCase, UsageError
from ...results import FAILED, PASSED, SKIPPED, CaseResult, Metric, Validation, now_iso
from ...stats import summarize
from ...targets import Target
from ..base import TIERS, AsvSpec, AsvTrack, Impl, Param, RunContext, Suite, choice, positive_int
from . import fio as fio_mod
from .source import ReadSource, open_source, validate_options

ENGINES = ("auto", "io_uring", "pread")
_SEQ = ([128 << 10, 1 << 20, 4 << 20], [1, 8, 32])
_RAND = ([4 << 10, 16 << 10, 128 << 10], [1, 32, 128], [1, 4])
_INTERVAL_S = 0.1
# aibench (A) and fio (B) windows of a paired measurement (StorageSuite._run_paired).
PAIRED_ORDER = "ABBAABBA"


def _bool01(text: str) -> int:
    t = text.strip().lower()
    if t in ("1", "true", "yes", "on"):
        return 1
    if t in ("0", "false", "no", "off"):
        return 0
    raise ValueError("expected 0 or 1")


def size_label(n: int) -> str:
    for unit, shift in (("G", 30), ("M", 20), ("K", 10)):
        if n >= (1 << shift) and n % (1 << shift) == 0:
            return f"{n >> shift}{unit}"
    return str(n)


def _case(pattern, bs, qd, threads=1, direct=1):
    return {"pattern": pattern, "bs": bs, "qd": qd, "threads": threads, "direct": direct}


def _aibench_unavailable(target: Target) -> str | None:
    try:
        from ... import _core
    except ImportError as e:
        return f"aibench._core is not built: {e}"
    if not hasattr(_core, "io_read"):
        return "aibench._core was built without the storage reader (csrc/io): reinstall aibench"
    if not os.uname().sysname == "Linux":
        return "the storage reader needs Linux"
    return None


def _fio_unavailable(target: Target) -> str | None:
    return None if fio_mod.fio_binary() else "fio is not installed (e.g. apt-get install fio)"


def run_timing(budget_s: float) -> tuple[float, float]:
    """(runtime, ramp) of a case: the tier's time budget, after a ramp of a quarter of it
    (0.25 to 2 s)."""
    return budget_s, min(2.0, max(0.25, budget_s / 4))


class StorageSuite(Suite):
    name = "storage"
    description = "Local reads (file or block device): GB/s, IOPS, latency percentiles; aibench's io_uring reader vs fio"
    params = {
        "pattern": Param("pattern", choice(("seq", "rand")), "seq (sequential) or rand (random offsets)"),
        "bs": Param("bs", positive_int, "block size in bytes (4k, 1M, ...)"),
        "qd": Param("qd", positive_int, "queue depth: reads in flight per thread"),
        "threads": Param("threads", positive_int, "threads (fio numjobs)"),
        "direct": Param("direct", _bool01, "1: O_DIRECT (bypass the page cache), 0: buffered"),
    }
    target_kinds = ("cpu",)
    comparisons = (("aibench", "fio"),)
    # Tests set this to corrupt the test file right after it is written.
    after_create: Callable[[str], None] | None = None

    def __init__(self):
        self.options: dict[str, Any] = {}  # defaults under RunContext.options (API and asv use)
        self._cache: dict[str, Any] = {}
        self._last_native: dict[str, CaseResult] = {}
        # fio's windows of a paired (interleaved) measurement and what they were run
        # with, kept for the fio case.
        self._paired: dict[str, tuple[list[dict], dict]] = {}

    # --- declaration ------------------------------------------------------------------
    def impls(self) -> list[Impl]:
        return [
            Impl("aibench", "C++ reader: io_uring (raw syscalls, registered buffers, batched submission) "
                 "or a pread thread pool", ("cpu",), _aibench_unavailable),
            Impl("fio", "fio, the same job (io_uring or libaio), --output-format=json", ("cpu",), _fio_unavailable),
        ]

    def default_cases(self, tier: str, target: Target) -> list[dict[str, Any]]:
        if tier == "quick":
            return [_case("seq", 1 << 20, 32), _case("rand", 4 << 10, 64)]
        seq = [_case("seq", bs, qd) for bs in _SEQ[0] for qd in _SEQ[1]]
        rand = [_case("rand", bs, qd, t) for bs in _RAND[0] for qd in _RAND[1] for t in _RAND[2]]
        return seq + rand

    def check_case(self, params: dict[str, Any], target: Target) -> None:
        bs, qd, threads = params["bs"], params["qd"], params["threads"]
        if bs % 512:
            raise UsageError(f"storage bs {bs} must be a multiple of 512")
        if bs > (256 << 20):
            raise UsageError(f"storage bs {size_label(bs)} is too large (at most 256M)")
        if qd > 4096 or threads > 1024:
            raise UsageError(f"storage qd (at most 4096) or threads (at most 1024) too large: qd {qd}, threads {threads}")
        buffers = bs * qd * threads
        import psutil

        if buffers > psutil.virtual_memory().total // 4:
            raise UsageError(f"storage case needs {buffers >> 20} MiB of I/O buffers (bs x qd x threads), "
                             "more than a quarter of the memory")

    def case_id(self, params: dict[str, Any]) -> str:
        cid = f"{params['pattern']}-{size_label(params['bs'])}-qd{params['qd']}-t{params['threads']}"
        return cid if params["direct"] else cid + "-buffered"

    def configure(self, options: dict[str, Any]) -> None:
        """Options for cases whose RunContext does not carry them (API use)."""
        validate_options(options)
        self.options = dict(options)

    def close(self) -> None:
        """Delete the test file now (it is deleted anyway with the suite or at exit)."""
        made = self._cache.pop("file", None)
        if made is not None:
            made.close()

    def asv_spec(self) -> AsvSpec:
        cases = tuple(dict.fromkeys(self.case_id(c) for t in TIERS for c in self.default_cases(t, Target("cpu"))))
        return AsvSpec(
            class_name="Storage",
            param_names=("case", "impl", "target"),
            param_values=(cases, tuple(self.impl_names()), ("cpu",)),
            tracks=(AsvTrack("track_gbps", "gbps", "GB/s"),
                    AsvTrack("track_iops", "iops", "IOPS"),
                    AsvTrack("track_time", "time_us", "seconds", 1e-6),
                    AsvTrack("track_lat_p99", "lat_p99_us", "seconds", 1e-6)),
            version="1",
            key=lambda p, target, impl: (self.case_id(p), impl, target.split(":")[0]),
        )

    # --- running ----------------------------------------------------------------------
    def run_case(self, params: dict[str, Any], impl: Impl, ctx: RunContext) -> CaseResult:
        cid = self.case_id(params)
        result = CaseResult(suite=self.name, case_id=cid, params=dict(params), target=str(ctx.target),
                            impl=impl.name, status=SKIPPED, started_at=now_iso())
        started = time.perf_counter()
        try:
            reason = impl.unavailable_reason(ctx.target)
            if reason is not None:
                raise SkipCase(reason)
            options = {**self.options, **{k: v for k, v in (ctx.options or {}).items() if v is not None}}
            source = open_source(options, ctx.policy.budget_s, self._cache, self.after_create)
            if params["direct"] and source.fs.get("is_tmpfs"):
                raise SkipCase(f"{source.fs['name']} at {os.path.dirname(source.path)} does not support O_DIRECT "
                               "(it is memory): give --path on a disk filesystem, or --param direct=0")
            region = source.size // params["bs"] * params["bs"]
            if region < params["bs"] * params["threads"]:
                raise UsageError(f"{source.kind} {source.path} ({source.size} bytes) is too small for "
                                 f"{params['threads']} thread(s) of {size_label(params['bs'])} blocks")
            runtime_s, ramp_s = run_timing(ctx.policy.budget_s)
            dropped = source.drop_cache()
            detail = {"source": source.describe(), "region_bytes": region, "runtime_s": runtime_s, "ramp_s": ramp_s,
                      "page_cache": ("posix_fadvise(POSIX_FADV_DONTNEED) on the file before the run "
                                     "(dropping all caches needs root)") if dropped else "could not be dropped"}
            if impl.name == "aibench" and "fio" in ctx.case_impls and _fio_unavailable(ctx.target) is None:
                self._run_paired(result, params, source, region, runtime_s, ramp_s, ctx, detail)
            elif impl.name == "aibench":
                self._native_result(result, params, source, [self._native_window(params, source, region, runtime_s,
                                                                                 ramp_s, ctx, detail)], detail)
            elif cid in self._paired:  # measured interleaved with aibench's windows just before
                runs, fio_detail = self._paired.pop(cid)
                self._fio_result(result, params, runs, {**detail, **fio_detail})
            else:
                self._fio_result(result, params, [self._fio_window(params, source, region, runtime_s, ramp_s,
                                                                   detail)], detail)
            if impl.name == "aibench" and result.status == PASSED:
                self._last_native[cid] = result
        except SkipCase as e:
            result.status = SKIPPED
            result.validation = Validation(status=SKIPPED, reason=str(e))
        except UsageError as e:
            result.status = FAILED
            result.error = str(e)
            result.validation = Validation(status=FAILED, reason=str(e))
        except Exception as e:  # noqa: BLE001 - one clear line, the run goes on
            result.status = FAILED
            result.error = f"{type(e).__name__}: {e}" if not isinstance(e, (RuntimeError, OSError)) else str(e)
            result.validation = Validation(status=FAILED, reason="the read could not complete")
        finally:
            result.duration_s = time.perf_counter() - started
        return result

    def _run_paired(self, result: CaseResult, params, source: ReadSource, region: int, runtime_s: float,
                    ramp_s: float, ctx: RunContext, detail: dict) -> None:
        """aibench and fio in alternating windows, A B B A A B B A (A aibench, B fio):
        a device (or a VM host) whose speed drifts during the case then weighs on both
        alike, where two back-to-back runs would put the drift between them. Each impl's
        figures are totals over its own windows; fio's wait for the fio case."""
        window_s, window_ramp_s = max(0.25, runtime_s / 2), min(ramp_s, 0.5)
        native, fio, windows, fio_detail = [], [], [], {}
        fio_failed = None
        for step, who in enumerate(PAIRED_ORDER):
            if who == "B" and fio_failed:
                continue
            source.drop_cache()
            if who == "A":
                r = self._native_window(params, source, region, window_s, window_ramp_s, ctx, detail)
                native.append(r)
                windows.append({"step": step, "impl": "aibench", "gbps": r["bytes"] / r["window_s"] / 1e9,
                                "iops": r["ios"] / r["window_s"]})
                if r["mismatches"] or r["error"]:
                    break  # _native_result fails the case
                continue
            try:
                f = self._fio_window(params, source, region, window_s, window_ramp_s, fio_detail)
            except (RuntimeError, OSError) as e:  # fio's failure is the fio case's, not aibench's
                fio_failed = str(e)
                continue
            fio.append(f)
            windows.append({"step": step, "impl": "fio", "gbps": f["bw_bytes"] / 1e9, "iops": f["iops"]})
        paired = {"measurement": (f"interleaved with the peer: windows {' '.join(PAIRED_ORDER)} (A aibench, B fio) "
                                  f"of {window_s:g} s each after a {window_ramp_s:g} s ramp; each impl's figures "
                                  "are totals over its own windows"),
                  "windows": windows, "runtime_s": window_s * PAIRED_ORDER.count("A"), "ramp_s": window_ramp_s}
        if fio_failed:
            paired["fio_failed"] = f"{fio_failed} (the fio case runs on its own)"
        detail.update(paired)
        self._native_result(result, params, source, native, detail)
        if result.status == PASSED and not fio_failed:
            self._paired[result.case_id] = (fio, {**fio_detail, **paired})

    def _native_window(self, params, source: ReadSource, region: int, runtime_s: float, ramp_s: float,
                       ctx: RunContext, detail: dict) -> dict:
        """One io_read run; what it was run with goes into `detail`."""
        from ... import _core

        engine = os.environ.get("AIBENCH_IO_ENGINE", "auto")
        if engine not in ENGINES:
            raise UsageError(f"AIBENCH_IO_ENGINE={engine!r}: expected one of {', '.join(ENGINES)}")
        verify_every = int(os.environ.get("AIBENCH_IO_VERIFY_EVERY", "32"))
        align = _core.io_dio_alignment(source.path) if source.kind != "device" else \
            {"mem_align": 4096, "offset_align": 4096, "source": "default 4096 (block device)"}
        mem_align = max(int(align["mem_align"]), 4096)
        if params["direct"] and params["bs"] % int(align["offset_align"]):
            raise UsageError(f"bs {params['bs']} is not a multiple of the O_DIRECT alignment "
                             f"{align['offset_align']} of {source.path}")
        r = _core.io_read(source.path, bool(params["direct"]), params["pattern"], params["bs"], params["qd"],
                          params["threads"], region, align=mem_align, ramp_s=ramp_s, runtime_s=runtime_s,
                          interval_s=_INTERVAL_S, engine=engine, verify=source.verifiable,
                          verify_every=max(1, verify_every), file_id=source.file_id or 0, seed=ctx.seed + 1)
        detail.update({"engine": r["engine"], "engine_choice": engine, "io_uring_fallback_reason": r["fallback_reason"],
                       "registered_buffers": r["registered_buffers"], "registered_file": r["registered_file"],
                       "huge_pages_requested": r["huge_pages_requested"], "os_threads": r["os_threads"],
                       "o_direct_alignment": align, "buffer_alignment": mem_align,
                       "verify_every": verify_every})
        # The intervals of the window proper (the reader keeps one spare at the end).
        r["interval_ios"] = r["interval_ios"][: int(runtime_s / _INTERVAL_S + 1e-9)]
        return r

    def _native_result(self, result: CaseResult, params, source: ReadSource, runs: list[dict], detail: dict) -> None:
        """aibench's figures from one or more io_read runs (their totals), validated."""
        from ... import _core

        region = detail["region_bytes"]
        window = sum(r["window_s"] for r in runs)
        nbytes, ios = sum(r["bytes"] for r in runs), sum(r["ios"] for r in runs)
        cpu_user_s, cpu_sys_s = sum(r["cpu_user_s"] for r in runs), sum(r["cpu_sys_s"] for r in runs)
        lat = _core.io_latency_merge([r["latency"] for r in runs])
        del lat["buckets"]
        gbps, iops = (nbytes / window / 1e9, ios / window) if window > 0 else (0.0, 0.0)
        detail.update({
            "gib_per_s": nbytes / window / 2**30 if window > 0 else 0.0, "bytes_read": nbytes, "reads": ios,
            "ramp_reads": sum(r["ramp_ios"] for r in runs), "latency_ns": lat,
            "latency_histogram": "log-linear, 128 buckets per power of two (about 0.4% error), one per thread, merged",
            "cpu_percent_of_one_core": {"user": 100 * cpu_user_s / window, "system": 100 * cpu_sys_s / window}
            if window > 0 else None,
        })
        if not params["direct"] and nbytes > region:
            detail["page_cache_note"] = (f"the run read {nbytes / region:.1f}x the file; sequential passes "
                                         "drop their pages (posix_fadvise) at each wrap, random reads may hit "
                                         "pages cached earlier in the run")
        result.impl_detail = detail
        intervals = [n for r in runs for n in r["interval_ios"]]
        samples = [_INTERVAL_S / n for n in intervals if n > 0]
        if samples:
            result.stats = {**summarize(samples).to_dict(), "samples_s": samples, "stopped_by": "time",
                            "sample": f"seconds per read, over each {_INTERVAL_S} s interval of the window(s)",
                            "stalled_intervals": intervals.count(0)}
        # Validation: an I/O error, a wrong block, or nothing read fails the case.
        for r in runs:
            if r["error"]:
                raise RuntimeError(r["error"])
        mismatches, verified = sum(r["mismatches"] for r in runs), sum(r["verified"] for r in runs)
        if mismatches:
            first = next(r["first_mismatch"] for r in runs if r["mismatches"])
            msg = (f"a block read back differs from what aibench wrote: {first} "
                   f"({mismatches} of {verified} checked reads)")
            result.status = FAILED
            result.error = msg
            result.validation = Validation(status=FAILED, reason=msg)
            return
        if ios == 0:
            raise RuntimeError("no read completed in the measurement window")
        if source.verifiable:
            detail["verification"] = (f"{verified} reads (one in {detail['verify_every']} per thread) compared word "
                                      "by word with the content written")
            result.validation = Validation(status=PASSED, max_rel_error=0.0, tolerance=0.0)
        else:
            detail["verification"] = "none: the content of an existing file or device is unknown; read sizes checked"
            result.validation = Validation(status=PASSED, reason=detail["verification"])
        _add_metrics(result, params["pattern"], gbps, iops, {
            "min": lat["min_ns"] / 1e3, "mean": lat["mean_ns"] / 1e3, "p50": lat["p50_ns"] / 1e3,
            "p90": lat["p90_ns"] / 1e3, "p99": lat["p99_ns"] / 1e3, "p99_9": lat["p99_9_ns"] / 1e3,
            "max": lat["max_ns"] / 1e3}, cpu_user_s, cpu_sys_s)
        result.status = PASSED

    def _fio_window(self, params, source: ReadSource, region: int, runtime_s: float, ramp_s: float,
                    detail: dict) -> dict:
        """One fio run of the case's job; its command goes into `detail`."""
        from ... import _core

        engine = "io_uring" if _core.io_uring_unavailable_reason() is None else "libaio"
        cmd = fio_mod.fio_command(source.path, pattern=params["pattern"], bs=params["bs"], qd=params["qd"],
                                  threads=params["threads"], direct=bool(params["direct"]), region=region,
                                  runtime_s=runtime_s, ramp_s=ramp_s, engine=engine)
        detail.update({"fio_version": fio_mod.fio_version(), "ioengine": engine, "command": cmd})
        f = fio_mod.run_fio(cmd, timeout_s=runtime_s + ramp_s + 120)
        if f["io_bytes"] <= 0 or f["iops"] <= 0:
            raise RuntimeError("fio read nothing")
        return f

    def _fio_result(self, result: CaseResult, params, runs: list[dict], detail: dict) -> None:
        """fio's figures from one or more fio runs (their totals)."""
        f = fio_mod.merge_runs(runs)
        gbps = f["bw_bytes"] / 1e9
        detail.update({"gib_per_s": f["bw_bytes"] / 2**30, "fio": f,
                       "verification": "fio reads the same file; aibench does not check fio's data"})
        result.impl_detail = detail
        result.validation = Validation(status=PASSED, reason=detail["verification"])
        if len(runs) > 1:  # one sample per window: seconds per read
            samples = [r["wall_s"] / r["total_ios"] for r in runs if r["total_ios"]]
            result.stats = {**summarize(samples).to_dict(), "samples_s": samples, "stopped_by": "time",
                            "sample": "seconds per read, over each fio window"}
        _add_metrics(result, params["pattern"], gbps, f["iops"], f["lat_us"],
                     (f["usr_cpu_pct"] or 0) / 100 * f["runtime_s"], (f["sys_cpu_pct"] or 0) / 100 * f["runtime_s"])
        own = self._last_native.get(result.case_id)
        if own is not None:
            m = own.metrics
            detail["vs_aibench"] = {
                "aibench_gbps": m["gbps"].value, "fio_gbps": gbps, "gbps_ratio_aibench_over_fio": m["gbps"].value / gbps,
                "aibench_iops": m["iops"].value, "fio_iops": f["iops"], "iops_ratio_aibench_over_fio": m["iops"].value / f["iops"],
                "aibench_p99_us": m["lat_p99_us"].value, "fio_p99_us": f["lat_us"]["p99"],
                "p99_ratio_aibench_over_fio": (m["lat_p99_us"].value / f["lat_us"]["p99"]) if f["lat_us"]["p99"] else None,
            }
        result.status = PASSED


def _add_metrics(result: CaseResult, pattern: str, gbps: float, iops: float, lat_us: dict, cpu_user_s: float,
                 cpu_sys_s: float) -> None:
    """Headline first: GB/s for sequential reads, IOPS for random ones."""
    m = result.metrics
    pair = [("gbps", Metric(gbps, "GB/s", True)), ("iops", Metric(iops, "IOPS", True))]
    for name, metric in (pair if pattern == "seq" else pair[::-1]):
        m[name] = metric
    m["time_us"] = Metric(1e6 / iops if iops else None, "us per read (aggregate, 1/iops)", False)
    for key in ("min", "mean", "p50", "p90", "p99", "p99_9", "max"):
        if lat_us.get(key) is not None:
            m[f"lat_{key}_us"] = Metric(lat_us[key], "us", False)
    m["cpu_user_s"] = Metric(cpu_user_s, "s", False)
    m["cpu_sys_s"] = Metric(cpu_sys_s, "s", False)
