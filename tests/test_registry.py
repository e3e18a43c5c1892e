"""The one registration path (aibench/registry.py), the generated asv module (suites/),
and the suites' declared context keys (CaseResult.key())."""

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from aibench import registry
from aibench.errors import UsageError
from aibench.results import CaseResult, RunDocument
from aibench.suites import all_suites, get_suite
from aibench.suites.base import Impl, Suite

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "src" / "aibench" / "reference"

# The asv classes of the six wrapper modules under suites/ before the generated one
# (commit 867fb36): results/ holds benchmarks by these names.
WRAPPER_CLASSES = {"attention": ("AttentionCpu", "AttentionCuda", "AttentionJax"),
                   "gemm": ("GemmCpu", "GemmCuda", "GemmJax"),
                   "interconnect": ("AllreduceCpu", "AllreduceCuda"),
                   "objectstore": ("ObjectStore",), "power": ("PowerCpu", "PowerCuda"), "storage": ("Storage",)}


def key_before(case: CaseResult) -> tuple[str, str, str, str]:
    """CaseResult.key() as it was written at commit 867fb36, parsing impl_detail strings:
    the oracle the declared context keys must reproduce byte for byte."""
    detail = case.impl_detail or {}
    context = []
    source = detail.get("source")
    if isinstance(source, dict):
        context.append(f"source={source.get('kind')}:{source.get('filesystem')}")
    if "embedded_endpoint" in detail:
        context.append("endpoint=" + ("embedded" if detail["embedded_endpoint"] else "real"))
    if (isinstance(detail.get("threads"), int) and detail.get("threads_rule") == "OMP_NUM_THREADS"
            and not {"threads", "concurrency"} & set(case.params or {})):
        context.append(f"threads={detail['threads']}")
    name = f"{case.case_id} [{', '.join(context)}]" if context else case.case_id
    return (case.suite, name, case.target.split(":")[0], case.impl)


def test_declared_context_keys_give_the_same_key_for_every_shipped_reference_case():
    cases = [c for path in sorted(REFERENCE.glob("*.json")) for c in RunDocument.load(path).cases]
    assert len(cases) > 100
    with_context = [c for c in cases if key_before(c)[1] != c.case_id]
    # storage sources and object-store endpoints are among them: the test compares contexts
    assert {c.suite for c in with_context} >= {"storage", "objectstore"}
    for case in cases:
        assert case.key() == key_before(case), case.case_id


@pytest.mark.parametrize("suite, params, detail, context", [
    ("gemm", {"m": 64}, {"threads": 4, "threads_rule": "OMP_NUM_THREADS"}, " [threads=4]"),
    ("attention", {}, {"threads": 2, "threads_rule": "OMP_NUM_THREADS"}, " [threads=2]"),
    ("gemm", {"m": 64}, {"threads": 4, "threads_rule": "sched_getaffinity"}, ""),  # the default count
    ("storage", {"threads": 1}, {"source": {"kind": "created", "filesystem": "tmpfs"}, "threads": 1,
                                 "threads_rule": "OMP_NUM_THREADS"}, " [source=created:tmpfs]"),
    ("objectstore", {"concurrency": 8}, {"embedded_endpoint": False}, " [endpoint=real]"),
    ("interconnect", {}, {"source": {"kind": "created", "filesystem": "ext4"}}, ""),  # not storage's: no context
    ("pytest:bench_loader", {}, {"threads": 4, "threads_rule": "OMP_NUM_THREADS"}, ""),
])
def test_a_case_key_holds_what_its_suite_declares(suite, params, detail, context):
    case = CaseResult(suite=suite, case_id="c", params=params, target="cpu", impl="x", status="passed",
                      impl_detail=detail)
    assert case.key() == (suite, "c" + context, "cpu", "x")


def test_every_builtin_suite_is_registered_at_its_class(tmp_path):
    suites = all_suites()
    assert set(WRAPPER_CLASSES) <= set(suites)
    for name, suite in suites.items():
        if suite.package is None:  # built-in: registered by its module's @register_suite
            assert type(suite).__module__.startswith("aibench.suites.")
            assert suite.aibench_contract == ("suite", registry.CONTRACT_VERSION)
    (tmp_path / "bench_loader.py").write_text("")
    assert get_suite(f"pytest:{tmp_path / 'bench_loader.py'}").name == "pytest:bench_loader"


def test_unknown_suite_is_one_usage_error():
    with pytest.raises(UsageError, match="unknown suite 'nope' \\(available: "):
        get_suite("nope")


def test_the_contract_check_refuses_another_version_and_a_wrong_name():
    class Old(Suite):
        name = "old"
        aibench_contract = ("suite", registry.CONTRACT_VERSION + 1)

    class OldImpl(Impl):
        name = "old"
        aibench_contract = ("impl", 0)

    class Named(Suite):
        name = "named"

    with pytest.raises(TypeError, match=f"contract version {registry.CONTRACT_VERSION + 1!r}; this aibench"):
        registry.register_suite(Old)
    with pytest.raises(TypeError, match="is named 'named', not 'other'"):
        registry.register_suite(Named, name="other")
    with pytest.raises(TypeError, match="is not an aibench Impl subclass"):
        registry.register_impl("gemm", Named)
    with pytest.raises(TypeError, match="contract version 0"):
        registry.register_suite(type("WithOldImpl", (Suite,), {"name": "with-old", "IMPLS": (OldImpl,)}))
    assert not {"old", "other", "with-old"} & set(all_suites())


def test_generated_asv_module_keeps_the_names_of_the_wrapper_modules():
    """suites/benchmarks.py, discovered by asv's own runner, defines one benchmark per track
    of every AsvSpec of every registered suite, named as the six wrapper modules named
    them (<suite>.<Class>.<track>), so results/ stays comparable."""
    list_benchmarks = pytest.importorskip("asv_runner.discovery").list_benchmarks
    from aibench.asv_export import benchmark_dicts

    buf = io.StringIO()
    list_benchmarks(str(REPO / "suites"), buf)
    discovered = {b["name"] for b in json.loads(buf.getvalue())}
    exported = {b["name"] for name, s in all_suites().items() for spec in s.asv_specs()
                for b in benchmark_dicts(spec, name)}
    assert discovered == exported
    classes = {tuple(n.split(".")[:2]) for n in discovered}
    assert {(suite, cls) for suite, names in WRAPPER_CLASSES.items() for cls in names} <= classes
    assert sorted(p.name for p in (REPO / "suites").glob("*.py")) == ["__init__.py", "benchmarks.py"]


def test_a_run_resource_opens_once_closes_last_first_and_a_failed_open_stays_failed():
    from aibench.harness import SamplingPolicy
    from aibench.suites.base import RunContext
    from aibench.targets import Target

    ctx = RunContext(Target("cpu"), SamplingPolicy(budget_s=0.1))
    opened, closed = [], []

    def open_one(name):
        opened.append(name)
        return name

    assert ctx.resource("a", lambda: open_one("a"), closed.append) == "a"
    assert ctx.resource("a", lambda: open_one("again"), closed.append) == "a" and ctx.resource("a") == "a"
    ctx.resource("b", lambda: open_one("b"), closed.append)
    attempts = []

    def broken():
        attempts.append(1)
        raise RuntimeError("endpoint down")

    for _ in range(2):
        with pytest.raises(RuntimeError, match="endpoint down"):
            ctx.resource("c", broken, closed.append)
    with pytest.raises(KeyError):
        ctx.resource("d")
    assert opened == ["a", "b"] and attempts == [1] and closed == []
    ctx.close()
    assert closed == ["b", "a"]
    ctx.close()  # once only
    assert closed == ["b", "a"]
    collected = RunContext(Target("cpu"), SamplingPolicy(budget_s=0.1))
    collected.resource("e", lambda: "e", closed.append)
    del collected  # a context nobody closed closes with its collection
    assert closed == ["b", "a", "e"]


def test_a_built_in_suite_that_does_not_import_fails_closed(tmp_path):
    """A broken module among aibench's own suites is one line and exit 2 for every command
    that reads the registry: a default run without it would exit 0 having measured less.
    (A plugin that fails is a warning: tests/test_plugins.py.)"""
    (tmp_path / "broken_suite.py").write_text("raise ImportError('libfoo.so.1: cannot open shared object file')\n")
    code = ("import sys, aibench.suites as s; s.__path__.append(sys.argv[1]); "
            "from aibench.cli import main; raise SystemExit(main(['list']))")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "aibench: error: aibench's own suite module aibench.suites.broken_suite not loaded: ImportError: "
        "libfoo.so.1: cannot open shared object file: this installation is broken (reinstall aibench)"]
