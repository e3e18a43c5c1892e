import json

import pytest

from aibench.results import (SCHEMA_VERSION, CaseResult, Metric, ResultWriter, RunDocument, Samples, Validation,
                             write_atomic)


def _doc():
    return RunDocument(command=["aibench", "run"], machine="m1", tier="quick", targets=["cpu"],
                       system={"cpu": {"model": "x"}}, aibench={"version": "0", "commit": None})


def _case(i=0):
    return CaseResult(suite="gemm", case_id=f"{i}x1x1-fp32", params={"m": i, "n": 1, "k": 1, "dtype": "fp32"},
                      target="cpu", impl="aibench", status="passed",
                      metrics={"tflops": Metric(1.5, "TFLOP/s", True)}, stats=Samples([1e-3]),
                      validation=Validation("passed", 1e-7, 1e-5))


def test_run_document_round_trips(tmp_path):
    doc = _doc()
    doc.cases = [_case(1), _case(2)]
    path = tmp_path / "run.json"
    write_atomic(path, doc.to_dict())
    back = RunDocument.load(path)
    assert back.to_dict() == doc.to_dict()
    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION


def test_run_document_matches_json_schema(tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    from importlib.resources import files

    schema = json.loads(files("aibench").joinpath("schema/run.schema.json").read_text())
    doc = _doc()
    doc.cases = [_case(1)]
    jsonschema.validate(json.loads(json.dumps(doc.to_dict())), schema)
    bad = doc.to_dict()
    bad["cases"][0]["status"] = "great"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_wrong_schema_is_refused(tmp_path):
    d = _doc().to_dict()
    d["schema_version"] = 999
    with pytest.raises(ValueError, match="schema version"):
        RunDocument.from_dict(d)


def test_writer_keeps_file_valid_after_every_case(tmp_path):
    path = tmp_path / "r" / "run.json"
    w = ResultWriter(path, _doc())
    assert json.loads(path.read_text())["cases"] == []
    w.add(_case(1))
    w.add(_case(2))
    assert [c["case_id"] for c in json.loads(path.read_text())["cases"]] == ["1x1x1-fp32", "2x1x1-fp32"]
    w.finish("complete")
    assert json.loads(path.read_text())["status"] == "complete"
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_non_finite_numbers_are_written_as_null(tmp_path):
    path = tmp_path / "x.json"
    write_atomic(path, {"a": float("nan"), "b": [float("inf"), 1.0]})
    assert json.loads(path.read_text()) == {"a": None, "b": [None, 1.0]}


def test_run_documents_are_created_with_the_usual_permissions(tmp_path):
    import os
    import stat

    from aibench.results import write_atomic

    umask = os.umask(0o022)
    try:
        write_atomic(tmp_path / "run.json", {"a": 1})
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "run.json").stat().st_mode) == 0o644
