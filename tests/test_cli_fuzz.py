"""Fuzzing the command line with hypothesis: any mix of suites, parameters and option
values (hostile ones included) ends in one of the documented exit codes, never in a
traceback. Cases are not measured here (the runner is replaced by one that records a
result per planned case): this is about parsing, planning, validation and writing.
AIBENCH_FUZZ_EXAMPLES sets the number of examples (default 300)."""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from unittest import mock

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from aibench import mpi, publish, runner, session  # noqa: E402
from aibench.cli import main  # noqa: E402
from aibench.results import CaseResult, Metric, Validation  # noqa: E402
from aibench.suites import all_suites  # noqa: E402

EXAMPLES = int(os.environ.get("AIBENCH_FUZZ_EXAMPLES", "300"))
ALLOWED_EXIT_CODES = {0, 1, 2, 130}
SUITES = sorted(all_suites())
PARAM_KEYS = sorted({p for s in all_suites().values() for p in s.params}) + ["bogus", ""]
IMPLS = sorted({i for s in all_suites().values() for i in s.impl_names()}) + ["nope"]
HOSTILE = ["0", "-1", "inf", "-inf", "nan", "1e308", "1e-308", "abc", "", " ", "4G", "5000G", "1,2", "1,,2",
           "../../x", "/dev/null", "/proc/self/x", "true", "no", "0x10", "9" * 40, "e\"><img src=x>",
           "http://u:pw@127.0.0.1:9/", "s3://b/p", "s3://u:pw@b/p", "gs://b", "ftp://h", "\u00e9\u00e8", "%s%n"]
value = st.one_of(st.sampled_from(HOSTILE), st.integers(-10**15, 10**15).map(str),
                  st.floats(allow_nan=True, allow_infinity=True).map(repr),
                  st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12))
OPTION_WITH_VALUE = ["--target", "--time-budget", "--power-window", "--ranks", "--machine", "--output", "--file-size",
                     "--path", "--file", "--device", "--url", "--endpoint-url", "--redfish"]
FLAGS = ["--quick", "--full", "--no-asv", "--json", "--power", "--fleet", "--per-gpu", "--keep", "--read-only",
         "--force", "--fail-on-skip"]

run_args = st.lists(st.one_of(
    st.tuples(st.just("--suite"), st.sampled_from(SUITES + ["nosuch", ""])),
    st.tuples(st.just("--impl"), st.sampled_from(IMPLS)),
    st.tuples(st.just("--param"), st.builds(lambda k, v: f"{k}={v}", st.sampled_from(PARAM_KEYS), value)),
    st.tuples(st.just("--param"), value),
    st.tuples(st.just("--target"), st.sampled_from(["cpu", "cuda", "cuda:99", "jax", "jax:tpu", "tpu", "", "cpu:1"])),
    st.tuples(st.sampled_from(OPTION_WITH_VALUE), value),
    st.tuples(st.sampled_from(FLAGS)),
), max_size=7).map(lambda groups: [x for g in groups for x in g])

other_commands = st.one_of(
    st.tuples(st.just("list"), st.sampled_from(["--target", "--json"]), value).map(list),
    st.tuples(st.just("compare"), value, value).map(list),
    st.tuples(st.just("diagnose"), value, st.sampled_from(["--threshold", "--reference"]), value).map(list),
    st.tuples(st.just("accept"), st.just("--spec"), value, value).map(list),
    st.tuples(st.just("plot"), value).map(list),
    st.lists(value, max_size=3),
)


def _fake_run_planned(planned, writer, target, policy, progress=None, options=None, fleet=None):
    """One result per planned case (at most three), as a real run would record it."""
    for item in planned[:3]:
        writer.add(CaseResult(suite=item.suite.name, case_id=item.suite.case_id(item.params), params=dict(item.params),
                              target=str(target), impl=item.impls[0].name, status="passed",
                              metrics={"tflops": Metric(1.0, "TFLOP/s", True)},
                              validation=Validation("passed", 0.0, 1.0)))


def fake_export(doc, results, repo=None, flag=None):
    return Path(results)


# Patched where each is looked up: a module that imports a name while it is patched keeps
# the stand-in after the patch ends (publish imports export_run at its top, so it is
# imported above, before any patch).
@pytest.fixture(scope="module")
def sandbox():
    """A working directory for the runs, and the slow or external parts replaced."""
    old = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp, \
            mock.patch.object(runner, "run_planned", _fake_run_planned), \
            mock.patch.object(session, "run_planned", _fake_run_planned), \
            mock.patch.object(runner, "system_fingerprint", lambda: {"hostname": "fuzz"}), \
            mock.patch.object(mpi, "self_launch", lambda ranks, argv, stdout=None: (0, None)), \
            mock.patch("aibench.asv_export.export_run", fake_export), \
            mock.patch.object(publish, "export_run", fake_export):
        os.chdir(tmp)
        counter = {"examples": 0, "codes": {}}
        try:
            yield counter
        finally:
            os.chdir(old)
            print(f"\nCLI fuzz: {counter['examples']} examples, exit codes {counter['codes']}")


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(argv=st.one_of(run_args.map(lambda a: ["run", *a]), other_commands))
def test_no_traceback_and_only_documented_exit_codes(sandbox, argv, capsys):
    try:
        code = main(argv)
    except SystemExit as e:  # --help / --version from argparse
        code = e.code or 0
    capsys.readouterr()
    sandbox["examples"] += 1
    sandbox["codes"][code] = sandbox["codes"].get(code, 0) + 1
    assert code in ALLOWED_EXIT_CODES, argv


# ---- documents from others: every reading command over malformed documents ------------------
# Run documents (compare, compare --rerun, diagnose, plot, publish, accept, accept
# --make-spec), acceptance reports (accept --verify) and specs with an include (accept
# --spec), each changed by hypothesis: a field the code reads given a value of the wrong
# type, a huge or non-finite number, deep nesting, a field removed, or the bytes truncated
# or made non-UTF-8. Exit 0 or 1 for what is still valid enough, 2 (one line) for the rest,
# never a traceback. AIBENCH_DOC_FUZZ_EXAMPLES sets the number of examples (default 150).

DOC_EXAMPLES = int(os.environ.get("AIBENCH_DOC_FUZZ_EXAMPLES", "150"))
DEEP = "[" * 3000 + "]" * 3000
hostile_json = st.one_of(
    st.none(), st.booleans(), st.integers(-(10 ** 30), 10 ** 30), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 0.0, -0.0, 5e-324, 1e-300, 1e-100, 1e100, 1e300, 1.7e308, 2 ** 63]),
    st.text(max_size=20), st.sampled_from(["", "../../etc/passwd", "inputs/../x", "x" * 300, "1e999", "NaN"]),
    st.just([]), st.just({}), st.just([[[[1]]]]), st.just({"value": "x", "unit": 5}),
)


def _paths(obj, prefix=()):
    """Every path into a JSON value (the first two items of each list)."""
    yield prefix
    items = obj.items() if isinstance(obj, dict) else enumerate(obj[:2]) if isinstance(obj, list) else ()
    for key, value in items:
        yield from _paths(value, (*prefix, key))


def _set(doc, path, value):
    if not path:
        return value
    target = doc
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


_DELETE = object()


def _base_run() -> dict:
    from aibench.results import RunDocument, Samples

    samples = Samples([1e-3, 1.1e-3, 0.9e-3, 1e-3, 1.05e-3])
    gemm = CaseResult(suite="gemm", case_id="64-fp32", params={"m": 64, "n": 64, "k": 64, "dtype": "fp32"},
                      target="cpu", impl="aibench", status="passed", stats=samples,
                      metrics={"tflops": Metric(0.5, "TFLOP/s", True), "time_us": Metric(1000.0, "us", False)},
                      validation=Validation("passed", 0.0, 1e-3), peak={"value": 1.0, "unit": "TFLOP/s"},
                      impl_detail={"threads": 2, "threads_rule": "OMP_NUM_THREADS"}, telemetry={"throttled": False})
    storage = CaseResult(suite="storage", case_id="randread-4K", target="cpu", impl="fio", status="passed",
                         params={"pattern": "rand", "bs": 4096, "qd": 1, "threads": 1, "direct": 1},
                         metrics={"gbps": Metric(1.0, "GB/s", True), "lat_p99_us": Metric(80.0, "us", False)},
                         impl_detail={"source": {"kind": "file", "filesystem": "ext4"}}, stats=samples)
    allreduce = CaseResult(suite="interconnect", case_id="allreduce-1M", target="cpu", impl="mpi", status="passed",
                           params={"pattern": "allreduce", "size": 1048576, "dtype": "fp32", "inplace": False},
                           metrics={"busbw_gbps": Metric(5.0, "GB/s", True)}, stats=samples,
                           impl_detail={"topology": {"hosts": ["a", "b"]}})
    system = {"hostname": "fuzz", "cpu": {"model": "EPYC", "arch": "x86_64", "cores": 2, "best_isa": "avx512"},
              "gpus": {"devices": [{"name": "H200"}], "nvidia_driver": "550"}, "mpi": {"library": "MPICH", "nodes": 2},
              "memory": {"total_bytes": 1 << 34}, "os": {"system": "Linux", "release": "6.1"},
              "python": {"version": "3.11"}, "blas": [{"internal_api": "openblas", "version": "0.3"}],
              "nics": [{"name": "eth0", "kind": "Ethernet", "speed_gbps": 100}]}
    doc = RunDocument(command=["aibench", "run"], machine="fuzz-node", tier="quick", targets=["cpu"], system=system,
                      aibench={"version": "0", "commit": "0" * 40}, cases=[gemm, storage, allreduce])
    return json.loads(json.dumps(doc.to_dict()))


def _base_fleet() -> dict:
    doc = _base_run()
    doc["fleet"] = {"nodes": [{"node": n, "host": n, "rank": i, "local_rank": 0, "target": "cpu",
                               "system": doc["system"]} for i, n in enumerate(("n1", "n2"))], "concurrency": "parallel"}
    doc["cases"] = [dict(c, node=n) for n in ("n1", "n2") for c in doc["cases"]]
    return doc


SPEC_BASE = {  # the spec's keys, as TOML literals
    "top": {"spec_version": "1", "name": '"fuzz"', "tier": '"quick"', "target": '"cpu"', "include": '["part"]'},
    "hardware": {"cpu_model": '"EPYC"', "min_nodes": "1"},
    "check": {"id": '"g"', "suite": '"gemm"', "metric": '"tflops"', "min": "0.1", "unit": '"TFLOP/s"',
              "source": '"s"', "params": '{ dtype = "fp32", m = ">=64" }', "select": '"best"'},
}
PART = 'spec_version = 1\nname = "part"\n[[check]]\nid = "p"\nsuite = "gemm"\nmetric = "tflops"\nfraction_of_peak = 0.1\nsource = "s"\n'
hostile_toml = st.sampled_from(['"x"', "5", "-1", "0", "inf", "nan", "1e999", "[]", "{}", "true", '""',
                                "[" * 2000 + "]" * 2000, '["../../etc/passwd"]', '["/etc/passwd"]', '["part", "part"]',
                                '"H200("', '"' + "x" * 500 + '"', "[1, [2]]", '{ m = [{}] }', "1979-05-27"])


def _render_spec(parts: dict) -> str:
    lines = [f"{k} = {v}" for k, v in parts["top"].items()]
    lines += ["[hardware]", *[f"{k} = {v}" for k, v in parts["hardware"].items()]]
    lines += ["[[check]]", *[f"{k} = {v}" for k, v in parts["check"].items()]]
    return "\n".join(lines) + "\n"


@st.composite
def json_mutation(draw, base):
    doc = json.loads(json.dumps(base))
    paths = list(_paths(doc))
    # Mostly the fields of cases, the fingerprint and the fleet that commands read.
    read = [p for p in paths if len(p) >= 3 and p[0] in ("cases", "system", "fleet", "nodes", "inputs")]
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(read) if read and draw(st.booleans()) else st.sampled_from(paths))
        value = draw(st.one_of(hostile_json, st.just(_DELETE) if path else st.nothing()))
        try:
            doc = _set(doc, path, value)
        except (KeyError, IndexError, TypeError):  # an earlier change removed or replaced the path
            pass
    text = json.dumps(doc).encode()  # NaN and Infinity are written as such: JSON readers must refuse them
    how = draw(st.sampled_from(["as is", "as is", "as is", "truncated", "latin-1", "deep"]))
    if how == "truncated":
        text = text[:draw(st.integers(0, len(text)))]
    elif how == "latin-1":
        text = text.replace(b'"', b'"\xe9', 1)
    elif how == "deep":
        text = text[:-1] + b', "deep": ' + DEEP.encode() + b"}"
    return text


@pytest.fixture(scope="module")
def doc_sandbox(tmp_path_factory):
    """The valid documents the fuzz changes (a run, a fleet run, a report, a spec), and
    publish's asv page build replaced (it reads the results tree aibench wrote, not the
    documents)."""
    from aibench import publish

    root = tmp_path_factory.mktemp("docfuzz")
    good = root / "good.json"
    good.write_text(json.dumps(_base_run()))
    report = root / "report"
    with mock.patch("sys.stdout"), mock.patch("sys.stderr"):
        code = main(["accept", "--spec", "generic-cpu", str(good), "--report", str(report)])
    assert code in (0, 1) and (report / "report.json").is_file()
    counter = {"examples": 0, "codes": {}}
    with mock.patch.object(publish, "_build_pages", lambda docs, args, staged: []):
        yield {"root": root, "good": good, "report": report, "counter": counter,
               "run": _base_run(), "fleet": _base_fleet(), "report_json": json.loads((report / "report.json").read_text())}
    print(f"\ndocument fuzz: {counter['examples']} examples, exit codes {counter['codes']}")


def _reading_argv(kind: str, command: str, bad: Path, good: Path, out: Path) -> list[str]:
    return {
        "compare": ["compare", str(good), str(bad), "--json"],
        "compare --rerun": ["compare", str(good), str(good), "--rerun", str(bad), "--json"],
        "compare --fail-below": ["compare", str(bad), str(good), "--fail-below", "0.9", "--markdown"],
        "diagnose": ["diagnose", str(bad), "--baseline", str(good)],
        "diagnose --baseline": ["diagnose", str(good), "--baseline", str(bad), "--json"],
        "plot": ["plot", str(bad), "--out", str(out / "plots")],
        "publish": ["publish", str(bad), "--results", str(out / "asv"), "--html", str(out / "html")],
        "accept": ["accept", "--spec", "generic-cpu", str(bad)],
        "accept --make-spec": ["accept", "--make-spec", str(bad), "-o", str(out / "made.toml")],
    }[command]


RUN_READERS = ["compare", "compare --rerun", "compare --fail-below", "diagnose", "diagnose --baseline", "plot",
               "publish", "accept", "accept --make-spec"]


@settings(max_examples=DOC_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_reading_commands_survive_malformed_documents(doc_sandbox, data):
    s = doc_sandbox
    kind = data.draw(st.sampled_from(["run", "run", "run", "fleet", "report", "spec"]))
    out = Path(tempfile.mkdtemp(dir=s["root"]))
    if kind in ("run", "fleet"):
        bad = out / "bad.json"
        bad.write_bytes(data.draw(json_mutation(s[kind])))
        argv = _reading_argv(kind, data.draw(st.sampled_from(RUN_READERS)), bad, s["good"], out)
    elif kind == "report":
        shutil.copytree(s["report"], out / "r")
        (out / "r" / "report.json").write_bytes(data.draw(json_mutation(s["report_json"])))
        argv = ["accept", "--verify", str(out / "r")]
    else:
        parts = json.loads(json.dumps(SPEC_BASE))
        for _ in range(data.draw(st.integers(1, 3))):
            table = data.draw(st.sampled_from(sorted(parts)))
            key = data.draw(st.sampled_from(sorted(parts[table]) + ["unknown_key"]))
            parts[table][key] = data.draw(hostile_toml)
        (out / "part.toml").write_text(PART)
        (out / "spec.toml").write_text(_render_spec(parts))
        argv = ["accept", "--spec", str(out / "spec.toml"), str(s["good"])]
    err = io.StringIO()
    with redirect_stdout(io.StringIO()), redirect_stderr(err):
        code = main(argv)
    shutil.rmtree(out)
    s["counter"]["examples"] += 1
    s["counter"]["codes"][code] = s["counter"]["codes"].get(code, 0) + 1
    assert code in (0, 1, 2), argv
    if code == 2:
        assert err.getvalue().startswith("aibench: error:"), err.getvalue()
