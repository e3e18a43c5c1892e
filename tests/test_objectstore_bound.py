"""The objectstore figures' physical bound (suites/objectstore/bounds.py): the kernel's count
of the bytes received on the network interfaces, over the requests of warp's window. Its
arithmetic on synthetic samples, and every client on the embedded endpoint: an honest case
passes under its bound, an inflated one (AIBENCH_TEST_FAULT=IMPL:inflate, x3) fails."""

import functools
import os

import pytest

from aibench.faults import ENV, FACTOR_ENV
from aibench.harness import SamplingPolicy
from aibench.suites.base import RunContext
from aibench.suites.objectstore import ObjectStoreSuite, bounds, clients
from aibench.suites.objectstore.bounds import RxSampler, counted_span, kernel_rx, read_rx_bytes, rx_between, rx_over
from aibench.suites.objectstore.clients import Record
from aibench.targets import Target

NET_DEV = """Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    3193      29    0    0    0     0          0         0     3193      29    0    0    0     0       0          0
  eth0: 325131371    6445    0    0    0     0          0         0   328700    3747    0    0    0     0       0          0
"""


def _samples(*points):
    """Samples read instantly at each (time, {interface: rx bytes})."""
    return [(t, t, rx) for t, rx in points]


# --- arithmetic -------------------------------------------------------------------------
def test_proc_net_dev_is_read_per_interface(tmp_path):
    p = tmp_path / "dev"
    p.write_text(NET_DEV)
    assert read_rx_bytes(str(p)) == {"lo": 3193, "eth0": 325131371}
    p.write_text(NET_DEV + "garbage line\n")
    with pytest.raises(ValueError):
        read_rx_bytes(str(p))
    if os.path.exists("/proc/net/dev"):
        assert "lo" in read_rx_bytes()


def test_rx_is_summed_over_interfaces_new_ones_from_zero_reset_ones_not_negative():
    assert rx_between({"lo": 100, "eth0": 1000}, {"lo": 150, "eth0": 1300}) == 350
    assert rx_between({"lo": 100}, {"lo": 150, "veth1": 40}) == 90
    assert rx_between({"lo": 100, "eth0": 1000}, {"lo": 150, "eth0": 10}) == 50


def test_the_samples_that_bracket_the_interval_are_chosen():
    s = _samples((0.00, {"lo": 0}), (0.02, {"lo": 10}), (0.04, {"lo": 30}), (0.06, {"lo": 60}),
                 (0.08, {"lo": 100}), (0.10, {"lo": 150}))
    assert rx_over(s, 0.03, 0.07) == (90, 0.02, 0.08)  # last at or before 0.03, first at or after 0.07
    assert rx_over(s, 0.02, 0.06) == (50, 0.02, 0.06)  # samples exactly at the ends
    assert rx_over(s, -0.01, 0.05) is None  # nothing read before the interval
    assert rx_over(s, 0.01, 0.11) is None  # nothing read after it


def test_a_sample_counts_only_on_the_side_its_whole_reading_is_on():
    # (read started, read finished, counters): a reading that straddles a moment is neither
    # at-or-before nor at-or-after it.
    s = [(0.00, 0.001, {"lo": 0}), (0.019, 0.021, {"lo": 10}), (0.04, 0.041, {"lo": 30})]
    assert rx_over(s, 0.02, 0.02) == (30, 0.001, 0.04)


def test_the_count_covers_every_request_the_window_counts_a_part_of():
    """A request straddling an end of the window counts for its time inside it, but its
    bytes may all arrive outside: the kernel is counted from the earliest start to the
    latest end of such requests, and divided by the window alone."""
    recs = [Record(0, start=0.0, end=0.5, nbytes=100), Record(0, start=0.5, end=1.0, nbytes=100),
            Record(0, start=1.0, end=1.5, nbytes=100), Record(0, start=1.5, end=2.0, nbytes=100),
            Record(1, start=0.0, end=0.4, nbytes=100), Record(1, start=0.4, end=1.2, nbytes=100),
            Record(1, start=1.2, end=2.2, nbytes=100)]
    t_a, t_b, warp = clients.window(recs)
    assert (t_a, t_b, warp) == (0.5, 2.0, True)
    assert counted_span(recs, t_a, t_b) == (0.4, 2.2)
    # Worker 1's 0.4-1.2 request got its bytes at 0.45, before the window, and its 1.2-2.2
    # one at 2.1, after it: the client counts 87.5 + 80 of them in the window, the kernel
    # none between the samples around 0.5 and 2.0, so the count over the window alone is
    # below the figure; the count over every request's whole time holds it.
    figure_bytes = clients.Client.window(type("Op", (), {"log": clients.RunLog(records=recs)})())["window_bytes"]
    assert figure_bytes == pytest.approx(467.5)
    s = _samples((0.38, {"lo": 0}), (0.46, {"lo": 100}), (0.98, {"lo": 200}), (1.48, {"lo": 300}),
                 (1.98, {"lo": 400}), (2.02, {"lo": 400}), (2.12, {"lo": 500}), (2.22, {"lo": 500}))
    assert rx_over(s, t_a, t_b)[0] == 300 < figure_bytes
    rx = kernel_rx(s, recs, t_a, t_b, 0.02)
    assert rx["rx_bytes"] == 500 >= figure_bytes and rx["window_s"] == pytest.approx(1.5)
    assert rx["counted_s"] == pytest.approx(2.22 - 0.38) and rx["rate_bytes_per_s"] == pytest.approx(500 / 1.5)


def _fake_op(samples, recs, workload="whole", size=1000):
    sampler = RxSampler()
    sampler.samples = samples
    op = clients.Client.__new__(clients.Client)
    op.rx, op.log = sampler, clients.RunLog(records=recs)
    keys = [f"k{i}" for i in range(4)]
    op.workload = clients.Workload(clients.Dataset(keys, {k: size for k in keys}, {k: i for i, k in enumerate(keys)}, True),
                                   None, 1.0, 4)
    return op


def test_a_client_count_above_the_kernel_count_fails_the_case():
    from aibench.results import CaseResult, Metric
    from aibench.suites.base import CaseFailed

    recs = [Record(w, start=0.1 * i, end=0.1 * (i + 1), nbytes=1000) for w in range(2) for i in range(10)]
    # The kernel received 15 kB in all, the clients counted 20 kB in 1 s.
    samples = _samples((0.0, {"lo": 0}), (0.5, {"lo": 7500}), (1.0, {"lo": 15000}))
    op = _fake_op(samples, recs)
    suite = ObjectStoreSuite()
    params = {"workload": "whole", "size": 1000, "concurrency": 2}
    b = suite.bound(params, op, {})
    assert b["metric"] == "gbps" and b["value"] == pytest.approx(15000 / 0.9 / 1e9)  # window 0.1-1.0 s
    assert "/proc/net/dev" in b["source"] and suite.bound(params, op, {}, fresh=True) == b
    w = op.window()
    result = CaseResult(suite="objectstore", case_id="x", params=params, target="cpu", impl="boto3", status="skipped",
                        started_at="", metrics={"gbps": Metric(w["window_bytes"] / w["window_s"] / 1e9, "GB/s", True)})
    with pytest.raises(CaseFailed, match="exceeds physical bound: gbps .* GB/s > .* GB/s \\(bytes received"):
        suite.check_bound(result, params, op)
    # Small objects: the byte rate per object size, on objects/s.
    small = suite.bound({**params, "workload": "small"}, op, {})
    assert small["metric"] == "objects_per_s" and small["value"] == pytest.approx(15000 / 0.9 / 1000)


def test_unreadable_counters_are_no_bound_with_the_reason(tmp_path):
    sampler = RxSampler(path=str(tmp_path / "missing")).start().stop()
    assert sampler.samples == [] and "FileNotFoundError" in sampler.unreadable
    op = _fake_op([], [Record(0, start=0.0, end=1.0, nbytes=10)])
    op.rx = sampler
    rx, why = op.kernel_rx()
    assert rx is None and "cannot be read" in why and "missing" in why
    assert ObjectStoreSuite().bound({"workload": "whole", "size": 10, "concurrency": 1}, op, {}) is None


def test_the_sampler_reads_the_counters_through_the_run():
    if not os.path.exists(bounds.PROC_NET_DEV):
        pytest.skip("no /proc/net/dev")
    import time

    sampler = RxSampler(every_s=0.01).start()
    time.sleep(0.1)
    sampler.stop()
    assert sampler.unreadable is None and len(sampler.samples) >= 4
    times = [t for t, _, _ in sampler.samples]
    assert times == sorted(times) and all(a <= b for a, b, _ in sampler.samples) and "lo" in sampler.samples[0][2]


# --- every client, end to end -----------------------------------------------------------
IMPL_NAMES = [cls.name for cls in ObjectStoreSuite.IMPLS]


@pytest.fixture(scope="module")
def embedded_run():
    """One run on the embedded endpoint (the objects uploaded once for every client)."""
    if not os.path.exists(bounds.PROC_NET_DEV):
        pytest.skip("no /proc/net/dev: no bound to check")
    pytest.importorskip("moto", reason="the embedded endpoint needs moto")
    ctx = RunContext(target=Target("cpu"), policy=SamplingPolicy(budget_s=0.5), options={})
    yield ctx
    ctx.close()


def _run(ctx, impl, workload, size):
    suite = ObjectStoreSuite()
    info = next(i for i in suite.impls() if i.name == impl)
    r, = suite.run_case({"workload": workload, "size": size, "concurrency": 4}, info, ctx)
    if r.status == "skipped":
        pytest.skip(r.validation.reason if r.validation else r.error)
    return r


@pytest.mark.parametrize("impl", IMPL_NAMES)
@pytest.mark.parametrize("workload, size", [("whole", 1 << 20), ("small", 4 << 10)])
def test_an_inflated_figure_fails_through_the_kernel_count(embedded_run, impl, workload, size, monkeypatch):
    pytest.importorskip(impl)
    monkeypatch.setenv(ENV, f"{impl}:inflate")
    monkeypatch.delenv(FACTOR_ENV, raising=False)  # faults.INFLATE_FACTOR: 3
    r = _run(embedded_run, impl, workload, size)
    assert r.status == "failed" and r.error.startswith("exceeds physical bound: "), (r.status, r.error)
    assert r.bound["source"] in r.error and "/proc/net/dev rx_bytes" in r.error
    assert r.bound["metric"] == ("objects_per_s" if workload == "small" else "gbps")


@pytest.mark.parametrize("impl", IMPL_NAMES)
def test_an_honest_figure_passes_under_the_kernel_count(embedded_run, impl, monkeypatch):
    pytest.importorskip(impl)
    monkeypatch.delenv(ENV, raising=False)
    r = _run(embedded_run, impl, "small", 4 << 10)
    assert r.status == "passed", r.error
    assert r.bound["metric"] == "objects_per_s" and r.bound["value"] >= r.metrics["objects_per_s"].value
    rx = r.impl_detail["kernel_rx"]
    assert rx["rx_bytes"] >= r.impl_detail["window_bytes"] and rx["sample_every_s"] == bounds.SAMPLE_EVERY_S
    assert "lo" in rx["interfaces"] and rx["counted_s"] >= rx["window_s"]


def test_no_counters_is_a_passed_case_with_no_bound_and_the_reason(embedded_run, monkeypatch):
    pytest.importorskip("boto3")
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setattr(clients, "RxSampler", functools.partial(RxSampler, path="/nonexistent/net/dev"))
    r = _run(embedded_run, "boto3", "small", 4 << 10)
    assert r.status == "passed" and r.bound is None, (r.status, r.error, r.bound)
    assert r.impl_detail["kernel_rx"].startswith("no bound: the kernel's rx counters (/nonexistent/net/dev)")
