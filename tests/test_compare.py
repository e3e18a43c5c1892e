"""`aibench compare`: shared cases, oriented ratios, noise-aware verdicts, the gate."""

import json

from aibench.cli import main
from aibench.results import CaseResult, Metric, RunDocument, Validation, write_atomic
from result_helpers import interval_stats


def _case(case_id, tflops, spread=0.01, impl="aibench"):
    t = 1.0 / tflops
    return CaseResult(suite="gemm", case_id=case_id, params={}, target="cpu", impl=impl, status="passed",
                      metrics={"tflops": Metric(tflops, "TFLOP/s", True), "time_us": Metric(t * 1e6, "us", False)},
                      stats=interval_stats(t, t * (1 - spread), t * (1 + spread)),
                      validation=Validation("passed", 0.0, 1.0))


def _write(tmp_path, name, cases):
    doc = RunDocument(command=["aibench"], machine=name, tier="quick", targets=["cpu"], system={},
                      aibench={"version": "0", "commit": None}, cases=cases)
    path = tmp_path / f"{name}.json"
    write_atomic(path, doc.to_dict())
    return str(path)


def test_ratios_verdicts_geomean_and_unshared_cases(tmp_path, capsys):
    a = _write(tmp_path, "node-a", [_case("x", 1.0), _case("y", 1.0), _case("z", 1.0), _case("only-a", 1.0)])
    b = _write(tmp_path, "node-b", [_case("x", 2.0), _case("y", 1.005), _case("z", 0.5), _case("only-b", 1.0)])
    assert main(["compare", a, b, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = {r["case_id"]: r for r in out["rows"]}
    assert rows["x"]["ratios"] == [2.0] and rows["x"]["verdicts"] == ["better"]
    assert rows["y"]["verdicts"] == ["same"]  # 0.5% apart, inside the noise
    assert rows["z"]["ratios"] == [0.5] and rows["z"]["verdicts"] == ["worse"]
    assert abs(out["geomean"]["gemm"][0] - (2.0 * 1.005 * 0.5) ** (1 / 3)) < 1e-12
    assert {(o["machine"], o["case"][1]) for o in out["only_in_some"]} == {("node-a", "only-a"), ("node-b", "only-b")}


def test_fail_below_is_an_acceptance_gate(tmp_path):
    a = _write(tmp_path, "ref", [_case("x", 1.0)])
    b = _write(tmp_path, "new", [_case("x", 0.85)])
    assert main(["compare", a, b, "--fail-below", "0.9", "--markdown"]) == 1
    assert main(["compare", a, b, "--fail-below", "0.8", "--markdown"]) == 0


def test_usage_errors(tmp_path):
    a = _write(tmp_path, "a", [_case("x", 1.0)])
    assert main(["compare", a]) == 2
    assert main(["compare", a, str(tmp_path / "missing.json")]) == 2
    assert main(["compare", "--reference", "no-such-machine", a]) == 2


def test_compare_against_a_committed_reference(tmp_path, capsys):
    a = _write(tmp_path, "a", [_case("x", 1.0)])
    assert main(["compare", "--reference", "nvidia-h200", a, "--markdown"]) == 0
    assert "nvidia-h200" in capsys.readouterr().out


def test_verdicts_follow_the_confidence_intervals_not_a_fixed_threshold(tmp_path, capsys):
    """Told apart from the plain 3% rule: 2% apart with tight intervals is a difference,
    8% apart with wide ones is not; without intervals the 3% rule is the fallback."""
    a = _write(tmp_path, "a", [_case("tight", 1.0, spread=0.002), _case("wide", 1.0, spread=0.2),
                               _case("none", 1.0)])
    b = _write(tmp_path, "b", [_case("tight", 0.98, spread=0.002), _case("wide", 0.92, spread=0.2),
                               _case("none", 0.98)])
    doc = json.loads(open(b).read())
    doc["cases"][2]["stats"] = None  # no statistics: nothing to judge the noise by
    write_atomic(tmp_path / "b.json", doc)
    assert main(["compare", a, b, "--json"]) == 0
    rows = {r["case_id"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert rows["tight"]["verdicts"] == ["worse"]  # the plain rule would say "same"
    assert rows["wide"]["verdicts"] == ["same"]  # the plain rule would say "worse"
    assert rows["none"]["verdicts"] == ["same"]
