"""The run document's three descriptions agree: the code (results.py), the JSON schema
(schema/run.schema.json) and docs/result-schema.md. A field added to one and not the
others fails here."""

import dataclasses
import json
import re
from pathlib import Path

import jsonschema
import pytest

from aibench.results import STOPPED_BY, CaseResult, Metric, RunDocument, Samples, Validation

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "src/aibench/schema/run.schema.json").read_text())
DOC = (ROOT / "docs/result-schema.md").read_text()
# Every name written in code font in the doc (`{status, max_rel_error, ...}` names four).
DOCUMENTED = {word for span in re.findall(r"`([^`]+)`", DOC) for word in re.findall(r"[a-z0-9_]+", span)}


def _case() -> CaseResult:
    return CaseResult(suite="gemm", case_id="8x8x8-fp32", params={"m": 8}, target="cpu", impl="aibench",
                      status="passed", metrics={"tflops": Metric(1.0, "TFLOP/s", True)},
                      stats=Samples([1e-3, 2e-3, 3e-3], number=4, warmup_reps=2, extra={"stalled_intervals": 0}),
                      validation=Validation("passed", 0.0, 1e-6))


def _doc() -> dict:
    doc = RunDocument(command=["aibench"], machine="m", tier="quick", targets=["cpu"], system={},
                      aibench={"version": "0", "commit": None, "plugins": []}, cases=[_case()])
    return doc.to_dict()


def test_a_written_document_validates_against_the_schema():
    jsonschema.validate(_doc(), SCHEMA)


@pytest.mark.parametrize("keys, where", [
    (lambda: _doc().keys(), "the run document"),
    (lambda: _doc()["cases"][0].keys(), "a case"),
    (lambda: [k for k in _doc()["cases"][0]["stats"] if k != "stalled_intervals"], "stats"),
    (lambda: [f.name for f in dataclasses.fields(Validation)], "validation"),
    (lambda: [f.name for f in dataclasses.fields(Metric)], "a metric"),
])
def test_every_field_the_code_writes_is_documented(keys, where):
    missing = [k for k in keys() if k not in DOCUMENTED]
    assert not missing, f"{where}: {missing} not in docs/result-schema.md"


def test_every_field_the_code_writes_is_in_the_schema():
    case_props = SCHEMA["$defs"]["case"]["properties"]
    assert set(_doc()) <= set(SCHEMA["properties"])
    assert set(_doc()["cases"][0]) <= set(case_props)
    samples = SCHEMA["$defs"]["samples"]
    assert set(samples["required"]) == {k for k in _doc()["cases"][0]["stats"] if k != "stalled_intervals"}


def test_stop_reasons_agree():
    assert SCHEMA["$defs"]["samples"]["properties"]["stopped_by"]["enum"] == list(STOPPED_BY)
    assert all(f"`{s}`" in DOC for s in STOPPED_BY)
    with pytest.raises(ValueError):
        Samples([1.0], stopped_by="whenever")


def test_a_document_round_trips_and_old_stats_are_read():
    doc = _doc()
    again = RunDocument.from_dict(json.loads(json.dumps(doc))).to_dict()
    assert again == doc
    old = dict(doc["cases"][0]["stats"], sample="seconds per read", stopped_by="pytest-benchmark")
    del old["what"], old["low_confidence"]
    s = Samples.from_dict(old)
    assert s.what == "seconds per read" and s.stopped_by == "external" and s.summary.n == 3
