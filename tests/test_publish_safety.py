"""`aibench publish` and the asv export on hostile run documents: the strings a run
document carries reach asv's pages only HTML-escaped, and a machine name or commit
that would be a path outside the results tree is refused before anything is written."""

import json
from pathlib import Path

import pytest

from aibench.asv_export import export_run, machine_info
from aibench.cli import main
from aibench.documents import load_run
from aibench.errors import UsageError
from aibench.fingerprint import git_commit

REPO = Path(__file__).resolve().parents[1]
EVIL = 'e"><img src=x onerror=alert(2)>'
RAW = "<img src=x onerror"
ESCAPED = "&lt;img"

pytestmark = pytest.mark.skipif(git_commit() is None, reason="aibench not built from a git checkout")


@pytest.fixture(scope="module")
def run_doc(tmp_path_factory) -> dict:
    """One small gemm run (as tests/test_asv_export.py makes them), as its JSON."""
    out = tmp_path_factory.mktemp("run") / "node-a.json"
    assert main(["run", "--param", "m=512", "--param", "n=512", "--param", "k=512", "--param", "dtype=fp32",
                 "--time-budget", "0.05", "--machine", "node-a", "--output", str(out), "--no-asv"]) == 0
    return json.loads(out.read_text())


def write_doc(path: Path, doc: dict, **changes) -> Path:
    path.write_text(json.dumps({**doc, **changes}))
    return path


def hostile_system(system: dict) -> dict:
    system = json.loads(json.dumps(system))
    system.setdefault("cpu", {})["model"] = EVIL
    system["os"] = {"system": EVIL, "release": EVIL}
    system["gpus"] = {"count": 1, "nvidia_driver": EVIL, "devices": [{"name": EVIL}]}
    system["mpi"] = {"library": EVIL}
    return system


def files_containing(root: Path, text: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and text in p.read_text(errors="replace")]


def written_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_hostile_system_strings_reach_asv_files_only_escaped(run_doc, tmp_path):
    """The CPU model, OS, GPU name, driver and MPI library of a document are markup in
    asv's graph page: export_run and publish write them HTML-escaped, never raw."""
    path = write_doc(tmp_path / "hostile.json", run_doc, system=hostile_system(run_doc["system"]))
    doc = load_run(path)

    info = machine_info(doc)
    for key in ("cpu", "os", "gpu", "gpu_driver", "mpi"):
        assert RAW not in info[key] and ESCAPED in info[key], (key, info[key])
    assert info["machine"] == "node-a"  # ordinary values are unchanged

    results = tmp_path / "results"
    written = export_run(doc, results, REPO)
    assert written.is_file() and written.parent == results / "node-a"
    assert files_containing(results, RAW) == []
    machine_json = (results / "node-a" / "machine.json").read_text()
    assert ESCAPED in machine_json
    assert json.loads(machine_json)["cpu"] == 'e&quot;&gt;&lt;img src=x onerror=alert(2)&gt;'

    html = tmp_path / "html"
    assert main(["publish", str(path), "--repo", str(REPO), "--results", str(results), "--html", str(html)]) == 0
    assert files_containing(results, RAW) == []
    assert files_containing(html, RAW) == []
    index = json.loads((html / "index.json").read_text())
    assert index["machines"]["node-a"]["cpu"] == info["cpu"]


def test_ordinary_system_strings_are_unchanged(run_doc, tmp_path):
    doc = load_run(write_doc(tmp_path / "ok.json", run_doc))
    info = machine_info(doc)
    cpu = run_doc["system"].get("cpu") or {}
    if isinstance(cpu.get("model"), str) and not set(cpu["model"]) & set("&<>\"'"):
        assert info["cpu"] == cpu["model"]
    assert info["machine"] == "node-a"


@pytest.mark.parametrize("machine", ["../evil", "ABS", "a/b", ".hidden", "x" * 101])
def test_publish_refuses_a_machine_name_that_is_not_a_path_component(run_doc, tmp_path, capsys, machine):
    """Before: `../evil` wrote machine.json and the results to tmp_path/evil, an absolute
    name wrote there. After: one line naming the document, exit 2, nothing written."""
    if machine == "ABS":
        machine = str(tmp_path / "evil-abs")
    path = write_doc(tmp_path / "bad.json", run_doc, machine=machine)
    results, html = tmp_path / "results", tmp_path / "html"
    capsys.readouterr()
    code = main(["publish", str(path), "--repo", str(REPO), "--results", str(results), "--html", str(html)])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "machine name" in lines[0], err
    assert not (tmp_path / "evil").exists()
    assert not (tmp_path / "evil-abs").exists()
    assert written_files(results) == [] and written_files(html) == []


@pytest.mark.parametrize("bad_field", ["machine", "commit"])
def test_publish_checks_every_document_before_writing_any(run_doc, tmp_path, capsys, bad_field):
    good = write_doc(tmp_path / "good.json", run_doc)
    change = {"machine": "../evil"} if bad_field == "machine" else \
        {"aibench": {**run_doc["aibench"], "commit": "../../../evil"}}
    bad = write_doc(tmp_path / "bad.json", run_doc, **change)
    results = tmp_path / "results"
    code = main(["publish", str(good), str(bad), "--repo", str(REPO), "--results", str(results),
                 "--html", str(tmp_path / "html")])
    assert code == 2 and str(bad) in capsys.readouterr().err
    assert written_files(results) == [] and not (tmp_path / "evil").exists()


@pytest.mark.parametrize("machine", ["../evil", "ABS", "", None])
def test_export_run_refuses_a_bad_machine_name_itself(run_doc, tmp_path, machine):
    """The last line of defence, for every caller of export_run (aibench run too)."""
    doc = load_run(write_doc(tmp_path / "bad.json", run_doc))
    doc.machine = str(tmp_path / "evil-abs") if machine == "ABS" else machine
    with pytest.raises(UsageError, match="machine name"):
        export_run(doc, tmp_path / "results", REPO)
    assert written_files(tmp_path / "results") == []
    assert not (tmp_path / "evil").exists() and not (tmp_path / "evil-abs").exists()


@pytest.mark.parametrize("commit", ["../../../evil", "--output=OUT", 123])
def test_export_run_refuses_a_commit_that_is_not_a_hash(run_doc, tmp_path, commit):
    doc = load_run(write_doc(tmp_path / "bad.json", run_doc))
    doc.aibench = {**doc.aibench, "commit": commit.replace("OUT", str(tmp_path / "evil"))
                   if isinstance(commit, str) else commit}
    results = tmp_path / "deep" / "er" / "results"
    with pytest.raises(ValueError, match="not a git commit hash"):
        export_run(doc, results, REPO)
    assert not (tmp_path / "evil").exists() and written_files(tmp_path / "deep") == []


@pytest.mark.parametrize("commit", ["../../../evil", "--output=OUT"])
def test_publish_refuses_a_commit_that_is_not_a_hash(run_doc, tmp_path, capsys, commit):
    """The commit names the results file (its first 8 characters) and goes to `git show`:
    a path or an option there would write outside the tree."""
    commit = commit.replace("OUT", str(tmp_path / "evil"))
    path = write_doc(tmp_path / "bad.json", run_doc, aibench={**run_doc["aibench"], "commit": commit})
    results = tmp_path / "deep" / "er" / "results"
    code = main(["publish", str(path), "--repo", str(REPO), "--results", str(results),
                 "--html", str(tmp_path / "html")])
    err = capsys.readouterr().err
    assert code == 2 and str(path) in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "evil").exists()
    assert written_files(tmp_path / "deep") == []


def test_fleet_node_names_stay_valid(run_doc, tmp_path):
    """Fleet node labels (`host:rank1`, `host:gpu0`) are asv machines of their own."""
    nodes = ["host:rank0", "host:rank1", "host:gpu0"]
    cases = [{**c, "node": n} for n in nodes for c in run_doc["cases"]]
    fleet = {"nodes": [{"node": n, "host": "host", "rank": i, "local_rank": i, "target": "cpu",
                        "system": run_doc["system"]} for i, n in enumerate(nodes)],
             "concurrency": "every node at once"}
    path = write_doc(tmp_path / "fleet.json", run_doc, machine="host", cases=cases, fleet=fleet)
    results, html = tmp_path / "results", tmp_path / "html"
    assert main(["publish", str(path), "--repo", str(REPO), "--results", str(results), "--html", str(html)]) == 0
    for n in nodes:
        assert (results / n / "machine.json").is_file()
    assert set(json.loads((html / "index.json").read_text())["machines"]) == set(nodes)
