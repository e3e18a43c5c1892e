"""Health judged in the figure's own window, and spread within a node (issue #30 items 2
and 3; docs/accept.md "Health in the window" and "Spread within a node"). GPU windows run
through the device double (tests/gpu_double, with NVML's health queries from
health_double.py); CPU windows through a sysfs tree of the test's own (health.CPU_SYSFS)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from aibench import health
from aibench.accept.judge import judge_runs
from aibench.accept.spec import SpecError, load_spec
from aibench.cli import main
from aibench.results import CaseResult, Metric, RunDocument, Validation, write_atomic
from result_helpers import interval_stats

import health_double
from test_gpu_double import gemm_args, run_cuda  # noqa: F401 - gpus is a fixture there
from test_gpu_double import gpus  # noqa: F401


def _spec(tmp_path: Path, top: str = "", check: str = "", target: str = "cuda", name: str = "t",
          threshold: float = 1e-7) -> str:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'spec_version = 1\nname = "{name}"\ntarget = "{target}"\n{top}\n'
                    f'[[check]]\nid = "gemm"\nsuite = "gemm"\nmetric = "tflops"\nmin = {threshold}\n'
                    f'unit = "TFLOP/s"\nsource = "test"\n{check}\n')
    return str(path)


def _accept(spec: str, *runs: Path, capsys) -> tuple[int, dict]:
    capsys.readouterr()  # what the runs printed
    code = main(["accept", "--spec", spec, *map(str, runs), "--json"])
    return code, json.loads(capsys.readouterr().out)


GPU_HEALTH = 'health = { throttle_s_max = 0, ecc_new_max = 0 }'


# ---- GPU: the window through the device double ---------------------------------------------


def test_a_healthy_gpu_window_is_recorded_and_passes(gpus, tmp_path, capsys, monkeypatch):
    health_double.add(monkeypatch, gpus)
    code, doc = run_cuda(tmp_path, *gemm_args(dtypes=("fp16",)), "--impl", "cublas")
    (case,) = doc["cases"]
    h = case["health"]
    assert code == 0 and h["source"] == "nvml" and h["device"] == 0 and h["window_s"] > 0
    assert h["throttle_s"] == {"thermal": 0.0, "power_cap": 0.0} and h["clock_event_reasons"] == []
    assert h["ecc"] == {"corrected": {"before": 0, "after": 0}, "uncorrected": {"before": 0, "after": 0}}
    assert h["xid"] == {"new": 0, "codes": []} and h["xid_unknown"] is None
    assert h["clock"]["fraction"] == 1.0 and h["power"]["watts"] == 350.0 and h["power"]["limit_w"] == 700.0
    code, report = _accept(_spec(tmp_path, GPU_HEALTH), tmp_path / "run.json", capsys=capsys)
    assert code == 0 and report["nodes"][0]["checks"][0]["verdict"] == "pass"


def test_a_gpu_throttled_inside_the_window_fails_with_the_health_reason(gpus, tmp_path, capsys, monkeypatch):
    """Thermal slowdown while the kernels ran, clear again at the window's ends: the
    start/end snapshot (telemetry) sees nothing, the violation counter sees it all."""
    boards = health_double.add(monkeypatch, gpus)
    boards[0].throttling = ("thermal",)
    code, doc = run_cuda(tmp_path, *gemm_args(dtypes=("fp16",)), "--impl", "cublas")
    (case,) = doc["cases"]
    assert case["telemetry"]["throttled"] is False and case["health"]["throttle_s"]["thermal"] > 0
    code, report = _accept(_spec(tmp_path, GPU_HEALTH), tmp_path / "run.json", capsys=capsys)
    (check,) = report["nodes"][0]["checks"]
    assert code == 1 and check["verdict"] == "fail" and report["rejected_nodes"]
    assert check["reason"].startswith("unhealthy window: throttled thermal") and "(at most 0 s)" in check["reason"]
    # The same figure under a spec that does not ask for the window's health passes:
    # the verdict above is the health's, not the figure's.
    assert _accept(_spec(tmp_path, name="no-health"), tmp_path / "run.json", capsys=capsys)[0] == 0


def test_power_capping_is_recorded_but_is_not_a_slowdown(gpus, tmp_path, capsys, monkeypatch):
    boards = health_double.add(monkeypatch, gpus)
    boards[0].throttling = ("power",)
    run_cuda(tmp_path, *gemm_args(dtypes=("fp16",)), "--impl", "cublas")
    code, report = _accept(_spec(tmp_path, GPU_HEALTH), tmp_path / "run.json", capsys=capsys)
    doc = json.loads((tmp_path / "run.json").read_text())
    assert doc["cases"][0]["health"]["throttle_s"]["power_cap"] > 0 and code == 0


@pytest.mark.parametrize("fault, reason", [
    ("ecc", "new error(s) in the window (ECC corrected 0, uncorrected "),
    ("xid", "XID 79"),
])
def test_gpu_errors_inside_the_window_fail_the_check(gpus, tmp_path, capsys, monkeypatch, fault, reason):
    boards = health_double.add(monkeypatch, gpus)
    if fault == "ecc":
        boards[0].ecc_per_kernel = {"uncorrected": 1}
        boards[0].ecc["uncorrected"] = 5  # errors before the window are not this window's
    else:
        boards[0].xid_on_kernel = 79  # fallen off the bus
    run_cuda(tmp_path, *gemm_args(dtypes=("fp16",)), "--impl", "cublas")
    if fault == "ecc":  # one error per kernel of the window; those counted before it are not its own
        new = json.loads((tmp_path / "run.json").read_text())["cases"][0]["health"]["ecc"]["uncorrected"]
        assert new["before"] >= 5 and new["after"] > new["before"]
    code, report = _accept(_spec(tmp_path, GPU_HEALTH), tmp_path / "run.json", capsys=capsys)
    (check,) = report["nodes"][0]["checks"]
    assert code == 1 and check["verdict"] == "fail" and reason in check["reason"], check["reason"]


@pytest.mark.parametrize("what, reason", [
    ("xid-events-not-supported", "NVML XID events: NVMLError_NotSupported: Not Supported"),
    ("no-violation-counters", "NVML violation status (thermal)"),
])
def test_gpu_health_the_driver_does_not_give_fails_closed(gpus, tmp_path, capsys, monkeypatch, what, reason):
    if what == "xid-events-not-supported":
        boards = health_double.add(monkeypatch, gpus)
        boards[0].xid_events_supported = False
    # else: the plain double, whose NVML has no violation counters
    run_cuda(tmp_path, *gemm_args(dtypes=("fp16",)), "--impl", "cublas")
    code, report = _accept(_spec(tmp_path, GPU_HEALTH), tmp_path / "run.json", capsys=capsys)
    (check,) = report["nodes"][0]["checks"]
    assert code == 1 and check["verdict"] == "missing"
    assert check["reason"].startswith("health required, not known: ") and reason in check["reason"]


# ---- CPU: the window through a sysfs tree of the test's own -----------------------------------


@pytest.fixture
def cpu_sysfs(tmp_path, monkeypatch):
    """thermal_throttle counters of every allowed CPU at 0 (and no EDAC)."""
    root = tmp_path / "sys-cpu"
    for cpu in health._allowed_cpus():
        d = root / f"cpu{cpu}" / "thermal_throttle"
        d.mkdir(parents=True)
        for name in ("core_throttle_count", "package_throttle_count"):
            (d / name).write_text("0\n")
    monkeypatch.setattr(health, "CPU_SYSFS", root)
    monkeypatch.setattr(health, "EDAC_SYSFS", tmp_path / "no-edac")
    return root


def _cpu_run(tmp_path: Path) -> Path:
    out = tmp_path / "cpu-run.json"
    assert main(["run", "--suite", "gemm", "--impl", "aibench", "--param", "m=64", "--param", "n=64", "--param", "k=64",
                 "--param", "dtype=fp32", "--time-budget", "0.05", "--no-asv", "--output", str(out)]) == 0
    return out


def test_cpu_thermal_throttle_inside_the_window_fails_the_check(cpu_sysfs, tmp_path, capsys):
    """A CPU that throttles while the case runs: its core_throttle_count rises."""
    counter = cpu_sysfs / f"cpu{health._allowed_cpus()[0]}" / "thermal_throttle" / "core_throttle_count"
    stop = threading.Event()

    def throttle():
        n = 0
        while not stop.wait(0.001):
            n += 1
            tmp = counter.with_suffix(".tmp")
            tmp.write_text(f"{n}\n")
            os.replace(tmp, counter)  # as sysfs reads: never half a number

    thread = threading.Thread(target=throttle)
    thread.start()
    try:
        run = _cpu_run(tmp_path)
    finally:
        stop.set()
        thread.join()
    (case,) = json.loads(run.read_text())["cases"]
    assert case["health"]["throttle_events"]["core"] > 0 and case["health"]["throttle_s"] is None
    spec = _spec(tmp_path, "health = { throttle_s_max = 0 }", target="cpu")
    code, report = _accept(spec, run, capsys=capsys)
    (check,) = report["nodes"][0]["checks"]
    assert code == 1 and check["verdict"] == "fail" and "thermal-throttle events in the window (core " in check["reason"]


def test_a_quiet_cpu_window_passes_and_a_cpu_clock_below_the_fraction_fails(cpu_sysfs, tmp_path, capsys, monkeypatch):
    run = _cpu_run(tmp_path)
    (case,) = json.loads(run.read_text())["cases"]
    assert case["health"]["throttle_events"] == {"core": 0, "package": 0}
    assert case["health"]["clock"]["unit"] == "GHz" and case["health"]["clock"]["max"] > 0
    assert case["health"]["ecc_unknown"].startswith("no EDAC memory controller")
    code, report = _accept(_spec(tmp_path, "health = { throttle_s_max = 0 }", target="cpu"), run, capsys=capsys)
    assert code == 0, [(c["verdict"], c["reason"]) for c in report["nodes"][0]["checks"]]
    # a clock after the window about half the run's maximum (read again: on a busy machine it moves)
    from aibench.targets import cpu as cpu_target

    monkeypatch.setattr(cpu_target, "measured_clock_ghz", lambda: 2 * case["health"]["clock"]["value"])
    slow = _cpu_run(tmp_path)
    code, report = _accept(_spec(tmp_path, "health = { clock_min_fraction = 0.9 }", target="cpu", name="clock"), slow,
                           capsys=capsys)
    (check,) = report["nodes"][0]["checks"]
    assert code == 1 and check["reason"].startswith("unhealthy window: clock ") and "(at least 90%)" in check["reason"]


def test_cpu_without_throttle_counters_fails_closed_where_required(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(health, "CPU_SYSFS", tmp_path / "none")
    run = _cpu_run(tmp_path)
    code, report = _accept(_spec(tmp_path, "health = { throttle_s_max = 0 }", target="cpu"), run, capsys=capsys)
    (check,) = report["nodes"][0]["checks"]
    assert code == 1 and check["verdict"] == "missing" and "thermal_throttle counters" in check["reason"]


def test_cpu_throttle_time_and_edac_errors_are_read_before_and_after(tmp_path, monkeypatch):
    """The record itself, window by window: throttle time where the kernel counts it, and
    EDAC's memory-controller error counts."""
    root, edac = tmp_path / "cpu", tmp_path / "edac"
    cpus = health._allowed_cpus()
    for cpu in cpus:
        d = root / f"cpu{cpu}" / "thermal_throttle"
        d.mkdir(parents=True)
        for name in ("core_throttle_count", "package_throttle_count", "core_throttle_total_time_ms",
                     "package_throttle_total_time_ms"):
            (d / name).write_text("10\n")
    (edac / "mc0").mkdir(parents=True)
    (edac / "mc0" / "ce_count").write_text("3\n")
    (edac / "mc0" / "ue_count").write_text("0\n")
    monkeypatch.setattr(health, "CPU_SYSFS", root)
    monkeypatch.setattr(health, "EDAC_SYSFS", edac)
    from aibench.targets import Target

    window = health.HealthWindow(Target("cpu"))
    (root / f"cpu{cpus[-1]}" / "thermal_throttle" / "core_throttle_total_time_ms").write_text("260\n")
    (root / f"cpu{cpus[-1]}" / "thermal_throttle" / "core_throttle_count").write_text("12\n")
    (edac / "mc0" / "ce_count").write_text("4\n")
    record = window.finish()
    assert record["throttle_s"] == {"core": 0.25, "package": 0.0}
    assert record["throttle_events"] == {"core": 2, "package": 0}
    assert record["ecc"] == {"corrected": {"before": 3, "after": 4}, "uncorrected": {"before": 0, "after": 0}}
    unhealthy, unknown = health.window_problems(record, {"throttle_s_max": 0.1, "ecc_new_max": 0})
    assert unknown == [] and unhealthy[0].startswith("throttled core 0.25 s") and "1 new error(s)" in unhealthy[1]
    assert health.window_problems(record, {"throttle_s_max": 0.3, "ecc_new_max": 1}) == ([], [])


def test_a_run_from_before_health_was_recorded_fails_closed(tmp_path):
    spec = load_spec(_spec(tmp_path, GPU_HEALTH))
    [node] = judge_runs(spec, [_doc([_case("x", 1.0)])])
    assert node.verdicts[0].verdict == "missing" and "no health record" in node.verdicts[0].reason


def test_a_health_record_of_the_wrong_shape_fails_closed_without_a_traceback():
    for record in ({"throttle_s": {"thermal": "hot"}, "window_s": 1.0}, {"ecc": {"corrected": 3}}, {"clock": 5}):
        unhealthy, unknown = health.window_problems(record, {"throttle_s_max": 0, "ecc_new_max": 0,
                                                             "clock_min_fraction": 0.9})
        assert unhealthy == [] and unknown[0].startswith("the health record is not one aibench writes"), record


# ---- spec syntax ---------------------------------------------------------------------------


@pytest.mark.parametrize("table, problem", [
    ("health = { throttle_s_max = -1 }", "health.throttle_s_max must be seconds, 0 or more"),
    ("health = { clock_min_fraction = 90 }", "health.clock_min_fraction must be a fraction in (0, 1], 0.9 for 90%"),
    ("health = { throttle = 0 }", "unknown health key 'throttle'"),
    ("spread = { max = 5 }", "spread.max must be a fraction in (0, 1), 0.05 for 5%"),
    ("spread = 0.05", "spread must be a table"),
])
def test_a_requirement_out_of_range_is_refused_at_load(tmp_path, table, problem):
    for where in ("top", "check"):
        path = _spec(tmp_path, table if where == "top" else "", table if where == "check" else "", name=where)
        with pytest.raises(SpecError) as e:
            load_spec(path)
        assert any(problem in p for p in e.value.problems), e.value.problems


def test_a_checks_own_table_replaces_the_specs(tmp_path):
    spec = load_spec(_spec(tmp_path, "health = { throttle_s_max = 0 }\nspread = { max = 0.05 }",
                           "health = { ecc_new_max = 0 }\nspread = {}"))
    (check,) = spec.checks
    assert check.health == {"ecc_new_max": 0} and not check.spread
    assert "window health ecc_new_max = 0" in check.describe_threshold()


def test_the_shipped_gpu_specs_require_the_window_health():
    for name in ("nvidia-h100-sxm", "nvidia-h200-sxm", "nvidia-h200-nvl", "nvidia-gh200", "nvidia-a100-sxm-80gb",
                 "nvidia-b200", "nvidia-l40s", "nvidia-hgx-h100-8gpu", "nvidia-hgx-h200-node"):
        gemm = [c for c in load_spec(name).checks if c.suite == "gemm"]
        assert gemm and all(c.health == {"throttle_s_max": 0, "ecc_new_max": 0} for c in gemm), name


# ---- spread within a node --------------------------------------------------------------------


def _case(case_id="x", value=1.0, spread=0.005, node=None, params=None, target="cuda:0"):
    t = 1.0 / value
    return CaseResult(suite="gemm", case_id=case_id, params=params or {"dtype": "bf16"}, target=target, impl="cublas",
                      status="passed", metrics={"tflops": Metric(value, "TFLOP/s", True)},
                      stats=interval_stats(t, t * (1 - spread), t * (1 + spread)),
                      validation=Validation("passed", 0.0, 1.0, None), node=node)


def _doc(cases, machine="node-a", system=None):
    return RunDocument(command=["aibench", "run"], machine=machine, tier="quick", targets=["cuda:0"],
                       system=system if system is not None else {"hostname": machine},
                       aibench={"version": "0", "commit": None}, cases=cases)


def _per_gpu_fleet(figures: dict[str, float], gpus_per_host: int = 8) -> RunDocument:
    """A --fleet --per-gpu document: one fleet node per GPU, `host:gpuN`."""
    system = {"gpus": {"devices": [{"name": "NVIDIA H200"}] * gpus_per_host}}
    doc = _doc([_case("x", v, node=n) for n, v in figures.items() if v is not None], machine="rack")
    doc.fleet = {"nodes": [{"node": n, "host": n.split(":")[0], "rank": i, "local_rank": i, "target": f"cuda:{i}",
                            "system": system} for i, n in enumerate(figures)], "concurrency": "every node at once"}
    return doc


SPREAD = 'spread = { max = 0.05 }'


def _spread_verdicts(tmp_path, doc) -> dict[str, tuple[str, str]]:
    spec = load_spec(_spec(tmp_path, SPREAD))
    return {j.node: (v.verdict, v.reason) for j in judge_runs(spec, [doc]) for v in j.verdicts
            if v.check == "gemm:spread"}


def test_one_gpu_10_percent_short_fails_the_node_naming_it(tmp_path, capsys):
    figures = {f"h1:gpu{i}": 1.0 for i in range(8)}
    figures["h1:gpu5"] = 0.9
    verdicts = _spread_verdicts(tmp_path, _per_gpu_fleet(figures))
    assert {v for v, _ in verdicts.values()} == {"fail"}  # the node is rejected: every GPU of it
    assert "h1:gpu5 is 10.0% short of h1:gpu0" in verdicts["h1:gpu0"][1]
    path = tmp_path / "fleet.json"
    write_atomic(path, _per_gpu_fleet(figures).to_dict())
    code = main(["accept", "--spec", _spec(tmp_path, SPREAD), str(path)])
    out = capsys.readouterr().out
    assert code == 1 and "gemm:spread" in out and "h1:gpu5 is 10.0% short" in out


def test_gpus_within_3_percent_pass_and_hosts_are_judged_apart(tmp_path):
    figures = {f"h1:gpu{i}": 1.0 - 0.004 * i for i in range(8)}  # 2.8% from the best to the worst
    figures.update({f"h2:gpu{i}": 0.8 for i in range(8)})  # another host, slower as a whole: not a spread
    verdicts = _spread_verdicts(tmp_path, _per_gpu_fleet(figures))
    assert {v for v, _ in verdicts.values()} == {"pass"}, verdicts
    assert "8 devices within 2.8% of h1:gpu0" in verdicts["h1:gpu3"][1]


def test_a_missing_gpu_fails_the_spread_closed(tmp_path):
    figures = {f"h1:gpu{i}": 1.0 for i in range(8)}
    figures["h1:gpu6"] = None  # the fleet node is there, its case is not
    verdicts = _spread_verdicts(tmp_path, _per_gpu_fleet(figures))
    assert verdicts["h1:gpu0"] == ("missing", "h1:gpu6 has no figure for x [cublas]")
    seven = {f"h1:gpu{i}": 1.0 for i in range(7)}  # the host has 8 GPUs, the fleet ran 7
    verdicts = _spread_verdicts(tmp_path, _per_gpu_fleet(seven))
    assert verdicts["h1:gpu0"] == ("missing", "figures from 7 of the node's 8 GPUs")


def test_one_figure_for_a_multi_gpu_node_is_no_spread(tmp_path):
    doc = _doc([_case("x", 1.0)], system={"gpus": {"devices": [{"name": "NVIDIA H200"}] * 8}})
    ((verdict, reason),) = _spread_verdicts(tmp_path, doc).values()
    assert verdict == "missing" and "--per-gpu" in reason
    # One device: nothing to spread, and no spread verdict (the check's own still judges the figure).
    [node] = judge_runs(load_spec(_spec(tmp_path, SPREAD)), [_doc([_case("x", 1.0)])])
    assert [v.check for v in node.verdicts] == ["gemm"] and node.passed


def test_numa_nodes_of_a_cpu_node_are_its_devices(tmp_path):
    def numa(value, node):
        return _case(f"triad-64M-node{node}", value, params={"kernel": "triad", "size": 1 << 26, "node": node},
                     target="cpu")

    spec = load_spec(_spec(tmp_path, SPREAD, target="cpu"))
    system = {"memory": {"numa_nodes": 2}}
    for cases, verdict, words in (
            ([numa(100.0, 0), numa(90.0, 1)], "fail", "NUMA node 1 is 10.0% short of NUMA node 0"),
            ([numa(100.0, 0), numa(98.0, 1)], "pass", "2 devices within 2.0% of NUMA node 0"),
            ([numa(100.0, 0)], "missing", "figures from 1 of the node's 2 NUMA nodes")):
        [node] = judge_runs(spec, [_doc(cases, system=system)])
        v = next(v for v in node.verdicts if v.check == "gemm:spread")
        assert (v.verdict, words in v.reason) == (verdict, True), v.reason
    [node] = judge_runs(spec, [_doc([numa(100.0, 0)], system={"memory": {"numa_nodes": 1}})])
    assert [v.check for v in node.verdicts] == ["gemm"]  # one NUMA node: no spread verdict


def test_a_wide_interval_across_the_limit_is_inconclusive(tmp_path):
    figures = {"h1:gpu0": 1.0, "h1:gpu1": 0.95}
    doc = _per_gpu_fleet(figures, gpus_per_host=2)
    for c in doc.cases:
        c.stats = interval_stats(1 / c.metrics["tflops"].value, 0.97 / c.metrics["tflops"].value,
                                 1.03 / c.metrics["tflops"].value)
    assert {v for v, _ in _spread_verdicts(tmp_path, doc).values()} == {"inconclusive"}


# ---- retries in the report -----------------------------------------------------------------------


def test_the_report_shows_each_try_of_a_rerun_case(tmp_path, capsys):
    first = tmp_path / "run.json"
    rerun = tmp_path / "rerun.json"
    write_atomic(first, _doc([_case("x", 1.0, spread=0.2)]).to_dict())  # wide: inconclusive at 1.0
    write_atomic(rerun, _doc([_case("x", 1.1, spread=0.01)]).to_dict())
    spec = _spec(tmp_path, threshold=1.0)
    assert main(["accept", "--spec", spec, "--report", str(tmp_path / "acc"), str(first), str(rerun)]) == 0
    report = json.loads((tmp_path / "acc" / "report.json").read_text())
    (retry,) = report["nodes"][0]["retries"]
    assert retry["check"] == "gemm" and retry["verdict"] == "pass" and len(retry["tries"]) == 2
    assert [t["value"] for t in retry["tries"]] == [1.0, 1.1] and retry["tries"][0]["run"] == "run1-run.json"
    md = (tmp_path / "acc" / "report.md").read_text()
    assert "- retried: gemm on x [cublas] (2 tries, judged on the last: pass)" in md
    assert "Retries" in (tmp_path / "acc" / "report.html").read_text()
    capsys.readouterr()
    assert main(["accept", "--verify", str(tmp_path / "acc")]) == 0
