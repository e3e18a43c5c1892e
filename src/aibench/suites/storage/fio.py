"""fio, the peer of the storage suite: the same job (file, pattern, bs, iodepth, numjobs,
direct, runtime and ramp) run by fio with JSON output, read-only.

Latency is fio's `lat` (from before submission to completion), not its default `clat`
(from when the submission returned; `lat` = `slat` + `clat`): aibench stamps each read
before it is submitted, so only `lat` spans the same time. fio reports percentiles of `lat` with
`--lat_percentiles=1`; a fio that gives none falls back to `clat`, and the result says
which span it holds (`latency_span`)."""

from __future__ import annotations

import functools
import json
import math
import shutil
import subprocess
from typing import Any

from ...safety import terminate_with_parent

# What fio's latency figures span (parse_fio_json's `latency_span`).
LAT_SPAN = "lat: from before submission to completion (fio --lat_percentiles=1), the span aibench times"
CLAT_SPAN = "clat: from when the submission returned to completion (this fio gave no lat percentiles)"


def fio_binary() -> str | None:
    return shutil.which("fio")


@functools.cache  # asked once per run, not between the windows of an interleaved case
def fio_version() -> str | None:
    exe = fio_binary()
    if exe is None:
        return None
    try:
        return subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def fio_command(path: str, *, pattern: str, bs: int, qd: int, threads: int, direct: bool, region: int,
                runtime_s: float, ramp_s: float, engine: str) -> list[str]:
    # fio splits file names at ':'; escape it.
    cmd = [fio_binary() or "fio", "--name=aibench", f"--filename={path.replace(':', chr(92) + ':')}",
           "--readonly", f"--ioengine={engine}", f"--direct={int(direct)}",
           f"--rw={'read' if pattern == 'seq' else 'randread'}", f"--bs={bs}", f"--iodepth={qd}",
           f"--numjobs={threads}", "--group_reporting", "--time_based",
           f"--runtime={max(1, round(runtime_s * 1000))}ms", f"--ramp_time={round(ramp_s * 1000)}ms",
           "--norandommap", "--randrepeat=0", "--invalidate=1",
           "--lat_percentiles=1",  # percentiles (and json+ bins) of lat, the span aibench times
           "--output-format=json+"]  # json+ adds the latency histogram (bins), so runs can be merged
    if pattern == "seq" and threads > 1:
        # As aibench does: each job reads its own slice of the file sequentially.
        slice_bytes = region // threads // bs * bs
        cmd += [f"--size={slice_bytes}", f"--offset_increment={slice_bytes}"]
    else:
        cmd += [f"--size={region}"]
    if engine == "io_uring":
        cmd += ["--fixedbufs=1", "--registerfiles=1"]
    return cmd


def parse_fio_json(stdout: str) -> dict[str, Any]:
    """fio's figures from its JSON output (any text before the JSON is skipped)."""
    start = stdout.find("{")
    if start < 0:
        raise ValueError("fio printed no JSON")
    doc = json.loads(stdout[start:])
    job = doc["jobs"][0]
    if job.get("error"):
        raise RuntimeError(f"fio job error {job['error']}")
    read = job["read"]
    lat, span = read.get("lat_ns") or {}, LAT_SPAN
    if not lat.get("percentile"):  # --lat_percentiles had no effect: only clat has them
        lat, span = read.get("clat_ns") or {}, CLAT_SPAN
    pct = lat.get("percentile") or {}
    runtime_s = job.get("job_runtime", read.get("runtime", 0)) / 1000.0

    def p(key):
        v = pct.get(key)
        return None if v is None else v / 1e3

    return {
        "version": doc.get("fio version"),
        "bw_bytes": float(read["bw_bytes"]),
        "iops": float(read["iops"]),
        "io_bytes": int(read.get("io_bytes", 0)),
        "total_ios": int(read.get("total_ios", 0)),
        "runtime_s": runtime_s,  # summed over the jobs of a group (numjobs > 1)
        # The wall-clock window the rates stand for (io_bytes / bw): one job's runtime.
        "wall_s": int(read.get("io_bytes", 0)) / float(read["bw_bytes"]) if read["bw_bytes"] else 0.0,
        "latency_span": span,
        "lat_us": {"min": lat.get("min", 0) / 1e3, "mean": lat.get("mean", 0) / 1e3, "max": lat.get("max", 0) / 1e3,
                   "p50": p("50.000000"), "p90": p("90.000000"), "p99": p("99.000000"), "p99_9": p("99.900000")},
        "usr_cpu_pct": job.get("usr_cpu"),
        "sys_cpu_pct": job.get("sys_cpu"),
        # fio's histogram (json+) of that span: {bucket value in ns: count}
        "lat_bins": {int(k): int(v) for k, v in (lat.get("bins") or {}).items()},
        "lat_mean_ns": lat.get("mean", 0), "lat_min_ns": lat.get("min", 0), "lat_max_ns": lat.get("max", 0),
    }


def bins_percentile(bins: dict[int, int], p: float) -> float | None:
    """fio's rule on its own histogram: the bucket holding the ceil(p/100 * n)-th value."""
    n = sum(bins.values())
    if n == 0:
        return None
    rank, seen = max(1, math.ceil(p / 100 * n)), 0
    for value in sorted(bins):
        seen += bins[value]
        if seen >= rank:
            return float(value)
    return float(max(bins))


def merge_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One result (parse_fio_json's form) from several fio runs of the same job: totals
    over their windows, latency percentiles from their merged histograms."""
    if len(runs) == 1:
        return {k: v for k, v in runs[0].items() if k != "lat_bins"}
    runtime = sum(r["runtime_s"] for r in runs)
    wall = sum(r["wall_s"] for r in runs)
    ios = sum(r["total_ios"] for r in runs)
    bins: dict[int, int] = {}
    for r in runs:
        for value, count in r["lat_bins"].items():
            bins[value] = bins.get(value, 0) + count
    n = sum(bins.values())

    def pct(p):
        v = bins_percentile(bins, p)
        return None if v is None else v / 1e3

    mean = sum(r["lat_mean_ns"] * sum(r["lat_bins"].values()) for r in runs) / n if n else 0.0
    return {
        "version": runs[0]["version"],
        "bw_bytes": sum(r["io_bytes"] for r in runs) / wall,
        "iops": ios / wall,
        "io_bytes": sum(r["io_bytes"] for r in runs),
        "total_ios": ios,
        "runtime_s": runtime,
        "wall_s": wall,
        "runs": len(runs),
        # one fio binary ran every window, so one span (both named if that ever differs)
        "latency_span": " / ".join(dict.fromkeys(r["latency_span"] for r in runs)),
        "lat_us": {"min": min(r["lat_min_ns"] for r in runs) / 1e3, "mean": mean / 1e3,
                   "max": max(r["lat_max_ns"] for r in runs) / 1e3,
                   "p50": pct(50), "p90": pct(90), "p99": pct(99), "p99_9": pct(99.9)},
        "usr_cpu_pct": sum((r["usr_cpu_pct"] or 0) * r["runtime_s"] for r in runs) / runtime,
        "sys_cpu_pct": sum((r["sys_cpu_pct"] or 0) * r["runtime_s"] for r in runs) / runtime,
    }


def run_fio(cmd: list[str], timeout_s: float) -> dict[str, Any]:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                              preexec_fn=terminate_with_parent)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"fio did not finish within {timeout_s:.0f} s") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        raise RuntimeError(f"fio exited {proc.returncode}: {last[-1] if last else 'no output'}")
    return parse_fio_json(proc.stdout)
