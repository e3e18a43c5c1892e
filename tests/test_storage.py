"""The storage suite on real files: O_DIRECT reads through io_uring and the pread pool,
content verification catching a corrupted block, read-only handling of existing files,
the latency histogram against known values, and fio side by side when installed."""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from aibench.harness import SamplingPolicy
from aibench.suites.base import RunContext
from aibench.suites.storage import StorageSuite
from aibench.targets import Target
from aibench.suites.storage import fio as fio_mod

core = pytest.importorskip("aibench._core")
if not hasattr(core, "io_read"):
    pytest.skip("aibench._core built without csrc/io", allow_module_level=True)

REPO = Path(__file__).resolve().parent.parent


def _real_fs_dir() -> Path | None:
    """A directory on a disk filesystem (/tmp may be tmpfs): the repo's build dir or cwd."""
    for base in (REPO / "build", REPO, Path.cwd(), Path(tempfile.gettempdir())):
        try:
            base.mkdir(exist_ok=True)
            if os.access(base, os.W_OK) and not core.io_fs_type(str(base))["is_tmpfs"]:
                return base
        except OSError:
            continue
    return None


@pytest.fixture
def disk_dir():
    base = _real_fs_dir()
    if base is None:
        pytest.skip("no writable directory on a disk filesystem")
    d = Path(tempfile.mkdtemp(prefix="test-storage-", dir=base))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _ctx(**options):
    return RunContext(target=Target("cpu"), policy=SamplingPolicy(budget_s=0.3), options=options)


def _case(pattern="seq", bs=1 << 20, qd=4, threads=1, direct=1):
    return {"pattern": pattern, "bs": bs, "qd": qd, "threads": threads, "direct": direct}


def _impl(suite, name):
    return next(i for i in suite.impls() if i.name == name)


def test_histogram_percentiles_match_known_latencies():
    rng = np.random.default_rng(3)
    values = rng.integers(1_000, 50_000_000, size=200_001).astype(np.uint64)  # 1 us .. 50 ms
    pcts = [1.0, 50.0, 90.0, 99.0, 99.9, 100.0]
    s = core.io_histogram_summary(values.tolist(), pcts)
    ordered = np.sort(values)
    for p, got in zip(pcts, s["percentiles"]):
        exact = float(ordered[max(0, int(np.ceil(p / 100 * len(values))) - 1)])
        assert abs(got - exact) / exact < s["relative_error"] * 1.01, (p, got, exact)
    assert s["relative_error"] < 0.01  # finer than fio's ~0.8%
    assert s["count"] == len(values) and s["min_ns"] == ordered[0] and s["max_ns"] == ordered[-1]
    assert s["mean_ns"] == pytest.approx(values.mean(), rel=1e-9)
    # Small values are exact.
    exact = core.io_histogram_summary([5, 7, 9, 11, 200], [0.0, 40.0, 60.0, 100.0])
    assert exact["percentiles"] == [5.0, 7.0, 9.0, 200.0]


def test_latency_merge_equals_one_histogram_of_all_values():
    """Interleaved windows are merged through their sparse histograms: exactly as if one
    histogram had seen every value."""
    rng = np.random.default_rng(5)
    values = rng.integers(10_000, 9_000_000, size=30_001).tolist()
    pcts = [50.0, 99.0]
    whole = core.io_histogram_summary(values, pcts)
    parts = [core.io_histogram_summary(values[i::3], pcts) for i in range(3)]
    merged = core.io_latency_merge(parts)
    for key in ("count", "min_ns", "max_ns", "p50_ns", "p90_ns", "p99_ns", "p99_9_ns", "buckets"):
        assert merged[key] == whole[key], key
    assert merged["mean_ns"] == pytest.approx(whole["mean_ns"], rel=1e-12)
    assert merged["count"] == sum(p["count"] for p in parts) == len(values)


def _fio_json(ios, runtime_ms, bins, lat_percentiles=True):
    """fio's json+ output of one read job whose latencies fall in `bins` {ns: count}. With
    --lat_percentiles=1 fio gives percentiles and bins of both lat and clat (measured with
    fio 3.33); without, only of clat, and lat has just min/mean/max. clat here is 10 us
    shorter than lat (the submission), so a parser reading the wrong one shows."""
    import json

    from aibench.suites.storage.fio import bins_percentile

    def span(shift_ns, with_percentiles):
        b = {v - shift_ns: c for v, c in bins.items()}
        n = sum(b.values())
        d = {"min": min(b), "max": max(b), "mean": sum(v * c for v, c in b.items()) / n, "N": n}
        if with_percentiles:
            d.update({"percentile": {"50.000000": bins_percentile(b, 50), "99.000000": bins_percentile(b, 99)},
                      "bins": {str(v): c for v, c in b.items()}})
        return d

    read = {"bw_bytes": ios * 4096 / (runtime_ms / 1e3), "iops": ios / (runtime_ms / 1e3),
            "io_bytes": ios * 4096, "total_ios": ios, "runtime": runtime_ms,
            "lat_ns": span(0, lat_percentiles), "clat_ns": span(10_000, True)}
    return "fio-3\n" + json.dumps({"fio version": "fio-3", "jobs": [{"read": read, "job_runtime": runtime_ms,
                                                                      "usr_cpu": 1.0, "sys_cpu": 3.0}]})


def test_fio_latency_is_lat_the_span_aibench_times():
    """aibench stamps a read before submitting it: fio's lat (--lat_percentiles=1), not clat."""
    from aibench.suites.storage.fio import (
        CLAT_SPAN,
        LAT_SPAN,
        fio_command,
        merge_runs,
        parse_fio_json,
    )

    assert "--lat_percentiles=1" in fio_command("f", pattern="rand", bs=4096, qd=4, threads=1, direct=True,
                                                region=1 << 20, runtime_s=1, ramp_s=0.1, engine="io_uring")
    f = parse_fio_json(_fio_json(1000, 500, {100_000: 900, 900_000: 100}))
    assert f["latency_span"] == LAT_SPAN
    assert f["lat_us"]["p50"] == 100.0 and f["lat_us"]["p99"] == 900.0 and f["lat_us"]["min"] == 100.0
    assert merge_runs([f, f])["latency_span"] == LAT_SPAN and merge_runs([f])["latency_span"] == LAT_SPAN
    # A fio without lat percentiles: clat, and the result says so.
    old = parse_fio_json(_fio_json(1000, 500, {100_000: 900, 900_000: 100}, lat_percentiles=False))
    assert old["latency_span"] == CLAT_SPAN
    assert old["lat_us"]["p50"] == 90.0 and old["lat_us"]["max"] == 890.0


@pytest.mark.skipif(shutil.which("fio") is None, reason="fio is not installed")
def test_real_fio_reports_lat_percentiles(disk_dir):
    """This machine's fio, on a small file: lat percentiles are there and not below clat's."""
    import json

    from aibench.suites.storage.fio import LAT_SPAN, fio_command, parse_fio_json

    path = disk_dir / "fio-lat.bin"
    path.write_bytes(os.urandom(4 << 20))
    cmd = fio_command(str(path), pattern="rand", bs=4096, qd=4, threads=1, direct=False, region=4 << 20,
                      runtime_s=0.2, ramp_s=0.0, engine="psync")
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    f = parse_fio_json(p.stdout)
    assert f["latency_span"] == LAT_SPAN and f["lat_us"]["p50"] > 0
    read = json.loads(p.stdout[p.stdout.find("{"):])["jobs"][0]["read"]
    assert read["lat_ns"]["percentile"]["50.000000"] >= read["clat_ns"]["percentile"]["50.000000"]
    assert f["lat_us"]["p50"] == read["lat_ns"]["percentile"]["50.000000"] / 1e3


def test_fio_runs_merge_into_totals_and_histogram_percentiles():
    from aibench.suites.storage.fio import bins_percentile, merge_runs, parse_fio_json

    fio_json = _fio_json

    a = parse_fio_json(fio_json(1000, 500, {100_000: 900, 900_000: 100}))
    b = parse_fio_json(fio_json(3000, 500, {200_000: 2970, 5_000_000: 30}))
    m = merge_runs([a, b])
    assert m["iops"] == pytest.approx(4000 / 1.0) and m["bw_bytes"] == pytest.approx(4000 * 4096)
    # numjobs=4 with group_reporting: job_runtime sums the jobs' runtimes; the rates stand
    # for one job's 500 ms.
    g = parse_fio_json(fio_json(1000, 500, {100_000: 1000}).replace('"job_runtime": 500', '"job_runtime": 2000'))
    assert g["wall_s"] == pytest.approx(0.5) and g["runtime_s"] == pytest.approx(2.0)
    assert merge_runs([g, g])["iops"] == pytest.approx(2000 / 1.0)
    assert m["runs"] == 2 and m["total_ios"] == 4000
    # 4000 values: 900 at 100 us, 2970 at 200 us, 100 at 900 us, 30 at 5 ms.
    assert m["lat_us"]["p50"] == 200.0 and m["lat_us"]["p99"] == 900.0 and m["lat_us"]["p99_9"] == 5000.0
    assert m["lat_us"]["min"] == 100.0 and m["lat_us"]["max"] == 5000.0
    assert m["lat_us"]["mean"] == pytest.approx((900 * 100 + 2970 * 200 + 100 * 900 + 30 * 5000) / 4000)
    assert bins_percentile({}, 50) is None


def test_odirect_reads_are_verified_and_file_is_deleted(disk_dir):
    suite = StorageSuite()
    ctx = _ctx(path=str(disk_dir), file_size=32 << 20)
    for case in (_case("seq", 1 << 20, 4), _case("rand", 4096, 16, 2)):
        r, = suite.run_case(case, _impl(suite, "aibench"), ctx)
        assert r.status == "passed", r.error
        d = r.impl_detail
        assert d["engine"] in ("io_uring", "pread")
        if core.io_uring_unavailable_reason() is None:
            assert d["engine"] == "io_uring" and d["registered_buffers"]
            thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
            if thp.exists() and "[never]" not in thp.read_text():
                assert d["huge_pages_requested"] is True
        assert d["source"]["kind"] == "created" and d["source"]["filesystem"] != "tmpfs"
        assert "verification" in d and r.validation.status == "passed"
        m = r.metrics
        assert m["gbps"].value > 0 and m["iops"].value > 0
        assert m["gbps"].value == pytest.approx(m["iops"].value * case["bs"] / 1e9)
        lat = [m[f"lat_{k}_us"].value for k in ("min", "p50", "p90", "p99", "p99_9", "max")]
        assert lat == sorted(lat) and lat[0] > 0
        assert r.stats.summary.n >= 1
    files = list(disk_dir.rglob("*"))
    assert any(p.name == "aibench-read-test.bin" for p in files)
    ctx.close()
    assert list(disk_dir.iterdir()) == []


def test_corrupted_block_fails_the_case(disk_dir, monkeypatch):
    monkeypatch.setenv("AIBENCH_IO_VERIFY_EVERY", "1")
    suite = StorageSuite()

    def corrupt(path):
        with open(path, "r+b") as f:  # one byte in the third MiB
            f.seek((2 << 20) + 777)
            b = f.read(1)
            f.seek((2 << 20) + 777)
            f.write(bytes([b[0] ^ 0x40]))
            f.flush()
            os.fsync(f.fileno())

    suite.after_create = corrupt
    r, = suite.run_case(_case("seq", 1 << 20, 2), _impl(suite, "aibench"), _ctx(path=str(disk_dir), file_size=16 << 20))
    assert r.status == "failed"
    assert "differs from what aibench wrote" in r.error and str((2 << 20) + 777) in r.error
    assert not r.metrics


def test_pread_engine_when_forced(disk_dir, monkeypatch):
    monkeypatch.setenv("AIBENCH_IO_ENGINE", "pread")
    suite = StorageSuite()
    r, = suite.run_case(_case("rand", 4096, 8, 2), _impl(suite, "aibench"), _ctx(path=str(disk_dir), file_size=16 << 20))
    assert r.status == "passed", r.error
    assert r.impl_detail["engine"] == "pread" and r.impl_detail["os_threads"] == 16
    assert r.metrics["iops"].value > 0


def test_existing_file_is_read_only_and_unchanged(disk_dir):
    path = disk_dir / "users-data.bin"
    path.write_bytes(os.urandom(8 << 20))
    before = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    suite = StorageSuite()
    r, = suite.run_case(_case("seq", 1 << 20, 2, direct=0), _impl(suite, "aibench"), _ctx(file=str(path)))
    assert r.status == "passed", r.error
    assert r.impl_detail["source"]["kind"] == "file"
    assert "cannot be checked" in r.impl_detail["source"]["content"]
    assert "content of an existing file" in r.validation.reason
    assert (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns) == before
    assert sorted(p.name for p in disk_dir.iterdir()) == ["users-data.bin"]


def test_tmpfs_refuses_o_direct_with_a_clear_reason():
    shm = Path("/dev/shm")
    if not shm.is_dir() or not os.access(shm, os.W_OK) or not core.io_fs_type(str(shm))["is_tmpfs"]:
        pytest.skip("no writable tmpfs at /dev/shm")
    suite = StorageSuite()
    r, = suite.run_case(_case(), _impl(suite, "aibench"), _ctx(path=str(shm), file_size=16 << 20))
    assert r.status == "skipped" and "does not support O_DIRECT" in r.validation.reason


@pytest.mark.skipif(shutil.which("fio") is None, reason="fio is not installed")
def test_fio_cross_check_in_one_run(disk_dir, tmp_path):
    import json

    out = tmp_path / "run.json"
    p = subprocess.run([sys.executable, "-m", "aibench.cli", "run", "--suite", "storage", "--param", "pattern=seq",
                        "--param", "bs=1M", "--param", "qd=8", "--param", "threads=1", "--param", "direct=1",
                        "--path", str(disk_dir), "--file-size", "32M", "--time-budget", "0.3", "--no-asv",
                        "--output", str(out)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr + p.stdout
    cases = {c["impl"]: c for c in json.loads(out.read_text())["cases"]}
    assert cases["aibench"]["status"] == cases["fio"]["status"] == "passed"
    fio = cases["fio"]
    assert fio["metrics"]["gbps"]["value"] > 0 and fio["metrics"]["lat_p99_us"]["value"] > 0
    vs = fio["impl_detail"]["vs_aibench"]
    assert vs["gbps_ratio_aibench_over_fio"] == pytest.approx(
        cases["aibench"]["metrics"]["gbps"]["value"] / fio["metrics"]["gbps"]["value"])
    assert "--readonly" in fio["impl_detail"]["command"]
    assert "aibench/fio" in p.stdout
    assert list(disk_dir.iterdir()) == []  # the test file is gone after the run
    # Measured interleaved: the same windows, A B B A A B B A, recorded by both.
    windows = cases["aibench"]["impl_detail"]["windows"]
    assert [w["impl"] for w in windows] == ["aibench", "fio", "fio", "aibench"] * 2
    assert fio["impl_detail"]["windows"] == windows and fio["impl_detail"]["fio"]["runs"] == 4
    fio_windows = [w["gbps"] for w in windows if w["impl"] == "fio"]
    assert min(fio_windows) <= fio["metrics"]["gbps"]["value"] <= max(fio_windows)
    assert len(fio["stats"]["samples_s"]) == 4


def test_one_impl_alone_is_not_interleaved(disk_dir):
    suite = StorageSuite()
    ctx = _ctx(path=str(disk_dir), file_size=16 << 20)
    r, = suite.run_case(_case("seq", 1 << 20, 4), _impl(suite, "aibench"), ctx)
    ctx.close()
    assert r.status == "passed", r.error
    assert "windows" not in r.impl_detail and r.impl_detail["runtime_s"] == pytest.approx(0.3)


@pytest.mark.parametrize("args, message", [
    (["--file", "/nonexistent/x"], "--file /nonexistent/x"),
    (["--path", "/nonexistent"], "--path /nonexistent: not a directory"),
    (["--device", "/etc/hostname"], "not a block device"),
    (["--file-size", "12x"], "bad --file-size"),
    (["--file", "/etc/hostname", "--path", "."], "cannot be combined"),
    (["--param", "bs=1000"], "must be a multiple of 512"),
])
def test_storage_usage_errors_are_one_line(args, message):
    p = subprocess.run([sys.executable, "-m", "aibench.cli", "run", "--suite", "storage", "--no-asv", *args],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in p.stderr


@pytest.mark.skipif(shutil.which("fio") is None, reason="fio is not installed")
def test_a_failing_fio_does_not_fail_the_aibench_case(disk_dir, monkeypatch):
    def broken(cmd, timeout_s):
        raise RuntimeError("fio exited 1: no such engine")

    monkeypatch.setattr(fio_mod, "run_fio", broken)
    suite = StorageSuite()
    ctx = _ctx(path=str(disk_dir), file_size=16 << 20)
    own, peer = suite.run_case(_case("seq", 1 << 20, 4), [_impl(suite, "aibench"), _impl(suite, "fio")], ctx)
    ctx.close()
    assert own.status == "passed", own.error
    assert [w["impl"] for w in own.impl_detail["windows"]] == ["aibench"] * 4
    assert peer.status == "failed" and "no such engine" in peer.error


@pytest.mark.parametrize("engine", ["io_uring", "pread"])
def test_reads_are_counted_once_in_the_timed_window_only(disk_dir, engine):
    """The reader's window totals equal the sums of its per-thread, per-interval counts,
    which place each read by their own arithmetic: kills a reader that counts the ramp's
    reads (or any read outside the window) in its totals."""
    from aibench.suites.storage.bounds import check_counts

    if engine == "io_uring" and core.io_uring_unavailable_reason() is not None:
        pytest.skip(core.io_uring_unavailable_reason())
    path = str(disk_dir / "counts.bin")
    core.io_create_file(path, 16 << 20, 11)
    r = core.io_read(path, False, "rand", 4096, 4, 2, 16 << 20, ramp_s=0.3, runtime_s=0.25, interval_s=0.1,
                     engine=engine, verify=True, file_id=11)
    assert r["error"] is None and r["ramp_ios"] > 0 and r["ios"] > 0  # the ramp ran: its reads must not count
    assert len(r["thread_ios"]) == (2 if engine == "io_uring" else 8)
    for ios, nbytes, interval_ios, interval_bytes in zip(r["thread_ios"], r["thread_bytes"],
                                                         r["thread_interval_ios"], r["thread_interval_bytes"]):
        assert ios == sum(interval_ios) and nbytes == sum(interval_bytes) == 4096 * ios
        assert len(interval_ios) == 3  # two whole intervals and the last 0.05 s
    assert r["ios"] == sum(r["thread_ios"]) and r["bytes"] == sum(r["thread_bytes"])
    check_counts(r)


def test_a_reader_counting_reads_outside_the_window_fails_its_case(disk_dir, monkeypatch):
    """A count that includes the ramp's reads is refused by the case, not reported."""
    real = core.io_read

    def ramp_counted(*args, **kwargs):
        r = real(*args, **kwargs)
        r["ios"] += r["ramp_ios"]
        r["thread_ios"][0] += r["ramp_ios"]
        r["thread_bytes"][0] += r["ramp_ios"] * args[3]
        r["bytes"] += r["ramp_ios"] * args[3]
        return r

    monkeypatch.setattr(core, "io_read", ramp_counted)
    suite = StorageSuite()
    r, = suite.run_case(_case("seq", 1 << 20, 2), _impl(suite, "aibench"), _ctx(path=str(disk_dir), file_size=16 << 20))
    assert r.status == "failed" and not r.metrics
    assert r.error.startswith("the reader's counts disagree: I/O thread 0 counted"), r.error


@pytest.mark.parametrize("direct", [1, 0])
def test_a_storage_figure_is_held_to_its_bound(disk_dir, direct, monkeypatch):
    """Every storage case records its bound; a rate three times what was counted fails."""
    from aibench.suites.storage import bounds

    suite = StorageSuite()
    ctx = _ctx(path=str(disk_dir), file_size=16 << 20)
    r, = suite.run_case(_case("rand", 4096, 4, direct=direct), _impl(suite, "aibench"), ctx)
    assert r.status == "passed", r.error
    assert r.bound["metric"] == "iops" and r.metrics["iops"].value <= r.bound["value"]
    if not direct:  # a page-cache read is a copy: never faster than copying memory
        assert bounds.copy_bandwidth(16 << 20) / 4096 >= r.metrics["iops"].value
    monkeypatch.setenv("AIBENCH_TEST_FAULT", "aibench:inflate")
    r, = suite.run_case(_case("rand", 4096, 4, direct=direct), _impl(suite, "aibench"), ctx)
    ctx.close()
    assert r.status == "failed" and r.error.startswith("exceeds physical bound: iops "), r.error


def test_an_nvme_drive_is_bounded_by_its_pcie_link(tmp_path):
    from aibench.suites.storage.bounds import device_limit

    pci = tmp_path / "sys/devices/pci0000:00/0000:00:01.1/0000:01:00.0"
    block = pci / "nvme/nvme0/nvme0n1"
    block.mkdir(parents=True)
    (pci / "current_link_speed").write_text("16.0 GT/s PCIe\n")
    (pci / "current_link_width").write_text("4\n")
    dev = os.stat(tmp_path).st_dev
    (tmp_path / "sys/dev/block").mkdir(parents=True)
    (tmp_path / f"sys/dev/block/{os.major(dev)}:{os.minor(dev)}").symlink_to(block)
    rate, how = device_limit(str(tmp_path), root=str(tmp_path))
    assert rate == pytest.approx(16e9 * 4 * 128 / 130 / 8) and "nvme0n1" in how
    (tmp_path / f"sys/dev/block/{os.major(dev)}:{os.minor(dev)}").unlink()
    virtio = tmp_path / "sys/devices/pci0000:00/0000:00:02.0/virtio1/block/vda"
    virtio.mkdir(parents=True)
    (tmp_path / f"sys/dev/block/{os.major(dev)}:{os.minor(dev)}").symlink_to(virtio)
    assert device_limit(str(tmp_path), root=str(tmp_path)) is None  # a virtual disk's link is not its speed


@pytest.mark.parametrize("stat_line, sectors", [
    ("1935734 35463 210663994 1416767 47945 56001 17316248 145055 0 69432 1568447", 210663994),  # a disk
    ("5120 40960 880 7040", 40960)])  # a partition on an old kernel: reads, sectors read, writes, sectors written
def test_the_device_read_count_is_sectors_read_of_the_block_devices_stat(tmp_path, stat_line, sectors):
    from aibench.suites.storage.bounds import device_read_bytes

    dev = os.stat(tmp_path).st_dev
    block = tmp_path / "sys/devices/virtual/block/vda"
    block.mkdir(parents=True)
    (block / "stat").write_text(stat_line + "\n")
    (tmp_path / "sys/dev/block").mkdir(parents=True)
    (tmp_path / f"sys/dev/block/{os.major(dev)}:{os.minor(dev)}").symlink_to(block)
    nbytes, where = device_read_bytes(str(tmp_path), root=str(tmp_path))
    assert nbytes == sectors * 512 and where.endswith("vda/stat")
    assert device_read_bytes(str(tmp_path), root=str(tmp_path / "elsewhere")) is None  # no block device: no bound


@pytest.mark.skipif(fio_mod.fio_binary() is None, reason="fio is not installed (apt-get install fio)")
def test_fios_direct_reads_are_held_to_the_devices_own_count(disk_dir, monkeypatch):
    """fio's figure comes from another process; on direct reads it is held to what the
    kernel counted from the block device over the windows (any disk, a VM's included):
    fio's rate tripled after measuring fails its case naming that bound."""
    from aibench.suites.storage.bounds import device_read_bytes

    if device_read_bytes(str(disk_dir)) is None:
        pytest.skip(f"{disk_dir} is on no block device with a sysfs stat file (a network or overlay filesystem)")
    suite = StorageSuite()
    ctx = _ctx(path=str(disk_dir), file_size=64 << 20)
    r, = suite.run_case(_case("seq", 1 << 20, 4), _impl(suite, "fio"), ctx)
    assert r.status == "passed", r.error
    assert r.bound["source"].startswith("bytes the block device delivered by the kernel's count")
    monkeypatch.setenv("AIBENCH_TEST_FAULT", "fio:inflate")
    r, = suite.run_case(_case("seq", 1 << 20, 4), _impl(suite, "fio"), ctx)
    ctx.close()
    assert r.status == "failed" and "bytes the block device delivered" in r.error, r.error
