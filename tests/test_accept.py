"""`aibench accept`: spec files (validated on load, includes), verdicts that fail closed
(pass / fail / inconclusive / missing, throttled, hardware mismatch, fleets), the report
and its --verify, --make-spec, and running what a spec needs through the CLI."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from aibench.accept.judge import judge_runs
from aibench.accept.report import render_html
from aibench.accept.spec import SpecError, load_spec, load_specs, param_matches, shipped_specs
from aibench.cli import main
from aibench.fleet import node_documents
from aibench.results import CaseResult, Metric, RunDocument, Validation, write_atomic
from result_helpers import interval_stats

REPO = Path(__file__).resolve().parents[1]
H200_REFERENCE = REPO / "src" / "aibench" / "reference" / "nvidia-h200-cuda-quick.json"
CPU_SYSTEM = {"hostname": "node-a", "cpu": {"model": "AMD EPYC", "arch": "x86_64", "cores": 2},
              "gpus": {"available": False, "reason": "none"}, "nics": []}
H200_SYSTEM = {**CPU_SYSTEM, "gpus": {"available": True, "count": 1, "devices": [{"name": "NVIDIA H200"}]}}


def _case(case_id="2048-fp32", tflops=1.0, spread=0.01, impl="blas", status="passed", dtype="fp32", m=2048,
          percent=None, throttled=False, target="cpu"):
    t = 1.0 / tflops
    return CaseResult(suite="gemm", case_id=case_id, params={"m": m, "n": m, "k": m, "dtype": dtype}, target=target,
                      impl=impl, status=status,
                      metrics={"tflops": Metric(tflops, "TFLOP/s", True), "time_us": Metric(t * 1e6, "us", False)}
                      if status == "passed" else {},
                      stats=interval_stats(t, t * (1 - spread), t * (1 + spread)),
                      validation=Validation(status, 0.0, 1.0, None if status == "passed" else "why not"),
                      percent_of_peak=percent, telemetry={"throttled": throttled} if throttled else None,
                      error="wrong result: 3 wrong elements" if status == "failed" else None)


def _doc(cases, machine="node-a", system=CPU_SYSTEM):
    return RunDocument(command=["aibench", "run"], machine=machine, tier="quick", targets=["cpu"],
                       system=copy.deepcopy(system), aibench={"version": "0", "commit": None}, cases=cases)


def _write_doc(path: Path, doc: RunDocument) -> Path:
    write_atomic(path, doc.to_dict())
    return path


def _spec(tmp_path: Path, body: str, name="t", header=None) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text((header if header is not None else f'spec_version = 1\nname = "{name}"\ntarget = "cpu"\n')
                    + body)
    return path


def _check(threshold: str, params='{ dtype = "fp32" }', extra="") -> str:
    return (f'\n[[check]]\nid = "c"\nsuite = "gemm"\nparams = {params}\nmetric = "tflops"\n{threshold}\n'
            f'source = "test"\n{extra}')


def _verdict(tmp_path, threshold, cases, params='{ dtype = "fp32" }', extra="", system=CPU_SYSTEM):
    spec = load_spec(str(_spec(tmp_path, _check(threshold, params, extra))))
    [node] = judge_runs(spec, [_doc(cases, system=system)])
    return node.verdicts[0]


# ---- spec files -------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(shipped_specs()))
def test_every_shipped_spec_loads_and_matches_the_json_schema(name):
    jsonschema = pytest.importorskip("jsonschema")
    from aibench.documents import tomllib  # tomli before Python 3.11

    spec = load_spec(name)
    assert spec.checks and all(c.source.strip() for c in spec.checks)
    schema = json.loads((REPO / "src" / "aibench" / "schema" / "spec.schema.json").read_text())
    for path in spec.files:
        jsonschema.validate(tomllib.loads(path.read_text()), schema)


def test_a_bad_spec_lists_every_problem_one_line_each(tmp_path):
    path = _spec(tmp_path, '[hardware]\nmin_gpus = "eight"\ngpu_name = "H200("\n'
                 '[[check]]\nid = "x"\nsuite = "gemm"\nmetric = "tflops"\nmin = 5\n'
                 '[[check]]\nid = "y"\nsuite = "gemm"\nmetric = "tflops"\nsource = "s"\nmin = 5\nunit = "TFLOP/s"\n'
                 'fraction_of_peak = 0.5\ncolour = "red"\n',
                 header='spec_version = 2\nname = "bad"\ntier = "fast"\n')
    with pytest.raises(SpecError) as e:
        load_spec(str(path))
    problems = e.value.problems
    assert all("\n" not in p for p in problems)
    for needle in ("spec_version must be 1", "tier must be one of", "hardware.min_gpus has the wrong type",
                   "hardware.gpu_name is not a regular expression", "check 1 (x): 'source' is required",
                   "check 1 (x): min needs its unit", "check 2 (y): unknown key 'colour'",
                   "check 2 (y): exactly one threshold is needed"):
        assert any(needle in p for p in problems), (needle, problems)


def test_a_bad_spec_on_the_command_line_is_exit_2_with_its_problems(tmp_path, capsys):
    path = _spec(tmp_path, _check("fraction_of_peak = 60"))
    assert main(["accept", "--spec", str(path), "x.json"]) == 2
    err = capsys.readouterr().err
    assert "fraction_of_peak is a fraction in (0, 1] (0.6 for 60%), got 60" in err and "Traceback" not in err
    assert main(["accept", "--spec", "no-such-spec"]) == 2
    assert "not a shipped spec" in capsys.readouterr().err


def test_includes_compose_and_cycles_are_refused(tmp_path):
    _spec(tmp_path, _check("min = 1\nunit = \"TFLOP/s\"").replace('id = "c"', 'id = "nic"'), name="part")
    node = _spec(tmp_path, 'include = ["part", "generic-cpu"]\n' + _check("min = 1\nunit = \"TFLOP/s\""),
                 name="node")
    spec = load_spec(str(node))
    # The node's checks, then each include's in order: generic-cpu's own list, whatever it holds.
    assert [c.id for c in spec.checks] == ["c", "nic", *(c.id for c in load_spec("generic-cpu").checks)]
    assert [p.name for p in spec.files] == ["node.toml", "part.toml", "generic-cpu.toml"]
    _spec(tmp_path, 'include = ["b"]\n' + _check("min = 1\nunit = \"x\""), name="a")
    _spec(tmp_path, 'include = ["a"]\n' + _check("min = 1\nunit = \"x\""), name="b")
    with pytest.raises(SpecError, match="include cycle"):
        load_spec(str(tmp_path / "a.toml"))
    with pytest.raises(SpecError, match="appear in more than one"):
        load_specs([str(node), str(tmp_path / "part.toml")])


@pytest.mark.parametrize("want, value, expected", [
    (">=4096", 8192, True), (">=4096", 2048, False), ("<1e6", 10, True), ("bf16", "BF16", True),
    ("fp*", "fp32", True), ("fp*", "bf16", False), ([128, 256], 128, True), ([128, 256], 64, False),
    (False, False, True), (False, True, False), ("false", False, True), (4096, 4096, True), (">=1", "x", False),
])
def test_param_filters(want, value, expected):
    assert param_matches(want, value) is expected


# ---- verdicts ---------------------------------------------------------------------------


def test_pass_fail_and_inconclusive_follow_the_confidence_interval(tmp_path):
    unit = '\nunit = "TFLOP/s"'
    assert _verdict(tmp_path, "min = 0.9" + unit, [_case(tflops=1.0)]).verdict == "pass"
    v = _verdict(tmp_path, "min = 1.5" + unit, [_case(tflops=1.0)])
    assert v.verdict == "fail" and v.reason == "1 is below 1.5" and abs(v.margin + 1 / 3) < 1e-12
    # 1.005 needed, 1.0 +- 1% measured: the threshold is inside the interval.
    v = _verdict(tmp_path, "min = 1.005" + unit, [_case(tflops=1.0)])
    assert v.verdict == "inconclusive" and "inside the 95% interval" in v.reason
    # The same figure with a tight interval is a plain failure.
    assert _verdict(tmp_path, "min = 1.005" + unit, [_case(tflops=1.0, spread=0.001)]).verdict == "fail"
    # A lower-is-better metric with max: 1e6 us measured (+-1%).
    time_check = _check('max = 1.1e6\nunit = "us"').replace('"tflops"', '"time_us"')
    [node] = judge_runs(load_spec(str(_spec(tmp_path, time_check))), [_doc([_case(tflops=1.0)])])
    assert node.verdicts[0].verdict == "pass" and node.verdicts[0].margin == pytest.approx(0.1)
    [node] = judge_runs(load_spec(str(_spec(tmp_path, time_check.replace("1.1e6", "0.9e6")))),
                        [_doc([_case(tflops=1.0)])])
    assert node.verdicts[0].verdict == "fail" and node.verdicts[0].reason == "1e+06 is above 9e+05"


def test_select_best_and_each(tmp_path):
    cases = [_case("a", 1.0, impl="aibench"), _case("a", 2.0, impl="blas")]
    unit = '\nunit = "TFLOP/s"'
    v = _verdict(tmp_path, "min = 1.5" + unit, cases)
    assert v.verdict == "pass" and v.case == "a [blas]" and v.cases == 2
    v = _verdict(tmp_path, "min = 1.5" + unit, cases, extra='select = "each"')
    assert v.verdict == "fail" and v.case == "a [aibench]"


def test_fails_closed_on_failed_skipped_throttled_missing_and_unit(tmp_path):
    unit = '\nunit = "TFLOP/s"'
    v = _verdict(tmp_path, "min = 0.1" + unit, [_case(tflops=9.0), _case(status="failed", impl="aibench")])
    assert v.verdict == "fail" and "failed: wrong result" in v.reason  # a wrong result anywhere fails
    v = _verdict(tmp_path, "min = 0.1" + unit, [_case(status="skipped")])
    assert v.verdict == "fail" and v.reason == "skipped: why not"
    v = _verdict(tmp_path, "min = 0.1" + unit, [_case(throttled=True)])
    assert v.verdict == "fail" and "throttled" in v.reason
    v = _verdict(tmp_path, "min = 0.1" + unit, [_case()], params='{ dtype = "bf16" }')
    assert v.verdict == "missing" and v.reason == "no case in the run matches this check"
    spec = load_spec(str(_spec(tmp_path, _check("min = 0.1" + unit).replace('"tflops"', '"gflops_per_watt"'))))
    v = judge_runs(spec, [_doc([_case()])])[0].verdicts[0]
    assert v.verdict == "missing" and "no matching case has the metric 'gflops_per_watt'" in v.reason
    legacy = _case()
    legacy.metrics["tflops"] = Metric(1.0, "GFLOP/s", True)  # a run that records another unit
    v = _verdict(tmp_path, "min = 0.1" + unit, [legacy])
    assert v.verdict == "fail" and "unit mismatch" in v.reason
    v = _verdict(tmp_path, "fraction_of_peak = 0.5", [_case()])
    assert v.verdict == "missing" and "no known peak" in v.reason
    v = _verdict(tmp_path, "fraction_of_peak = 0.5", [_case(tflops=1.0, percent=62.0)])
    assert v.verdict == "pass" and v.value == pytest.approx(0.62) and v.interval[0] == pytest.approx(0.62 / 1.01)


def test_hardware_that_is_not_the_specs_fails_every_check(tmp_path):
    spec = load_spec("nvidia-h200-sxm")
    [node] = judge_runs(spec, [_doc([_case()])])
    assert not node.passed and node.hardware_problems == [
        "nvidia-h200-sxm: no GPU in the run (the spec is for GPUs matching '(?<!G)H200(?! NVL)')",
        "nvidia-h200-sxm: 0 GPU(s), the spec needs 1"]
    # An H200 NVL is not an H200 SXM, and a GH200 is neither.
    for name in ("NVIDIA H200 NVL", "NVIDIA GH200 480GB"):
        system = {**CPU_SYSTEM, "gpus": {"devices": [{"name": name}]}}
        assert judge_runs(spec, [_doc([], system=system)])[0].hardware_problems
    assert not judge_runs(spec, [_doc([], system=H200_SYSTEM)])[0].hardware_problems
    # A fully passing check on the wrong hardware still fails.
    cpu_spec = _spec(tmp_path, '[hardware]\ncpu_model = "Xeon Platinum 9999"\n' + _check('min = 0.1\nunit = "TFLOP/s"'))
    [node] = judge_runs(load_spec(str(cpu_spec)), [_doc([_case()])])
    assert node.verdicts[0].verdict == "fail" and "hardware does not match" in node.verdicts[0].reason
    nic = load_spec("nic-400g")
    problems = judge_runs(nic, [_doc([], system={**CPU_SYSTEM, "nics": [{"name": "eth0", "speed_gbps": 100.0}]})])
    assert problems[0].hardware_problems == ["nic-400g: the run spans 1 node(s), the spec needs 2",
                                             "nic-400g: 0 NIC(s) at 400 Gbit/s or more, the spec needs 1"]
    old = {k: v for k, v in CPU_SYSTEM.items() if k != "nics"}
    assert "does not record the node's NICs" in judge_runs(nic, [_doc([], system=old)])[0].hardware_problems[1]


def _fleet() -> RunDocument:
    """Three nodes, n2 30% below the median."""
    fleet = _doc([], machine="rack")
    fleet.fleet = {"nodes": [{"node": n, "host": n, "rank": i, "system": CPU_SYSTEM}
                             for i, n in enumerate(("n0", "n1", "n2"))], "concurrency": "every node at once"}
    for node, value in (("n0", 1.0), ("n1", 1.02), ("n2", 0.7)):
        c = _case("a", value)
        c.node = node
        fleet.cases.append(c)
    return fleet


def test_a_fleet_lists_its_rejected_nodes_with_their_failing_checks(tmp_path, capsys):
    path = _write_doc(tmp_path / "fleet.json", _fleet())
    spec = _spec(tmp_path, _check("ratio_to_fleet_median = 0.9"))
    assert main(["accept", "--spec", str(spec), str(path)]) == 1
    out = capsys.readouterr().out
    assert "fleet: 2 of 3 node(s) accepted, rejected:" in out and "  n2: c (fail)" in out
    assert main(["accept", "--spec", str(spec), str(path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["rejected_nodes"] == ["n2"] and not report["accepted"]


def test_a_node_judged_from_several_documents_has_the_hardware_of_all_of_them(tmp_path):
    """A node spec judged on a GPU run and an MPI run across nodes: the GPUs of one, the
    nodes and NICs of the other, whichever comes first."""
    spec = _spec(tmp_path, '[hardware]\ngpu_name = "H200"\nmin_gpus = 1\nmin_nodes = 2\nmin_nics = 1\n'
                 'nic_min_gbps = 400\n' + _check('min = 30\nunit = "TFLOP/s"'))  # lint: >= 5% of the peak
    gpu_run = _doc([_case(tflops=40.0)], system=H200_SYSTEM)
    mpi_run = _doc([], system={**CPU_SYSTEM, "mpi": {"nodes": 2}, "nics": [{"name": "mlx5_0/1", "speed_gbps": 400.0}]})
    for docs in ([gpu_run, mpi_run], [mpi_run, gpu_run]):
        [node] = judge_runs(load_spec(str(spec)), docs)
        assert node.hardware_problems == [] and node.passed


def test_ratio_to_reference_and_to_fleet_median(tmp_path):
    ref = _write_doc(tmp_path / "ref.json", _doc([_case("a", 2.0)], machine="golden"))
    v = _verdict(tmp_path, f'ratio_to_reference = 0.9\nreference = "{ref}"', [_case("a", 1.9)])
    assert v.verdict == "pass" and v.limit == pytest.approx(1.8)
    v = _verdict(tmp_path, f'ratio_to_reference = 0.9\nreference = "{ref}"', [_case("a", 1.5)])
    assert v.verdict == "fail"
    v = _verdict(tmp_path, f'ratio_to_reference = 0.9\nreference = "{ref}"', [_case("b", 1.5)])
    assert v.verdict == "missing" and "has no passed figure for b [blas]" in v.reason
    fleet = _fleet()
    assert len(node_documents(fleet)) == 3
    spec = load_spec(str(_spec(tmp_path, _check("ratio_to_fleet_median = 0.9"))))
    verdicts = {j.node: j.verdicts[0].verdict for j in judge_runs(spec, [fleet])}
    assert verdicts == {"n0": "pass", "n1": "pass", "n2": "fail"}
    # Each metric against its own fleet median (time_us: lower is better, so at most median / 0.9).
    spec = load_spec(str(_spec(tmp_path, _check("ratio_to_fleet_median = 0.9").replace('"tflops"', '"time_us"'))))
    judged = {j.node: j.verdicts[0] for j in judge_runs(spec, [fleet])}
    assert {n: v.verdict for n, v in judged.items()} == {"n0": "pass", "n1": "pass", "n2": "fail"}
    assert judged["n2"].limit == pytest.approx((1e6 + 1e6 / 1.02) / 2 / 0.9)  # the other nodes' median
    assert _verdict(tmp_path, "ratio_to_fleet_median = 0.9", [_case()]).verdict == "missing"


# ---- the H200 reference, --make-spec ----------------------------------------------------


def test_h200_reference_passes_the_shipped_h200_specs(capsys):
    assert main(["accept", "--spec", "nvidia-h200-sxm-reference", str(H200_REFERENCE), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["accepted"] and all(c["verdict"] == "pass" for c in report["nodes"][0]["checks"])
    # The per-SKU spec requires each case's window health (#30), which the reference, measured
    # before aibench recorded it, lacks: its compute checks fail closed.
    assert main(["accept", "--spec", "nvidia-h200-sxm", str(H200_REFERENCE), "--json"]) == 1
    checks = json.loads(capsys.readouterr().out)["nodes"][0]["checks"]
    assert all(c["verdict"] == "missing" and "no health record" in c["reason"] for c in checks if c["suite"] == "gemm")
    # ... and not the H100 spec, nor the H200 NVL one: another GPU.
    for spec in ("nvidia-h100-sxm", "nvidia-h200-nvl"):
        assert main(["accept", "--spec", spec, str(H200_REFERENCE)]) == 1
        assert "hardware does not match" in capsys.readouterr().out


def test_make_spec_round_trip_and_a_zero_margin_band_is_inconclusive(tmp_path, capsys):
    out = tmp_path / "golden.toml"
    assert main(["accept", "--make-spec", str(H200_REFERENCE), "--tolerance", "0.9", "-o", str(out)]) == 0
    assert main(["accept", "--spec", str(out), str(H200_REFERENCE)]) == 0
    capsys.readouterr()
    # At tolerance 1 each threshold is the measured median: inside its own interval.
    assert main(["accept", "--make-spec", str(H200_REFERENCE), "--tolerance", "1", "-o", str(out)]) == 0
    assert main(["accept", "--spec", str(out), str(H200_REFERENCE), "--json"]) == 1
    verdicts = {c["verdict"] for c in json.loads(capsys.readouterr().out.split("\n", 1)[1])["nodes"][0]["checks"]}
    assert verdicts == {"inconclusive"}
    assert main(["accept", "--make-spec", str(H200_REFERENCE), "--tolerance", "1.5", "-o", str(out)]) == 2


# ---- the report -------------------------------------------------------------------------


def _report(tmp_path, capsys) -> Path:
    """The H200 reference judged on the shipped Hopper compute checks without their window
    health (the reference predates health records: test_h200_reference_passes_...)."""
    spec = tmp_path / "nvidia-hopper-checks.toml"
    spec.parent.mkdir(parents=True, exist_ok=True)
    shipped = (REPO / "src" / "aibench" / "accept" / "specs" / spec.name).read_text()
    spec.write_text("".join(line for line in shipped.splitlines(True) if not line.startswith("health =")))
    report = tmp_path / "report"
    assert main(["accept", "--spec", str(spec), "--report", str(report), str(H200_REFERENCE)]) == 0
    capsys.readouterr()
    return report


def test_report_is_self_contained_and_verify_catches_one_edited_byte(tmp_path, capsys):
    report = _report(tmp_path, capsys)
    assert {p.name for p in report.iterdir()} == {"report.html", "report.md", "report.json", "inputs"}
    page = (report / "report.html").read_text()
    assert "ACCEPTED" in page and "<svg" in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert main(["accept", "--verify", str(report)]) == 0
    run = next((report / "inputs").glob("run1-*.json"))
    data = bytearray(run.read_bytes())
    i = data.index(b'"value": ') + len(b'"value": ')
    data[i] = ord("9") if data[i] != ord("9") else ord("8")  # one byte of one figure
    run.write_bytes(bytes(data))
    assert main(["accept", "--verify", str(report)]) == 1
    assert "does not match its SHA-256 in report.json (it was changed)" in capsys.readouterr().err


def test_verify_catches_an_edited_page_and_an_edited_verdict(tmp_path, capsys):
    report = _report(tmp_path, capsys)
    page = report / "report.html"
    page.write_text(page.read_text().replace("pass", "PASS", 1))
    assert main(["accept", "--verify", str(report)]) == 1
    assert "report.html is not what report.json renders to" in capsys.readouterr().err
    report = _report(tmp_path / "again", capsys)
    data = json.loads((report / "report.json").read_text())
    data["nodes"][0]["checks"][0]["verdict"] = "fail"
    from aibench.accept.report import render_html, render_markdown

    (report / "report.json").write_text(json.dumps(data, indent=1) + "\n")
    (report / "report.html").write_text(render_html(data))
    (report / "report.md").write_text(render_markdown(data))
    assert main(["accept", "--verify", str(report)]) == 1
    assert "the report says fail, judging the inputs gives pass" in capsys.readouterr().err


def test_every_string_from_a_document_is_escaped_in_the_page(tmp_path):
    evil = 'e"><img src=x onerror=alert(2)>'
    doc = _doc([_case(evil, impl=evil)], machine=evil, system={**CPU_SYSTEM, "cpu": {"model": evil}})
    spec = load_spec(str(_spec(tmp_path, _check('min = 0.1\nunit = "TFLOP/s"'))))
    from aibench.accept.report import build_report

    path = _write_doc(tmp_path / "evil.json", doc)
    report = build_report(spec, judge_runs(spec, [doc]), [doc], [path], spec.files, {}, [f"aibench {evil}"])
    page = render_html(report)
    assert "<img" not in page and "&lt;img src=x onerror=alert(2)&gt;" in page


@pytest.mark.browser
def test_report_in_headless_chromium(tmp_path, capsys, driver):
    """The page renders offline with its verdicts and charts; AIBENCH_SCREENSHOT keeps a PNG."""
    import os

    report = _report(tmp_path, capsys)
    driver.get((report / "report.html").as_uri())
    assert driver.find_element("tag name", "h1").text == "Acceptance report: nvidia-hopper-checks"
    assert len(driver.find_elements("css selector", "svg rect")) == 6
    assert len(driver.find_elements("css selector", "span.v.pass")) >= 7  # the verdict and six checks
    shot = os.environ.get("AIBENCH_SCREENSHOT_ACCEPT")
    if shot:
        driver.save_screenshot(shot)


# ---- running what the spec needs (the CLI end to end) -----------------------------------


def test_accept_runs_the_cases_a_spec_needs_and_judges_them(tmp_path, capfd, monkeypatch):
    """A tiny CPU spec: one exact gemm point. Thresholds far from any real figure keep
    the verdicts independent of this machine's speed."""
    monkeypatch.chdir(tmp_path)
    point = '{ m = 256, n = 256, k = 256, dtype = "fp64" }'
    header = 'spec_version = 1\nname = "tiny"\ntier = "quick"\ntarget = "cpu"\n'
    ok = _spec(tmp_path, _check("fraction_of_peak = 0.0001", point), name="ok", header=header)
    assert main(["accept", "--spec", str(ok), "--report", str(tmp_path / "r"), "--json"]) == 0
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert json.loads(capfd.readouterr().out) == report  # the runs' tables are not on stdout
    [check] = report["nodes"][0]["checks"]
    assert check["verdict"] == "pass" and check["case"].startswith("256x256x256-fp64 [")
    assert report["commands"][-1].startswith("aibench run --suite gemm --quick "
                                             "--param m=256 --param n=256 --param k=256 --param dtype=fp64")
    capfd.readouterr()
    demanding = _spec(tmp_path, _check('min = 1000\nunit = "TFLOP/s"', point), name="demanding", header=header)
    runs = [str(p) for p in (tmp_path / "r" / "runs").glob("*.json")]
    assert main(["accept", "--spec", str(demanding), *runs]) == 1
    out = capfd.readouterr().out
    assert "fail" in out and "below 1000" in out


def test_usage_errors_of_accept_are_one_line(capsys):
    assert main(["accept"]) == 2
    assert "accept needs --spec" in capsys.readouterr().err
    assert main(["accept", "--make-spec", str(H200_REFERENCE)]) == 2
    assert "needs -o" in capsys.readouterr().err
    assert main(["accept", "--spec", "generic-cpu", "/no/such/run.json"]) == 2
    assert "no such run document" in capsys.readouterr().err


def test_shipped_specs_are_in_the_package():
    assert {"generic-cpu", "nvidia-h100-sxm", "nvidia-h200-sxm", "nvidia-h200-nvl", "nvidia-a100-sxm-80gb",
            "nvidia-b200", "nvidia-l40s", "nvidia-gh200", "amd-mi300x", "nic-100g", "nic-200g", "nic-400g",
            "nvme-gen4", "nvme-gen5"} <= set(shipped_specs())


def test_each_suite_runs_with_only_its_own_checks_params():
    """A run's params apply to every suite in it: the interconnect check's exact 16 GiB must
    not size the memory copies, nor gemm's dtypes (fp8, tf32, fp64) reach attention."""
    import argparse

    from aibench.accept import plan_invocations

    spec = load_spec("nvidia-hgx-h100-8gpu")
    args = argparse.Namespace(target=None, machine=None, ranks=None, path=None)
    runs = {suite: r for r in plan_invocations(spec, args) for suite in r.suites}
    assert sorted(runs) == sorted({c.suite for c in spec.checks})
    assert runs["interconnect"].params == {"pattern": ["allreduce"], "size": ["17179869184"]}
    assert runs["memory"].params == {"kernel": ["d2d", "h2d", "d2h"]}
    assert runs["attention"].params["dtype"] == ["bf16"]
    assert runs["gemm"].params["dtype"] == ["bf16", "fp16", "fp8", "tf32", "fp64"]
    for suite, run in runs.items():
        named = {str(v) for c in spec.checks if c.suite == suite for k, vs in c.params.items()
                 for v in (vs if isinstance(vs, list) else [vs])}
        # Every suite sharing a run is narrowed alike, and only to values its own checks name.
        assert all(runs[other].params == run.params for other in run.suites)
        assert all(v.lower() in {n.lower() for n in named} for vs in run.params.values() for v in vs), suite


def test_an_inconclusive_check_is_run_again_with_more_samples(tmp_path, capsys, monkeypatch):
    """The first run leaves the threshold inside the interval; accept reruns that case with
    4x the tier's sampling time and judges the longer run (runs replaced by prepared
    documents here: what is tested is the rerun logic, not the machine)."""
    import aibench.accept as accept

    calls = []

    def fake_aibench(request):
        calls.append(request.argv())
        spread = 0.01 if len(calls) == 1 else 0.001  # more samples: a tighter interval
        _write_doc(request.output, _doc([_case("64x64x64-fp64", 1.0, spread=spread, dtype="fp64", m=64)]))
        return 0

    monkeypatch.setattr(accept, "_aibench", fake_aibench)
    monkeypatch.chdir(tmp_path)
    header = 'spec_version = 1\nname = "close"\ntier = "quick"\ntarget = "cpu"\n'
    spec = _spec(tmp_path, _check('min = 0.995\nunit = "TFLOP/s"', '{ dtype = "fp64" }'), name="close", header=header)
    assert main(["accept", "--spec", str(spec), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["nodes"][0]["checks"][0]["verdict"] == "pass"
    assert len(calls) == 2 and calls[1][calls[1].index("--time-budget") + 1] == "4.0"
    assert "--impl" in calls[1] and "m=64" in calls[1] and len(report["inputs"]["runs"]) == 2
