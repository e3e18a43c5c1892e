"""Timing parity between the impls of a case (issue 13, item 3): interleaved A B B A
windows, one thread rule for every impl, the Python overhead of peers timed in a Python
loop, and on GPUs an L2 flush before every timed launch. Fake timers report times
instead of spending them: nothing here asserts on a measured time."""

import pytest

from aibench.harness import SamplingPolicy, interleaved_order, measure_interleaved
from aibench.results import PASSED, Validation
from aibench.suites.base import Impl, RunContext, Suite
from aibench.targets import Target

# No idle time, no warm-up beyond the first call: the tests only count calls.
POLICY = SamplingPolicy(budget_s=1.0, settle_s=0.0, warmup_s=0.0, min_sample_s=0.0, rel_ci=0.01)


class Recorder:
    """Timers that log which impl ran each timed sample, in order."""

    def __init__(self):
        self.log: list[tuple[str, int]] = []

    def timer(self, name: str, per_call: float = 1e-3, fail_after: int | None = None):
        def run(number: int) -> float:
            self.log.append((name, number))
            if fail_after is not None and len([n for n, _ in self.log if n == name]) > fail_after:
                raise RuntimeError(f"{name} broke")
            return per_call * number

        return run


def test_one_round_is_forward_then_backward():
    assert interleaved_order(list("AB")) == list("ABBA")
    assert interleaved_order(list("ABC")) == list("ABCCBA")
    assert interleaved_order(["only"]) == ["only"]


def test_two_impls_run_in_abba_windows_and_keep_their_own_samples_in_order():
    rec = Recorder()
    out = measure_interleaved({"a": rec.timer("a", 1e-3), "b": rec.timer("b", 2e-3)}, POLICY)
    # After the warm-up calls (one each, a then b), the timed samples come in windows.
    timed = rec.log[2:]
    names = [n for n, _ in timed]
    # Windows of 3 samples (min_samples 5 -> 3 per window): a a a b b b b b b a a a ...
    per_window = out["a"].extra["interleave"]["window_samples"]
    assert per_window == 3
    windows = [names[i] for i in range(0, len(names), per_window)]
    assert all(len(set(names[i:i + per_window])) == 1 for i in range(0, len(names), per_window))
    assert "".join("A" if w == "a" else "B" for w in windows) == out["a"].extra["interleave"]["order"]
    assert out["a"].extra["interleave"]["order"].startswith("ABBA")
    assert len(out["a"].extra["interleave"]["order"]) % 4 == 0  # whole rounds only
    assert out["a"].extra["interleave"]["impls"] == ["a", "b"]
    # Each impl's samples: its own timer's, every one of its windows, in order.
    assert out["a"].samples_s == [1e-3] * names.count("a")
    assert out["b"].samples_s == [2e-3] * names.count("b")
    assert out["a"].stopped_by == out["b"].stopped_by == "ci"


def test_three_impls_run_in_abccba_windows():
    rec = Recorder()
    out = measure_interleaved({n: rec.timer(n) for n in "xyz"}, POLICY)
    assert out["x"].extra["interleave"]["order"].startswith("ABCCBA")
    assert out["x"].extra["interleave"] == out["z"].extra["interleave"]


def test_a_failing_impl_leaves_the_rotation_and_the_other_goes_on():
    rec = Recorder()
    out = measure_interleaved({"a": rec.timer("a"), "b": rec.timer("b", fail_after=2)}, POLICY)
    assert isinstance(out["b"], RuntimeError)
    assert out["a"].summary.median == pytest.approx(1e-3)
    assert len(out["a"].samples_s) >= POLICY.min_samples


def test_one_impl_alone_is_sampled_as_before():
    rec = Recorder()
    out = measure_interleaved({"a": rec.timer("a")}, POLICY)
    assert "interleave" not in out["a"].extra and len(out["a"].samples_s) == POLICY.min_samples


class _FakeImpl(Impl):
    target_kinds = ("cpu",)
    log: list[str] = []

    def __init__(self, params, ctx):
        pass

    def time(self, number: int) -> float:
        _FakeImpl.log.append(self.name)
        return 1e-3 * number

    def check(self) -> Validation:
        return Validation(status=PASSED)


class _A(_FakeImpl):
    name = "a"


class _B(_FakeImpl):
    name = "b"


class _FakeSuite(Suite):
    name = "fake"
    IMPLS = (_A, _B)

    def group_impls(self, params, impls):
        return [impls]

    def metrics(self, params, samples, op):
        return {}


def test_the_case_template_interleaves_a_group_and_records_the_order():
    _FakeImpl.log = []
    suite = _FakeSuite()
    results = suite.run_case({}, suite.impls(), RunContext(target=Target("cpu"), policy=POLICY))
    assert [r.status for r in results] == [PASSED, PASSED]
    # warm-up a, warm-up b, then a's window first, b's next, twice b, then a again
    after_warmup = _FakeImpl.log[2:]
    assert after_warmup[:3] == ["a"] * 3 and after_warmup[3:9] == ["b"] * 6 and after_warmup[9] == "a"
    orders = {r.impl: r.stats.to_dict()["interleave"]["order"] for r in results}
    assert orders["a"] == orders["b"] and orders["a"].startswith("ABBA")


def test_impls_that_do_not_fit_together_are_measured_apart_and_say_why():
    class Apart(_FakeSuite):
        def measured_apart(self, params, group, ctx):
            return "too big together"

    _FakeImpl.log = []
    suite = Apart()
    results = suite.run_case({}, suite.impls(), RunContext(target=Target("cpu"), policy=POLICY))
    assert _FakeImpl.log == sorted(_FakeImpl.log)  # every 'a' before every 'b': one after the other
    assert all(r.stats.extra["interleave"] == {"impls": ["a", "b"], "alone": "too big together"} for r in results)


def test_kernel_suites_fall_back_to_one_at_a_time_when_memory_is_short(monkeypatch):
    from aibench.suites.gemm import GemmSuite

    suite = GemmSuite()
    ctx = RunContext(target=Target("cpu"), policy=POLICY)
    group = [i for i in suite.impls() if "cpu" in i.target_kinds]
    monkeypatch.setattr(suite, "case_bytes", lambda params, target: (10 << 30, 25 << 30))
    assert "together does not fit: it needs 30.0 GiB" in suite.measured_apart({}, group, ctx)  # 3 x 10 GiB > 0.8 x 25 GiB
    monkeypatch.setattr(suite, "case_bytes", lambda params, target: (1 << 30, 25 << 30))
    assert suite.measured_apart({}, group, ctx) is None


# --- one thread rule ---------------------------------------------------------------------

def _fake_sysfs(root, siblings: dict[int, str]):
    for cpu, group in siblings.items():
        topo = root / "sys/devices/system/cpu" / f"cpu{cpu}" / "topology"
        topo.mkdir(parents=True)
        (topo / "thread_siblings_list").write_text(group + "\n")


def test_threads_are_the_physical_cores_of_the_affinity_mask(tmp_path, monkeypatch):
    from aibench.targets.cpu import case_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    # 4 cores with 2 SMT threads each (siblings n and n + 4), as Linux numbers them.
    _fake_sysfs(tmp_path, {c: f"{c % 4},{c % 4 + 4}" for c in range(8)})
    assert case_threads(range(8), str(tmp_path))[0] == 4
    assert case_threads([0, 4], str(tmp_path))[0] == 1  # both threads of one core
    assert case_threads([0, 1, 5], str(tmp_path))[0] == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert case_threads(range(8), str(tmp_path)) == (3, "OMP_NUM_THREADS")


def test_threads_are_capped_by_the_cgroup_quota(tmp_path, monkeypatch):
    from aibench.targets.cpu import case_threads
    from aibench.targets.cpu import cgroup_cpu_limit

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    _fake_sysfs(tmp_path, {c: str(c) for c in range(8)})
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/cgroup").write_text("0::/job/step\n")
    step = tmp_path / "sys/fs/cgroup/job/step"
    step.mkdir(parents=True)
    (step / "cpu.max").write_text("max 100000\n")
    (tmp_path / "sys/fs/cgroup/job/cpu.max").write_text("250000 100000\n")  # a parent's quota binds
    assert cgroup_cpu_limit(str(tmp_path))["cpus"] == pytest.approx(2.5)
    threads, rule = case_threads(range(8), str(tmp_path))
    assert threads == 3 and "cgroup" in rule


@pytest.mark.parametrize("suite_name, params", [
    ("gemm", {"m": 64, "n": 64, "k": 64, "dtype": "fp32"}),
    ("attention", {"batch": 1, "heads": 2, "kv_heads": 2, "seqlen": 64, "kv_seqlen": 64, "head_dim": 32,
                   "causal": False, "dtype": "fp32"}),
])
def test_every_cpu_impl_of_a_case_records_the_same_threads_and_its_timing(suite_name, params):
    from aibench.suites import get_suite
    from aibench.targets.cpu import case_threads

    suite = get_suite(suite_name)
    impls = [i for i in suite.impls() if "cpu" in i.target_kinds]
    policy = SamplingPolicy(budget_s=0.05, settle_s=0.0, warmup_s=0.0, min_sample_s=0.001)
    results = suite.run_case(params, impls, RunContext(target=Target("cpu"), policy=policy))
    ran = [r for r in results if r.status == PASSED]
    assert {r.impl for r in ran} >= {"aibench", "blas" if suite_name == "gemm" else "numpy"}
    assert {r.impl_detail["threads"] for r in ran} == {case_threads()[0]}
    assert len({r.impl_detail["threads_rule"] for r in ran}) == 1
    for r in ran:
        assert r.stats.to_dict()["interleave"]["impls"] == [i.name for i in impls]
        timing = r.impl_detail["timing"]
        if r.impl == "aibench":
            assert timing["loop"].startswith("C++") and "python_overhead_s" not in timing
        else:  # numpy's BLAS and torch: a Python loop, its overhead per call measured
            assert timing["loop"].startswith("Python") and timing["python_overhead_s"] > 0


# --- GPU: an L2 flush before every timed launch ------------------------------------------

@pytest.mark.gpu
def test_the_python_event_timer_flushes_before_every_launch():
    import cupy

    from aibench.targets import cuda as cu

    class CountingFlusher(cu.L2Flusher):
        flushes = 0

        def flush(self):
            CountingFlusher.flushes += 1
            super().flush()

    flusher = CountingFlusher(0)
    x = cupy.ones(1 << 20, dtype=cupy.float32)
    launches = []
    timer = cu.event_timer(lambda: launches.append(1) or x.sum(), flusher)
    assert timer(7) > 0
    assert CountingFlusher.flushes == len(launches) == 7


@pytest.mark.gpu
def test_a_flushed_cpp_timed_loop_excludes_the_flushes():
    """time_op with a flush before each launch sums the launches alone: a GEMM too small
    to matter next to a 2 x L2 memset must read far below the memsets' time."""
    import cupy

    from aibench import _cuda
    from aibench.targets import cuda as cu

    a = cupy.ones((64, 64), dtype=cupy.float16)
    c = cupy.empty((64, 64), dtype=cupy.float16)
    gemm = _cuda.CublasLtGemm(0, 64, 64, 64, "fp16", a.data.ptr, a.data.ptr, c.data.ptr, "kn")
    flusher = cu.L2Flusher(0)
    start, stop = cupy.cuda.Event(), cupy.cuda.Event()
    start.record()
    for _ in range(20):
        flusher.flush()
    stop.record()
    stop.synchronize()
    flushes_s = cupy.cuda.get_elapsed_time(start, stop) / 1e3
    assert gemm.time(20, flusher.ptr, flusher.nbytes) < 0.5 * flushes_s


@pytest.mark.gpu
def test_jax_gpu_attention_takes_cudnn_or_says_why():
    pytest.importorskip("jax")
    from aibench.suites.attention.jax import JaxAttentionRunner
    from aibench.targets import jax as jx

    target = Target("cuda", 0)
    if jx.unavailable_reason(target):
        pytest.skip(jx.unavailable_reason(target))
    p = {"batch": 1, "heads": 4, "kv_heads": 4, "seqlen": 256, "kv_seqlen": 256, "head_dim": 64, "causal": True,
         "dtype": "bf16"}
    runner = JaxAttentionRunner(p, RunContext(target=target, policy=POLICY))
    backend = runner.detail()["attention_backend"]
    assert backend["implementation"] in ("cudnn", "xla") and backend["why"]
    runner.params, runner.seed = p, 0
    runner.time(3)
    runner.collect_timed_output()
    assert runner.validate().status == PASSED
