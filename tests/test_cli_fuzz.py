"""Fuzzing the command line with hypothesis: any mix of suites, parameters and option
values (hostile ones included) ends in one of the documented exit codes, never in a
traceback. Cases are not measured here (the runner is replaced by one that records a
result per planned case): this is about parsing, planning, validation and writing.
AIBENCH_FUZZ_EXAMPLES sets the number of examples (default 300)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from unittest import mock

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from aibench import mpi, runner  # noqa: E402
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


@pytest.fixture(scope="module")
def sandbox():
    """A working directory for the runs, and the slow or external parts replaced."""
    old = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp, \
            mock.patch.object(runner, "run_planned", _fake_run_planned), \
            mock.patch.object(runner, "system_fingerprint", lambda: {"hostname": "fuzz"}), \
            mock.patch.object(mpi, "self_launch", lambda ranks, argv: (0, None)), \
            mock.patch("aibench.asv_export.export_run", lambda doc, results, repo=None: Path(results)):
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
