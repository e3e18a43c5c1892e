"""Verdicts that fail closed (issue #26 item 2): every input of docs/accept.md's and
docs/comparing-nodes.md's "fails closed" tables, one test per row; and the shipped
reference runs, found from any directory (item 6)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aibench.documents import find_reference, reference_dir
from aibench.results import CaseResult, Metric, RunDocument, Validation, write_atomic
from result_helpers import interval_stats

REPO = Path(__file__).resolve().parents[1]


def _case(case_id="x", value=1.0, spread=0.01, impl="aibench", status="passed", node=None, suite="gemm",
          params=None):
    t = 1.0 / value if value else 1.0
    return CaseResult(suite=suite, case_id=case_id, params=params or {"dtype": "fp32"}, target="cpu", impl=impl,
                      status=status,
                      metrics={"tflops": Metric(value, "TFLOP/s", True), "time_us": Metric(t * 1e6, "us", False)}
                      if status == "passed" else {},
                      stats=interval_stats(t, t * (1 - spread), t * (1 + spread)),
                      validation=Validation(status, 0.0, 1.0, None if status == "passed" else "no such library"),
                      node=node)


def _doc(cases, machine="node-a", system=None):
    return RunDocument(command=["aibench", "run"], machine=machine, tier="quick", targets=["cpu"],
                       system=system if system is not None else {"hostname": machine},
                       aibench={"version": "0", "commit": None}, cases=cases)


def _write(path: Path, doc: RunDocument) -> str:
    write_atomic(path, doc.to_dict())
    return str(path)


# ---- reference runs that travel (item 6) --------------------------------------------------


def test_the_reference_runs_are_package_data_found_by_name():
    root = reference_dir()
    assert root.parent == Path(__import__("aibench").__file__).parent  # inside the package, not the repo's results/
    assert {p.stem for p in root.glob("*.json")} >= {"cpu-2core-epyc-zen4-quick", "cpu-2core-epyc-zen4-standard",
                                                     "nvidia-h200-cuda-quick"}
    assert find_reference("nvidia-h200") == root / "nvidia-h200-cuda-quick.json"
    assert not (REPO / "results" / "reference").exists()  # one source of truth


def test_compare_and_accept_find_a_reference_from_outside_the_repository(tmp_path):
    """From a directory with no results/ of its own, as an installed user runs it."""
    run = _write(tmp_path / "run.json", _doc([_case("x", 1.0)]))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    compare = subprocess.run([sys.executable, "-m", "aibench.cli", "compare", "--reference",
                              "cpu-2core-epyc-zen4-quick", run, "--json"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert compare.returncode == 0, compare.stderr
    assert json.loads(compare.stdout)["runs"][0]["path"].endswith("cpu-2core-epyc-zen4-quick.json")
    h200 = find_reference("nvidia-h200-cuda-quick")
    accept = subprocess.run([sys.executable, "-m", "aibench.cli", "accept", "--spec", "nvidia-h200-sxm-reference",
                             str(h200)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert accept.returncode == 0, accept.stdout + accept.stderr
    (tmp_path / "spec.toml").write_text(
        'spec_version = 1\nname = "t"\ntarget = "cuda"\n[[check]]\nid = "c"\nsuite = "gemm"\n'
        'metric = "tflops"\nratio_to_reference = 0.9\nreference = "nvidia-h200-cuda-quick"\nsource = "test"\n')
    by_name = subprocess.run([sys.executable, "-m", "aibench.cli", "accept", "--spec", "spec.toml", str(h200)],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert by_name.returncode == 0, by_name.stdout + by_name.stderr


def test_a_reference_name_is_never_a_path(capsys):
    from aibench.cli import main

    assert main(["compare", "--reference", "../../etc/passwd", "x.json"]) == 2
    assert "not a path" in capsys.readouterr().err


# ---- aibench accept: docs/accept.md, "What fails closed" ---------------------------------


def _spec(tmp_path: Path, checks: str, name="t", include=None) -> str:
    head = f'spec_version = 1\nname = "{name}"\ntarget = "cpu"\n'
    if include:
        head += f"include = {json.dumps(include)}\n"
    path = tmp_path / f"{name}.toml"
    path.write_text(head + checks)
    return str(path)


def _check(threshold='min = 0.5\nunit = "TFLOP/s"', select="best", cid="c", params='{ dtype = "fp32" }'):
    return (f'\n[[check]]\nid = "{cid}"\nsuite = "gemm"\nparams = {params}\nmetric = "tflops"\n{threshold}\n'
            f'select = "{select}"\nsource = "test"\n')


def _throttled():
    c = _case("x", 9.0)
    c.telemetry = {"throttled": True}
    return c


def _without_tflops(value=9.0):
    c = _case("y", value)
    del c.metrics["tflops"]
    return c


def _figure(value):
    c = _case("x", 1.0)
    c.metrics["tflops"] = Metric(value, "TFLOP/s", True)
    return c


def _in_unit(unit):
    c = _case("x", 9.0)
    c.metrics["tflops"] = Metric(9.0, unit, True)
    return c


ACCEPT_ROWS = {
    # row id: (check, cases of the node, verdict, words of the reason)
    "no-matching-case": (_check(), [_case("x", 9.0, params={"dtype": "bf16"})], "missing", "no case in the run"),
    "a-matching-case-failed": (_check(), [_case("x", 9.0), _case("y", 0, status="failed")], "fail", "failed"),
    "best-every-case-skipped": (_check(), [_case("x", 0, status="skipped")], "fail", "skipped: no such library"),
    "each-one-case-skipped": (_check(select="each"), [_case("x", 9.0), _case("y", 0, status="skipped")], "fail",
                              "skipped: no such library"),
    "no-case-has-the-metric": (_check(), [_without_tflops()], "missing", "no matching case has the metric"),
    "each-one-case-lacks-the-metric": (_check(select="each"), [_case("x", 9.0), _without_tflops()], "missing",
                                       "a matching case has no metric"),
    "throttled": (_check(), [_throttled()], "fail", "throttled"),
    "figure-inf": (_check(), [_figure(float("inf"))], "fail", "not a finite"),
    "figure-nan": (_check(), [_figure(float("nan"))], "fail", "not a finite"),
    "figure-negative": (_check(), [_figure(-1.0)], "fail", "not a finite"),
    "threshold-inside-the-interval": (_check('min = 1.0\nunit = "TFLOP/s"'), [_case("x", 1.0, spread=0.05)],
                                      "inconclusive", "inside the 95% interval"),
    "no-peak-for-fraction-of-peak": (_check("fraction_of_peak = 0.5"), [_case("x", 1.0)], "missing", "no known peak"),
    "fleet-median-of-one-node": (_check("ratio_to_fleet_median = 0.9"), [_case("x", 1.0)], "missing",
                                 "no fleet median"),
    # The spec's unit converts to the suite's at load (accept/lint.py): a run recording another is judged.
    "unit-mismatch": (_check('min = 0.5\nunit = "TFLOP/s"'), [_in_unit("GFLOP/s")], "fail", "unit mismatch"),
}


@pytest.mark.parametrize("row", sorted(ACCEPT_ROWS))
def test_accept_fails_closed(tmp_path, row, capsys):
    from aibench.accept.judge import judge_runs
    from aibench.accept.spec import load_spec
    from aibench.cli import main

    check, cases, verdict, reason = ACCEPT_ROWS[row]
    spec = _spec(tmp_path, check)
    [node] = judge_runs(load_spec(spec), [_doc(cases)])
    assert (node.verdicts[0].verdict, node.passed) == (verdict, False)
    assert reason in node.verdicts[0].reason
    assert main(["accept", "--spec", spec, _write(tmp_path / "run.json", _doc(cases))]) == 1
    assert "REJECTED" in capsys.readouterr().out


def test_accept_each_passes_only_when_every_matching_case_passes(tmp_path):
    """The control of the rows above: the same check passes when nothing is missing."""
    from aibench.accept.judge import judge_runs
    from aibench.accept.spec import load_spec

    [node] = judge_runs(load_spec(_spec(tmp_path, _check(select="each"))), [_doc([_case("x", 9.0), _case("y", 8.0)])])
    assert node.passed and node.verdicts[0].verdict == "pass"


def test_accept_reference_without_the_case_or_with_no_figure_for_it(tmp_path):
    from aibench.accept.judge import judge_runs
    from aibench.accept.spec import load_spec

    ref = _write(tmp_path / "ref.json", _doc([_case("other", 1.0), _figure(0.0)], machine="golden"))
    spec = load_spec(_spec(tmp_path, _check(f'ratio_to_reference = 0.9\nreference = "{ref}"')))
    [node] = judge_runs(spec, [_doc([_case("x", 1.0)])])
    assert node.verdicts[0].verdict == "missing" and "is no figure to scale" in node.verdicts[0].reason
    [node] = judge_runs(spec, [_doc([_case("z", 1.0)])])
    assert node.verdicts[0].verdict == "missing" and "has no passed figure for z" in node.verdicts[0].reason


def test_accept_fleet_node_lacking_a_case_is_rejected(tmp_path, capsys):
    from aibench.cli import main

    fleet = _doc([_case("x", 1.0, node="n0"), _case("x", 1.0, node="n1")], machine="rack")
    fleet.fleet = {"nodes": [{"node": n, "host": n, "rank": i, "system": {}} for i, n in enumerate(("n0", "n1", "n2"))],
                   "concurrency": "every node at once"}
    path = _write(tmp_path / "fleet.json", fleet)
    assert main(["accept", "--spec", _spec(tmp_path, _check("ratio_to_fleet_median = 0.9")), path, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["rejected_nodes"] == ["n2"]
    assert report["nodes"][2]["checks"][0]["verdict"] == "missing"


def test_accept_a_later_run_that_skipped_the_case_replaces_the_passed_one(tmp_path):
    """Reruns: the cases of later documents replace the same case of earlier ones, so a
    rerun that skipped a case fails the check (it does not fall back to the old pass)."""
    from aibench.accept.judge import judge_runs
    from aibench.accept.spec import load_spec

    spec = load_spec(_spec(tmp_path, _check()))
    [node] = judge_runs(spec, [_doc([_case("x", 9.0)]), _doc([_case("x", 0, status="skipped")])])
    assert node.verdicts[0].verdict == "fail" and "skipped" in node.verdicts[0].reason


def test_accept_an_included_check_is_judged_too(tmp_path, capsys):
    from aibench.cli import main

    _spec(tmp_path, _check(cid="included", params='{ dtype = "bf16" }'), name="part")
    spec = _spec(tmp_path, _check(), name="node", include=["part.toml"])
    assert main(["accept", "--spec", spec, _write(tmp_path / "run.json", _doc([_case("x", 9.0)])), "--json"]) == 1
    checks = {c["check"]: c["verdict"] for c in json.loads(capsys.readouterr().out)["nodes"][0]["checks"]}
    assert checks == {"c": "pass", "included": "missing"}


# ---- aibench compare --fail-below: docs/comparing-nodes.md, "What fails closed" -----------


def _with(case, **changes):
    for k, v in changes.items():
        setattr(case, k, v)
    return case


COMPARE_ROWS = {
    # row id: (baseline cases, candidate cases, words on stderr)
    "candidate-failed": ([_case("x")], [_case("x", status="failed")], "gemm x cpu aibench failed (passed on the baseline)"),
    "candidate-skipped": ([_case("x")], [_case("x", status="skipped")], "skipped (passed on the baseline)"),
    "candidate-lacks-the-case": ([_case("x"), _case("y")], [_case("x")], "gemm y cpu aibench missing"),
    "candidate-without-a-figure": ([_case("x")], [_with(_case("x"), metrics={})], "without a figure"),
    "candidate-throttled": ([_case("x")], [_with(_case("x"), telemetry={"throttled": True})], "ran throttled"),
    # JSON has no inf: a document stores it as null, no figure (results.write_atomic)
    "candidate-figure-inf": ([_case("x")], [_figure(math.inf)], "without a figure"),
    "baseline-figure-negative": ([_figure(-1.0)], [_case("x")], "figures -1.0 and 1.0"),
    "baseline-figure-0": ([_figure(0.0)], [_case("x")], "figures 0.0 and 1.0"),
    "baseline-lacks-the-case": ([_case("x")], [_case("x"), _case("new")], "gemm new cpu aibench not gated"),
    "baseline-throttled": ([_with(_case("x"), telemetry={"throttled": True})], [_case("x")], "not gated"),
    "no-shared-case": ([_case("x", status="skipped")], [_case("y", status="skipped")], "nothing passes the gate"),
    "ratio-wholly-under": ([_case("x", 1.0)], [_case("x", 0.5)], "under 0.9"),
}


@pytest.mark.parametrize("row", sorted(COMPARE_ROWS))
def test_compare_gate_fails_closed(tmp_path, row, capsys):
    from aibench.cli import main

    base, cand, said = COMPARE_ROWS[row]
    a = _write(tmp_path / "a.json", _doc(base, machine="a"))
    b = _write(tmp_path / "b.json", _doc(cand, machine="b"))
    assert main(["compare", a, b, "--fail-below", "0.9", "--markdown"]) == 1
    assert said in capsys.readouterr().err


def test_compare_gate_passes_a_candidate_that_lost_nothing(tmp_path, capsys):
    """The control of the rows above."""
    from aibench.cli import main

    a = _write(tmp_path / "a.json", _doc([_case("x"), _case("y")], machine="a"))
    b = _write(tmp_path / "b.json", _doc([_case("x"), _case("y", 1.02)], machine="b"))
    assert main(["compare", a, b, "--fail-below", "0.9", "--markdown"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("option", [["--fail-below", "nan"], ["--fail-below", "-1"], ["--fail-below", "0"],
                                    ["--fail-below", "inf"], ["--min-effect", "0"], ["--min-effect", "nan"],
                                    ["--min-effect", "1"]])
def test_compare_refuses_an_option_that_cannot_gate(tmp_path, option, capsys):
    from aibench.cli import main

    a = _write(tmp_path / "a.json", _doc([_case("x")], machine="a"))
    assert main(["compare", a, a, *option]) == 2
    err = capsys.readouterr().err
    assert option[0] in err and len(err.strip().splitlines()) == 1


def test_compare_refuses_a_rerun_of_another_machine(tmp_path, capsys):
    from aibench.cli import main

    base = _write(tmp_path / "base.json", _doc([_case("x")], machine="a", system={"hostname": "a"}))
    cand = _write(tmp_path / "cand.json", _doc([_case("x")], machine="b"))
    other = _write(tmp_path / "other.json", _doc([_case("x", 1.1)], machine="b"))
    renamed = _write(tmp_path / "renamed.json", _doc([_case("x", 1.1)], machine="a", system={"hostname": "zz"}))
    same = _write(tmp_path / "same.json", _doc([_case("x", 1.1)], machine="a", system={"hostname": "a"}))
    assert main(["compare", base, cand, "--rerun", other]) == 2
    assert "--rerun of another machine (b; the baseline is a)" in capsys.readouterr().err
    assert main(["compare", base, cand, "--rerun", renamed]) == 2  # same name, another host
    assert main(["compare", base, cand, "--rerun", same, "--json"]) == 0


# ---- aibench diagnose: docs/comparing-nodes.md, "What fails closed" -----------------------


def _fleet(cases, nodes=("n0", "n1", "n2")):
    doc = _doc(cases, machine="rack")
    doc.fleet = {"nodes": [{"node": n, "host": n, "rank": i, "local_rank": 0, "target": "cpu", "system": {}}
                           for i, n in enumerate(nodes)], "concurrency": "every node at once"}
    return doc


def _on(node, case):
    case.node = node
    return case


DIAGNOSE_ROWS = {
    # row id: (fleet cases, baseline cases or None, the node named, its reason)
    "skipped-a-case-the-others-ran": ([_on("n0", _case("x")), _on("n1", _case("x")),
                                       _on("n2", _case("x", status="skipped"))], None, "n2", "skipped"),
    "lacks-a-case-the-others-ran": ([_on("n0", _case("x")), _on("n1", _case("x")), _on("n2", _case("y")),
                                     _on("n0", _case("y")), _on("n1", _case("y"))], None, "n2", "missing"),
    "failed": ([_on("n0", _case("x")), _on("n1", _case("x")), _on("n2", _case("x", status="failed"))], None, "n2",
               "failed"),
    "has-no-case": ([_on("n0", _case("x")), _on("n1", _case("x"))], None, "n2", "missing"),
    "short-beyond-the-interval": ([_on("n0", _case("x", 1.0)), _on("n1", _case("x", 1.02)),
                                   _on("n2", _case("x", 0.6))], None, "n2", "below fleet median"),
    "baseline-every-case-skipped": ([_on("n0", _case("x", status="skipped")), _on("n0", _case("y", status="skipped"))],
                                    [_case("x"), _case("y")], "n0", "skipped"),
    "baseline-case-not-run": ([_on("n0", _case("x"))], [_case("x"), _case("y")], "n0", "missing"),
    "nothing-to-compare-with-the-baseline": ([_on("n0", _case("x"))], [_case("other")], "n0", "missing"),
    "passed-without-a-figure": ([_on("n0", _case("x")), _on("n1", _case("x")),
                                 _on("n2", _with(_case("x"), metrics={}))], None, "n2", "missing"),
}


@pytest.mark.parametrize("row", sorted(DIAGNOSE_ROWS))
def test_diagnose_fails_closed(tmp_path, row, capsys):
    from aibench.cli import main

    cases, baseline, node, reason = DIAGNOSE_ROWS[row]
    nodes = ("n0",) if baseline is not None else ("n0", "n1", "n2")
    run = _write(tmp_path / "fleet.json", _fleet(cases, nodes))
    extra = ["--baseline", _write(tmp_path / "base.json", _doc(baseline, machine="golden"))] if baseline else []
    assert main(["diagnose", run, *extra, "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["defective_nodes"] == [node] and out["verdict"] == "defective"
    assert reason in {f["reason"] for f in out["findings"] if f["node"] == node}


def test_diagnose_passes_a_healthy_fleet(tmp_path, capsys):
    """The control: every node ran every case, within the threshold."""
    from aibench.cli import main

    cases = [_on(n, _case(k, v)) for n, v in (("n0", 1.0), ("n1", 0.97), ("n2", 1.01)) for k in ("x", "y")]
    assert main(["diagnose", _write(tmp_path / "fleet.json", _fleet(cases)), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "healthy"


def test_a_fleet_too_noisy_to_judge_is_inconclusive_and_names_no_node(tmp_path, capsys):
    """Issue #26 item 5: a node 18% below the fleet median whose own interval is +-40% wide
    (a fleet sharing two cores): no node is named defective; the verdict says inconclusive,
    exit 1. The same figures with tight intervals name the slow node."""
    from aibench.cli import main

    def fleet(spread):
        return _fleet([_on("n0", _case("x", 1.0, spread)), _on("n1", _case("x", 1.0, spread)),
                       _on("n2", _case("x", 0.82, spread))])

    assert main(["diagnose", _write(tmp_path / "noisy.json", fleet(0.4)), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["defective_nodes"] == [] and out["verdict"] == "inconclusive"
    assert {f["reason"] for f in out["findings"]} == {"inconclusive"}
    assert main(["diagnose", _write(tmp_path / "noisy.json", fleet(0.4))]) == 1
    assert "no node named defective, but the verdict is inconclusive" in capsys.readouterr().out
    assert main(["diagnose", _write(tmp_path / "tight.json", fleet(0.005)), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["defective_nodes"] == ["n2"]


@pytest.mark.parametrize("threshold", ["nan", "0", "1", "-0.1"])
def test_diagnose_refuses_a_threshold_that_cannot_judge(tmp_path, threshold, capsys):
    from aibench.cli import main

    run = _write(tmp_path / "fleet.json", _fleet([_on(n, _case("x")) for n in ("n0", "n1", "n2")]))
    assert main(["diagnose", run, "--threshold", threshold]) == 2
    assert "--threshold" in capsys.readouterr().err


def test_a_figure_that_is_not_finite_gives_no_ratio_and_fails_the_gate():
    """In memory (a suite's figure before it is written): inf or NaN on either side, or a
    baseline of 0 or below, is no ratio, and the gate fails a ratio that is not a number."""
    from aibench.compare import judge
    from aibench.stats import gate

    for base, cand in ((1.0, math.inf), (1.0, math.nan), (math.nan, 1.0), (-1.0, 1.0), (0.0, 1.0), (math.inf, 1.0)):
        ratio, interval, verdict = judge(_figure(base), _figure(cand), 0.1)
        assert math.isnan(ratio) and verdict == "same", (base, cand)
        assert gate(interval, 0.9) == "fail"
    assert judge(_case("x", 1.0), _case("x", 2.0), 0.1)[0] == 2.0  # the control


def test_no_check_and_no_verdict_are_never_accepted(tmp_path, capsys):
    from aibench.accept.judge import NodeJudgement
    from aibench.cli import main

    assert not NodeJudgement(node="n", machine="n", hardware_problems=[]).passed  # no verdict is no evidence
    empty = _spec(tmp_path, "", name="empty")
    assert main(["accept", "--spec", empty, _write(tmp_path / "run.json", _doc([_case("x")]))]) == 2
    assert "has no check" in capsys.readouterr().err


# ---- aibench preflight --------------------------------------------------------------------


def test_preflight_fails_a_link_without_a_finite_figure():
    """A link the matrix has no figure for (None), or a NaN/0/inf one, fails the link check;
    a NaN would also have made the median NaN and hidden every slow link."""
    from aibench.preflight import failed_links

    labels = ["a:0", "b:1", "c:2"]
    good = [[None, 5.0, 5.0], [5.0, None, 5.0], [5.0, 5.0, None]]
    assert failed_links({"participants": labels, "bw_gbps": good, "slow_links": [], "wrong_links": []}) == []
    for figure in (None, math.nan, 0.0, math.inf):
        bw = [row[:] for row in good]
        bw[1][2] = figure
        lines = failed_links({"participants": labels, "bw_gbps": bw, "slow_links": [], "wrong_links": []})
        assert lines == [f"b:1 -> c:2: bandwidth not measured ({figure!r})"], figure
