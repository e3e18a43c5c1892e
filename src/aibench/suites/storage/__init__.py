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
from typing import Any, Callable

from ...errors import SkipCase, UsageError
from ...faults import corrupts_output
from ...fit import fits
from ...results import FAILED, PASSED, CaseResult, ContextKey, Metric, Samples, Validation
from ...targets import Target
from ...units import choice, parse_bool, parse_size, size_label
from ..base import AsvTrack, CaseFailed, Impl, ImplInfo, Option, Param, RunContext, Suite, case_table_asv_spec
from ..charts import Chart, PercentileChart, size_ticks
from ...registry import register_suite
from . import fio as fio_mod
from .bounds import check_counts, copy_bandwidth, counted_bytes, device_limit, device_read_bytes
from .source import open_source, validate_options

ENGINES = ("auto", "io_uring", "pread")
_SEQ = ([128 << 10, 1 << 20, 4 << 20], [1, 8, 32])
_RAND = ([4 << 10, 16 << 10, 128 << 10], [1, 32, 128], [1, 4])
_INTERVAL_S = 0.1
# aibench (A) and fio (B) windows of a paired measurement (StorageSuite.measure_group).
PAIRED_ORDER = "ABBAABBA"


def _case(pattern, bs, qd, threads=1, direct=1):
    return {"pattern": pattern, "bs": bs, "qd": qd, "threads": threads, "direct": direct}


def run_timing(budget_s: float) -> tuple[float, float]:
    """(runtime, ramp) of a case: the tier's time budget, after a ramp of a quarter of it
    (0.25 to 2 s)."""
    return budget_s, min(2.0, max(0.25, budget_s / 4))


# The run's ReadSource (a RunContext resource).
RUN_SOURCE = "storage.source"


class Reader(Impl):
    """A reader of the case's source (an impl of the storage suite): `window` runs one
    time-based window and keeps its figures; the figures of a case are the totals over
    its windows (one, or four interleaved with the peer's)."""

    def __init__(self, params: dict[str, Any], ctx: RunContext):
        """A reader of the run's source (StorageSuite.prepare opens it: RUN_SOURCE)."""
        source = ctx.resource(RUN_SOURCE)
        if params["direct"] and source.fs.get("is_tmpfs"):
            raise SkipCase(f"{source.fs['name']} at {os.path.dirname(source.path)} does not support O_DIRECT "
                           "(it is memory): give --path on a disk filesystem, or --param direct=0")
        region = source.size // params["bs"] * params["bs"]
        if region < params["bs"] * params["threads"]:
            raise UsageError(f"{source.kind} {source.path} ({source.size} bytes) is too small for "
                             f"{params['threads']} thread(s) of {size_label(params['bs'])} blocks")
        runtime_s, ramp_s = run_timing(ctx.policy.budget_s)
        dropped = source.drop_cache()
        self.params, self.source, self.region, self.seed = params, source, region, ctx.seed
        self.runs: list[dict] = []
        self.device_reads: list[tuple[int, float, str]] = []  # (bytes, window seconds, stat file) per window
        # What the case was run with; the windows add theirs.
        self.info = {"source": source.describe(), "region_bytes": region, "runtime_s": runtime_s, "ramp_s": ramp_s,
                     "page_cache": ("posix_fadvise(POSIX_FADV_DONTNEED) on the file before the run "
                                    "(dropping all caches needs root)") if dropped else "could not be dropped"}

    def window(self, runtime_s: float, ramp_s: float) -> dict:
        raise NotImplementedError

    def counted_window(self, runtime_s: float, ramp_s: float) -> dict:
        """One window, with the block device's own count of bytes read taken around it
        (bounds.device_read_bytes: the direct-read bound)."""
        before = device_read_bytes(self.source.path)
        w = self.window(runtime_s, ramp_s)
        after = device_read_bytes(self.source.path)
        if before is not None and after is not None:
            self.device_reads.append((after[0] - before[0], runtime_s, after[1]))
        return w

    def measure(self, policy) -> Samples:
        self.source.drop_cache()
        self.counted_window(*run_timing(policy.budget_s))
        return self.samples()

    def samples(self) -> Samples:
        raise NotImplementedError

    def detail(self) -> dict:
        return self.info

    def rate_limits(self, fresh: bool = False) -> list[tuple[float, str]]:
        """(bytes per second, source) of every independent limit on this reader's rate
        (bounds.py): the memory copy bandwidth for page-cache reads, the device's link."""
        limits = []
        if not self.params["direct"]:
            copy = copy_bandwidth(self.region, fresh)
            limits.append((copy, f"memory copy bandwidth of every allowed core over a {size_label(self.region)} "
                                 f"working set, measured beside the case: {copy / 1e9:.3g} GB/s (a page-cache read "
                                 "is a copy)"))
        link = device_limit(self.source.path)
        if link is not None:
            limits.append(link)
        if self.params["direct"] and self.device_reads:
            nbytes, seconds = sum(d[0] for d in self.device_reads), sum(d[1] for d in self.device_reads)
            rate = nbytes / seconds
            limits.append((rate, f"bytes the block device delivered by the kernel's count ({self.device_reads[0][2]}: "
                                 f"sectors read x 512) over the window(s) and their ramps, per second of window: "
                                 f"{rate / 1e9:.4g} GB/s (every direct read reaches the device)"))
        return limits


class NativeReader(Reader):
    name = "aibench"
    description = ("C++ reader: io_uring (raw syscalls, registered buffers, batched submission) "
                   "or a pread thread pool")

    @classmethod
    def unavailable(cls, target: Target) -> str | None:
        try:
            from ... import _core
        except ImportError as e:
            return f"aibench._core is not built: {e}"
        if not hasattr(_core, "io_read"):
            return "aibench._core was built without the storage reader (csrc/io): reinstall aibench"
        if not os.uname().sysname == "Linux":
            return "the storage reader needs Linux"
        return None

    def window(self, runtime_s: float, ramp_s: float) -> dict:
        """One io_read run; what it was run with goes into `info`."""
        from ... import _core

        params, source = self.params, self.source
        if corrupts_output(self.name) and source.verifiable:
            _corrupt_every_block(source.path, params["bs"], self.region)
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
                          params["threads"], self.region, align=mem_align, ramp_s=ramp_s, runtime_s=runtime_s,
                          interval_s=_INTERVAL_S, engine=engine, verify=source.verifiable,
                          verify_every=max(1, verify_every), file_id=source.file_id or 0, seed=self.seed + 1)
        self.info.update({"engine": r["engine"], "engine_choice": engine,
                          "io_uring_fallback_reason": r["fallback_reason"],
                          "registered_buffers": r["registered_buffers"], "registered_file": r["registered_file"],
                          "huge_pages_requested": r["huge_pages_requested"], "os_threads": r["os_threads"],
                          "o_direct_alignment": align, "buffer_alignment": mem_align, "verify_every": verify_every})
        # The intervals of the window proper (the reader keeps one spare at the end).
        r["interval_ios"] = r["interval_ios"][: int(runtime_s / _INTERVAL_S + 1e-9)]
        if r["error"]:
            raise CaseFailedRead(r["error"])
        check_counts(r)  # the totals are the window's reads, each counted once
        self.runs.append(r)
        return {"gbps": r["bytes"] / r["window_s"] / 1e9, "iops": r["ios"] / r["window_s"],
                "stop": bool(r["mismatches"])}

    def samples(self) -> Samples:
        """Seconds per read over each 0.1 s interval of the window(s)."""
        intervals = [n for r in self.runs for n in r["interval_ios"]]
        samples = [_INTERVAL_S / n for n in intervals if n > 0]
        if not samples:
            wrong = self.check()  # a wrong block stops the reader, maybe before the window
            raise CaseFailedRead(wrong.reason if wrong.status == FAILED else
                                 "no read completed in the measurement window")
        return Samples(samples_s=samples, stopped_by="time",
                       what=f"seconds per read, over each {_INTERVAL_S} s interval of the window(s)",
                       extra={"stalled_intervals": intervals.count(0)})

    def totals(self) -> dict:
        from ... import _core

        runs = self.runs
        window = sum(r["window_s"] for r in runs)
        lat = _core.io_latency_merge([r["latency"] for r in runs])
        del lat["buckets"]
        return {"window_s": window, "bytes": sum(r["bytes"] for r in runs), "ios": sum(r["ios"] for r in runs),
                "cpu_user_s": sum(r["cpu_user_s"] for r in runs), "cpu_sys_s": sum(r["cpu_sys_s"] for r in runs),
                "ramp_ios": sum(r["ramp_ios"] for r in runs), "latency_ns": lat}

    def rate_limits(self, fresh: bool = False) -> list[tuple[float, str]]:
        """Besides the physical limits, the rate of the bytes counted per thread and interval
        of the timed window(s): the figure comes from the window totals, counted apart."""
        window = sum(r["window_s"] for r in self.runs)
        counted = counted_bytes(self.runs) / window
        return [*super().rate_limits(fresh),
                (counted, f"the reads counted per I/O thread and interval of the timed window: "
                          f"{counted / 1e9:.4g} GB/s")]

    def check(self) -> Validation:
        """An I/O error, a wrong block, or nothing read fails the case."""
        mismatches, verified = sum(r["mismatches"] for r in self.runs), sum(r["verified"] for r in self.runs)
        if mismatches:
            first = next(r["first_mismatch"] for r in self.runs if r["mismatches"])
            return Validation(status=FAILED, reason=f"a block read back differs from what aibench wrote: {first} "
                                                    f"({mismatches} of {verified} checked reads)")
        if self.source.verifiable:
            self.info["verification"] = (f"{verified} reads (one in {self.info['verify_every']} per thread) compared "
                                         "word by word with the content written")
            return Validation(status=PASSED, max_rel_error=0.0, tolerance=0.0)
        self.info["verification"] = "none: the content of an existing file or device is unknown; read sizes checked"
        return Validation(status=PASSED, reason=self.info["verification"])

    def figures(self) -> dict:
        t = self.totals()
        window, nbytes, ios, lat = t["window_s"], t["bytes"], t["ios"], t["latency_ns"]
        self.info.update({
            "gib_per_s": nbytes / window / 2**30, "bytes_read": nbytes, "reads": ios, "ramp_reads": t["ramp_ios"],
            "latency_ns": lat,
            "latency_histogram": "log-linear, 128 buckets per power of two (about 0.4% error), one per thread, merged",
            "cpu_percent_of_one_core": {"user": 100 * t["cpu_user_s"] / window, "system": 100 * t["cpu_sys_s"] / window},
        })
        if not self.params["direct"] and nbytes > self.region:
            self.info["page_cache_note"] = (f"the run read {nbytes / self.region:.1f}x the file; sequential passes "
                                            "drop their pages (posix_fadvise) at each wrap, random reads may hit "
                                            "pages cached earlier in the run")
        return {"gbps": nbytes / window / 1e9, "iops": ios / window,
                "lat_us": {k: lat[f"{k}_ns"] / 1e3 for k in ("min", "mean", "p50", "p90", "p99", "p99_9", "max")},
                "cpu_user_s": t["cpu_user_s"], "cpu_sys_s": t["cpu_sys_s"]}


class FioReader(Reader):
    name = "fio"
    description = "fio, the same job (io_uring or libaio), --output-format=json"

    @classmethod
    def unavailable(cls, target: Target) -> str | None:
        return None if fio_mod.fio_binary() else "fio is not installed (e.g. apt-get install fio)"

    def window(self, runtime_s: float, ramp_s: float) -> dict:
        """One fio run of the case's job; its command goes into `info`."""
        from ... import _core

        params = self.params
        engine = "io_uring" if _core.io_uring_unavailable_reason() is None else "libaio"
        cmd = fio_mod.fio_command(self.source.path, pattern=params["pattern"], bs=params["bs"], qd=params["qd"],
                                  threads=params["threads"], direct=bool(params["direct"]), region=self.region,
                                  runtime_s=runtime_s, ramp_s=ramp_s, engine=engine)
        self.info.update({"fio_version": fio_mod.fio_version(), "ioengine": engine, "command": cmd})
        f = fio_mod.run_fio(cmd, timeout_s=runtime_s + ramp_s + 120)
        if f["io_bytes"] <= 0 or f["iops"] <= 0:
            raise CaseFailedRead("fio read nothing")
        self.runs.append(f)
        return {"gbps": f["bw_bytes"] / 1e9, "iops": f["iops"], "stop": False}

    def samples(self) -> Samples:
        """One sample per fio window: seconds per read (a single window: fio's mean)."""
        samples = [r["wall_s"] / r["total_ios"] for r in self.runs if r["total_ios"]]
        return Samples(samples_s=samples, stopped_by="time", what="seconds per read, over each fio window")

    def check(self) -> Validation:
        self.info["verification"] = "fio reads the same file; aibench does not check fio's data"
        return Validation(status=PASSED, reason=self.info["verification"])

    def figures(self) -> dict:
        f = fio_mod.merge_runs(self.runs)
        self.info.update({"gib_per_s": f["bw_bytes"] / 2**30, "fio": f})
        return {"gbps": f["bw_bytes"] / 1e9, "iops": f["iops"], "lat_us": f["lat_us"],
                "cpu_user_s": (f["usr_cpu_pct"] or 0) / 100 * f["runtime_s"],
                "cpu_sys_s": (f["sys_cpu_pct"] or 0) / 100 * f["runtime_s"]}


def _corrupt_every_block(path: str, bs: int, region: int) -> None:
    """Tests (faults.py): one wrong byte in every block of aibench's own test file, so
    that whichever reads are verified, one finds it."""
    fd = os.open(path, os.O_WRONLY)
    try:
        for offset in range(bs // 2, region, bs):
            os.pwrite(fd, b"\xa5", offset)
        os.fsync(fd)
    finally:
        os.close(fd)


class CaseFailedRead(CaseFailed, RuntimeError):
    """A read that could not complete (an I/O error, nothing read): fails its impl."""


# How the storage charts' lines tell their fixed parameters (a document without `direct` was O_DIRECT).
_CHART_LABELS = {"bs": size_ticks, "qd": "qd{}".format, "threads": "t{}".format,
                 "direct": lambda direct: "" if direct is None or direct else "buffered"}


def _source(detail: dict[str, Any], params: dict[str, Any]) -> str | None:
    source = detail.get("source")
    return f"source={source.get('kind')}:{source.get('filesystem')}" if isinstance(source, dict) else None


@register_suite
class StorageSuite(Suite):
    name = "storage"
    description = "Local reads (file or block device): GB/s, IOPS, latency percentiles; aibench's io_uring reader vs fio"
    params = {
        "pattern": Param("pattern", choice(("seq", "rand")), "seq (sequential) or rand (random offsets)"),
        "bs": Param("bs", parse_size, "block size in bytes (4k, 1M, ...)"),
        "qd": Param("qd", parse_size, "queue depth: reads in flight per thread"),
        "threads": Param("threads", parse_size, "threads (fio numjobs)"),
        "direct": Param("direct", lambda t: int(parse_bool(t)), "1: O_DIRECT (bypass the page cache), 0: buffered"),
    }
    options = (
        Option("path", "directory for aibench's own test file (default: the current directory)", "DIR"),
        Option("file", "read this existing file instead (read-only, never modified)", "PATH"),
        Option("device", "read this block device (read-only)", "PATH"),
        Option("file-size", "size of the test file (e.g. 4G; default by tier, at most 1/4 of free space)", "SIZE"),
    )
    target_kinds = ("cpu",)
    IMPLS = (NativeReader, FioReader)
    comparisons = (("aibench", "fio"),)
    # The source read (its kind and filesystem) makes its own case: tmpfs is not a disk.
    context_keys = (ContextKey("source", _source),)
    # gbps against block size and against queue depth, the other parameters fixed per line.
    charts = (
        Chart(name="storage-bs", title="Storage throughput against block size", x="bs", x_label="block size (bytes)",
              x_ticks=size_ticks, log_x=True, metric="gbps", series=("pattern", "qd", "threads", "direct"),
              labels=_CHART_LABELS),
        Chart(name="storage-qd", title="Storage throughput against queue depth", x="qd", x_label="queue depth",
              log_x=True, metric="gbps", series=("pattern", "bs", "threads", "direct"), labels=_CHART_LABELS),
        PercentileChart(name="storage-latency", title="Storage read latency percentiles"),
    )
    # Tests set this to corrupt the test file right after it is written.
    after_create: Callable[[str], None] | None = None

    def __init__(self):
        self.options_in_use: dict[str, Any] = {}  # defaults under RunContext.options (API and asv use)

    # --- declaration ------------------------------------------------------------------
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
        import psutil

        reason = fits(bs * qd * threads, psutil.virtual_memory().total, "storage case",
                      held="I/O buffers (bs x qd x threads)", share=1 / 4, of="of memory")
        if reason:
            raise UsageError(reason)

    def case_id(self, params: dict[str, Any]) -> str:
        cid = f"{params['pattern']}-{size_label(params['bs'])}-qd{params['qd']}-t{params['threads']}"
        return cid if params["direct"] else cid + "-buffered"

    def validate_options(self, options: dict[str, Any]) -> None:
        validate_options(options)

    def configure(self, options: dict[str, Any]) -> None:
        """Options for cases whose RunContext does not carry them (API use)."""
        validate_options(options)
        self.options_in_use = dict(options)

    def asv_spec(self):
        return case_table_asv_spec(self, "Storage", (
            AsvTrack("track_gbps", "gbps", "GB/s"), AsvTrack("track_iops", "iops", "IOPS"),
            AsvTrack("track_time", "time_us", "seconds", 1e-6), AsvTrack("track_lat_p99", "lat_p99_us", "seconds", 1e-6)))

    # --- running ----------------------------------------------------------------------
    def group_impls(self, params: dict[str, Any], impls: list[ImplInfo]) -> list[list[ImplInfo]]:
        """aibench and fio together, measured in alternating windows (measure_group)."""
        return [impls] if {i.name for i in impls} == {"aibench", "fio"} else [[i] for i in impls]

    def prepare(self, params: dict[str, Any], impl: type[Reader], ctx: RunContext) -> Reader:
        """The reader, on the run's source: opened (the test file created and read once) by
        the first case of the run, deleted when the run ends (RunContext.close)."""
        options = {**self.options_in_use, **{k: v for k, v in (ctx.options or {}).items() if v is not None}}
        made: dict[str, Any] = {}  # open_source's: the created file, the preconditioning pass
        ctx.resource(RUN_SOURCE, lambda: open_source(options, ctx.policy.budget_s, made, self.after_create),
                     lambda source: made["file"].close() if "file" in made else None)
        return impl(params, ctx)

    def measure_group(self, params: dict[str, Any], ops: dict[str, Reader], ctx: RunContext) -> dict[str, Samples]:
        """aibench and fio in alternating windows, A B B A A B B A (A aibench, B fio): a
        device (or a VM host) whose speed drifts during the case then weighs on both
        alike, where two back-to-back runs would put the drift between them. Each impl's
        figures are totals over its own windows. fio failing fails only fio's result."""
        if set(ops) != {"aibench", "fio"}:
            return super().measure_group(params, ops, ctx)
        runtime_s, ramp_s = run_timing(ctx.policy.budget_s)
        window_s, window_ramp_s = max(0.25, runtime_s / 2), min(ramp_s, 0.5)
        windows, failed = [], {}
        for step, who in enumerate(PAIRED_ORDER):
            name = "aibench" if who == "A" else "fio"
            if name in failed:
                continue
            ops[name].source.drop_cache()
            try:
                w = ops[name].counted_window(window_s, window_ramp_s)
            except (RuntimeError, OSError) as e:  # one impl's failure; the other goes on
                failed[name] = e
                continue
            windows.append({"step": step, "impl": name, "gbps": w["gbps"], "iops": w["iops"]})
            if w["stop"]:
                break  # a wrong block: the aibench result fails
        paired = {"measurement": (f"interleaved with the peer: windows {' '.join(PAIRED_ORDER)} (A aibench, B fio) "
                                  f"of {window_s:g} s each after a {window_ramp_s:g} s ramp; each impl's figures "
                                  "are totals over its own windows"),
                  "windows": windows, "runtime_s": window_s * PAIRED_ORDER.count("A"), "ramp_s": window_ramp_s}
        for op in ops.values():
            op.info.update(paired)
        samples: dict[str, Samples | Exception] = dict(failed)
        for name, op in ops.items():
            if name not in failed:
                try:
                    samples[name] = op.samples()
                except (RuntimeError, OSError) as e:
                    samples[name] = e
        return samples

    def run_case(self, params: dict[str, Any], impls: list[ImplInfo] | ImplInfo, ctx: RunContext) -> list[CaseResult]:
        results = super().run_case(params, impls, ctx)
        by_impl = {r.impl: r for r in results}
        own, fio = by_impl.get("aibench"), by_impl.get("fio")
        if own is not None and fio is not None and own.status == fio.status == PASSED:
            m, f = own.metrics, fio.metrics
            fio.impl_detail["vs_aibench"] = {
                "aibench_gbps": m["gbps"].value, "fio_gbps": f["gbps"].value,
                "gbps_ratio_aibench_over_fio": m["gbps"].value / f["gbps"].value,
                "aibench_iops": m["iops"].value, "fio_iops": f["iops"].value,
                "iops_ratio_aibench_over_fio": m["iops"].value / f["iops"].value,
                "aibench_p99_us": m["lat_p99_us"].value, "fio_p99_us": f["lat_p99_us"].value,
                "p99_ratio_aibench_over_fio": m["lat_p99_us"].value / f["lat_p99_us"].value
                if f["lat_p99_us"].value else None}
        return results

    def bound(self, params: dict[str, Any], op: Reader, metrics: dict[str, Metric],
              fresh: bool = False) -> dict | None:
        """The lowest of the reader's rate limits (Reader.rate_limits), on its headline
        metric: GB/s for sequential reads, IOPS (bytes / bs) for random ones."""
        limits = op.rate_limits(fresh)
        if not limits:
            return None
        rate, source = min(limits)
        if params["pattern"] == "seq":
            return {"metric": "gbps", "value": rate / 1e9, "unit": "GB/s", "source": source}
        return {"metric": "iops", "value": rate / params["bs"], "unit": "IOPS", "source": source}

    def metrics(self, params: dict[str, Any], samples: Samples, op: Reader) -> dict[str, Metric]:
        """Headline first: GB/s for sequential reads, IOPS for random ones."""
        f = op.figures()
        pair = [("gbps", Metric(f["gbps"], "GB/s", True)), ("iops", Metric(f["iops"], "IOPS", True))]
        m = dict(pair if params["pattern"] == "seq" else pair[::-1])
        m["time_us"] = Metric(1e6 / f["iops"] if f["iops"] else None, "us per read (aggregate, 1/iops)", False)
        for key in ("min", "mean", "p50", "p90", "p99", "p99_9", "max"):
            if f["lat_us"].get(key) is not None:
                m[f"lat_{key}_us"] = Metric(f["lat_us"][key], "us", False)
        m["cpu_user_s"] = Metric(f["cpu_user_s"], "s", False)
        m["cpu_sys_s"] = Metric(f["cpu_sys_s"], "s", False)
        return m
