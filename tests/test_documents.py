"""documents.py, the one way to read a document someone else wrote (#27 faults 1, 5, 6, 9
and the spec-include items): run documents, acceptance reports and specs are bounded in
size and depth, validated before use, and anything malformed is one line and exit 2."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from aibench import documents
from aibench.accept import spec as spec_module
from aibench.accept.spec import MAX_INCLUDE_DEPTH, SpecError, load_spec, shipped_specs
from aibench.cli import main
from aibench.results import CaseResult, Metric, RunDocument, Validation, write_atomic
from result_helpers import interval_stats

CHECK = '[[check]]\nid = "{id}"\nsuite = "gemm"\nmetric = "tflops"\nmin = 1\nunit = "TFLOP/s"\nsource = "t"\n'


def _case(case_id: str = "64-fp32", tflops: float = 1.0) -> CaseResult:
    t = 1.0 / tflops
    return CaseResult(suite="gemm", case_id=case_id, params={"m": 64, "n": 64, "k": 64, "dtype": "fp32"},
                      target="cpu", impl="aibench", status="passed",
                      metrics={"tflops": Metric(tflops, "TFLOP/s", True)},
                      stats=interval_stats(t, t * 0.99, t * 1.01), validation=Validation("passed", 0.0, 1.0))


def good_run(tmp_path: Path, name: str = "good") -> Path:
    doc = RunDocument(command=["aibench", "run"], machine=name, tier="quick", targets=["cpu"],
                      system={"hostname": name, "cpu": {"model": "EPYC", "arch": "x86_64", "cores": 2}},
                      aibench={"version": "0", "commit": None}, cases=[_case()])
    path = tmp_path / f"{name}.json"
    write_atomic(path, doc.to_dict())
    return path


def reading_commands(tmp_path: Path, good: Path, bad: Path) -> dict[str, list[str]]:
    """Every command that reads a run document, given `bad` where it reads one."""
    return {
        "compare": ["compare", str(good), str(bad)],
        "compare --rerun": ["compare", str(good), str(good), "--rerun", str(bad)],
        "diagnose": ["diagnose", str(bad), "--baseline", str(good)],
        "diagnose --baseline": ["diagnose", str(good), "--baseline", str(bad)],
        "plot": ["plot", str(bad), "--out", str(tmp_path / "plots")],
        "publish": ["publish", str(bad), "--results", str(tmp_path / "asv"), "--html", str(tmp_path / "html")],
        "accept": ["accept", "--spec", "generic-cpu", str(bad)],
        "accept --make-spec": ["accept", "--make-spec", str(bad), "-o", str(tmp_path / "made.toml")],
    }


def one_line_exit_2(argv: list[str], capsys, needle: str = "") -> str:
    assert main(argv) == 2, argv
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("aibench: error:"), err
    assert needle in err, (needle, err)
    return err


# ---- fault 1: schema-invalid run documents ----------------------------------------------------

def _mutated(good: Path, mutate) -> str:
    doc = json.loads(good.read_text())
    out = mutate(doc)
    return json.dumps(doc) if out is None else out


@pytest.mark.parametrize("mutate, needle", [
    (lambda d: d["cases"][0].update(metrics="fast"), "cases[0].metrics is not null or an object"),
    (lambda d: d["cases"][0].update(metrics=[1, 2]), "cases[0].metrics is not null or an object"),
    (lambda d: "[" * 5000 + "]" * 5000, "nested deeper than 64 levels"),
    (lambda d: json.dumps(d)[:-1] + ', "x": ' + "[" * 5000 + "]" * 5000 + "}", "nested deeper than 64 levels"),
    (lambda d: d["system"].update(cpu="EPYC"), "system.cpu is not null or an object"),
    (lambda d: d["cases"][0]["params"].update(m="big"), "cases[0].params.m = 'big' is not a value of the gemm"),
    (lambda d: json.dumps(d).replace('"value": 1.0', '"value": NaN'), "NaN is not a number"),
    (lambda d: json.dumps(d).replace('"value": 1.0', '"value": 1e999'), "out of range"),
    (lambda d: json.dumps(d).replace('"value": 1.0', '"value": 1.7e308'), "out of range"),  # plot overflowed
    (lambda d: json.dumps(d).replace('"value": 1.0', '"value": 5e-324'), "out of range"),  # compare divided by 0
    (lambda d: d.update(started_at="yesterday"), "started_at 'yesterday' is not a time"),
])
@pytest.mark.parametrize("command", ["compare", "compare --rerun", "diagnose", "diagnose --baseline", "plot",
                                     "publish", "accept", "accept --make-spec"])
def test_a_malformed_run_document_is_one_line_and_exit_2(tmp_path, capsys, mutate, needle, command):
    good = good_run(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text(_mutated(good, mutate))
    one_line_exit_2(reading_commands(tmp_path, good, bad)[command], capsys, needle)


def test_the_good_document_of_these_tests_is_read(tmp_path, capsys):
    good = good_run(tmp_path)
    other = good_run(tmp_path, "other")
    assert main(["compare", str(good), str(other), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"][0]["case_id"] == "64-fp32"


def test_a_case_without_its_suites_params_is_compared_but_not_drawn(tmp_path, capsys):
    good = good_run(tmp_path)
    doc = json.loads(good.read_text())
    del doc["cases"][0]["params"]["m"]  # plots and asv read m, n, k and dtype by name
    doc["aibench"]["commit"] = "0" * 40
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(doc))
    assert main(["compare", str(good), str(bare)]) == 0
    one_line_exit_2(["plot", str(bare), "--out", str(tmp_path / "plots")], capsys, "nothing to plot")
    repo = Path(__file__).resolve().parents[1]
    assert main(["publish", str(bare), "--results", str(tmp_path / "asv"), "--html", str(tmp_path / "html"),
                 "--repo", str(repo)]) == 0
    assert "Traceback" not in capsys.readouterr().err


def test_not_utf8_a_directory_a_pipe_and_a_device_are_refused(tmp_path, capsys):
    good = good_run(tmp_path)
    raw = tmp_path / "latin1.json"
    raw.write_bytes(b"\xff\xfe" + good.read_bytes())
    one_line_exit_2(["compare", str(good), str(raw)], capsys, "not UTF-8 text")
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)  # no writer: reading it must not wait for one
    for path in (fifo, tmp_path, Path("/dev/zero")):
        one_line_exit_2(["compare", str(good), str(path)], capsys, "is not a regular file")


def test_a_run_document_over_the_size_cap_is_refused(tmp_path, capsys, monkeypatch):
    good = good_run(tmp_path)
    monkeypatch.setattr(documents, "RUN_MAX_BYTES", good.stat().st_size - 1)
    one_line_exit_2(["compare", str(good), str(good)], capsys, "larger than")
    monkeypatch.setattr(documents, "RUN_MAX_BYTES", good.stat().st_size)
    assert documents.load_run(good).machine == "good"


# ---- fault 9: accept --verify on a malformed report.json ---------------------------------------

def _report(tmp_path: Path, capsys) -> Path:
    report = tmp_path / "report"
    assert main(["accept", "--spec", "generic-cpu", str(good_run(tmp_path)), "--report", str(report)]) in (0, 1)
    capsys.readouterr()
    return report


@pytest.mark.parametrize("mutate, needle", [
    (lambda r: [], "not an aibench acceptance report"),
    (lambda r: r.update(inputs=5), "inputs is not an object (it is an integer)"),
    (lambda r: r["inputs"].update(specs=[]), "inputs.specs is empty"),
    (lambda r: r["nodes"][0]["checks"][0].update(value="high"), "nodes[0].checks[0].value is not"),
    (lambda r: r["inputs"]["runs"][0].update(file="../../etc/passwd"), "is not a file in inputs/"),
    (lambda r: r["inputs"]["runs"][0].update(file="inputs/../../x"), "is not a file in inputs/"),
    (lambda r: "[" * 5000, "nested deeper than 64 levels"),
])
def test_verify_on_a_malformed_report_is_one_line_and_exit_2(tmp_path, capsys, mutate, needle):
    report = _report(tmp_path, capsys)
    assert main(["accept", "--verify", str(report)]) == 0  # intact, it verifies
    capsys.readouterr()
    data = json.loads((report / "report.json").read_text())
    out = mutate(data)
    (report / "report.json").write_text(json.dumps(data if out is None else out) if not isinstance(out, str) else out)
    one_line_exit_2(["accept", "--verify", str(report)], capsys, needle)


def test_verify_does_not_follow_an_input_that_became_a_link(tmp_path, capsys):
    report = _report(tmp_path, capsys)
    run = next((report / "inputs").glob("run1-*"))
    run.unlink()
    run.symlink_to("/etc/hostname")
    assert main(["accept", "--verify", str(report)]) == 1
    assert "is missing (or not a plain file)" in capsys.readouterr().err


# ---- faults 5 and 6: spec includes ----------------------------------------------------------

def _spec(folder: Path, name: str, includes: list[str] = (), check: str | None = None) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(f'spec_version = 1\nname = "{name}"\ninclude = {json.dumps(list(includes))}\n'
                    + CHECK.format(id=check or name))
    return path


def test_includes_are_loaded_once_each_a_dag_not_a_tree(tmp_path, monkeypatch):
    # s0 includes s1 twice, s1 includes s2 twice, ...: 24 files, not 2^23 loads.
    for i in range(24):
        _spec(tmp_path, f"s{i}", [f"s{i + 1}", f"s{i + 1}.toml"] if i < 23 else [])
    reads = []
    real = spec_module.read_bytes
    monkeypatch.setattr(spec_module, "read_bytes", lambda *a: reads.append(a[0]) or real(*a))
    spec = load_spec(str(tmp_path / "s0.toml"))
    assert len(reads) == 24 and len(spec.files) == 24 and len(spec.checks) == 24


def test_a_long_include_chain_is_one_line_and_exit_2(tmp_path, capsys):
    for i in range(1200):
        _spec(tmp_path, f"c{i}", [f"c{i + 1}"] if i < 1199 else [])
    one_line_exit_2(["accept", "--spec", str(tmp_path / "c0.toml"), str(good_run(tmp_path))], capsys,
                    f"includes nest deeper than {MAX_INCLUDE_DEPTH} files")


def test_too_many_included_files_are_refused(tmp_path):
    names = [f"leaf{i}" for i in range(spec_module.MAX_SPEC_FILES)]
    for n in names:
        _spec(tmp_path, n)
    _spec(tmp_path, "wide", names)
    with pytest.raises(SpecError, match=f"more than {spec_module.MAX_SPEC_FILES} files"):
        load_spec(str(tmp_path / "wide.toml"))


def test_a_deeply_nested_spec_and_an_oversized_one_are_one_line(tmp_path, capsys):
    run = str(good_run(tmp_path))
    deep = tmp_path / "deep.toml"
    deep.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    one_line_exit_2(["accept", "--spec", str(deep), run], capsys, "nested deeper than 64 levels")
    big = _spec(tmp_path, "big")
    big.write_text(big.read_text() + "#" * documents.SPEC_MAX_BYTES + "\n")
    one_line_exit_2(["accept", "--spec", str(big), run], capsys, "larger than 1 MiB")


def test_an_include_stays_in_its_specs_directory(tmp_path):
    folder = tmp_path / "specs"
    folder.mkdir()
    outside = _spec(tmp_path, "outside")
    _spec(folder, "up", ["../outside"])
    _spec(folder, "absolute", [str(outside)])
    (folder / "link.toml").symlink_to(outside)
    _spec(folder, "via-link", ["link"])
    for name in ("up", "absolute", "via-link"):
        with pytest.raises(SpecError, match="is outside .*an include stays in its spec's directory"):
            load_spec(str(folder / f"{name}.toml"))
    os.mkfifo(folder / "pipe.toml")
    _spec(folder, "pipe-include", ["pipe"])
    with pytest.raises(SpecError, match="no spec 'pipe'"):  # not a regular file: never opened
        load_spec(str(folder / "pipe-include.toml"))
    (folder / "sub").mkdir()
    _spec(folder / "sub", "inner")
    _spec(folder, "down", ["sub/inner"])
    assert [p.name for p in load_spec(str(folder / "down.toml")).files] == ["down.toml", "inner.toml"]


def test_every_shipped_spec_still_loads_with_its_includes():
    loaded = {name: load_spec(name) for name in shipped_specs()}
    assert len(loaded["nvidia-hgx-h200-node"].files) > 2  # it includes, and its includes include
