"""The run document: one JSON file per run, written atomically after every case.

Schema (version SCHEMA_VERSION, described field by field in docs/result-schema.md and
checked by src/aibench/schema/run.schema.json):

    {schema, schema_version, aibench{version, commit}, run_id, started_at, finished_at,
     status (running|complete|interrupted|failed), ended_by, command[], machine, tier,
     targets[], system{...fingerprint...}, fleet{...} | null, cases[ CaseResult ]}
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from .registry import context_keys
from .safety import redact_url
from .stats import Summary, summarize

SCHEMA_NAME = "aibench.run"
SCHEMA_VERSION = 1

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class Metric:
    value: float
    unit: str
    higher_is_better: bool


# Why sampling stopped (Samples.stopped_by): the harness's rule (harness.measure): the 95%
# CI of the median within the target, the time budget, the sample cap, or a call so slow
# that a few samples were all there was time for; a fixed count of iterations (the
# interconnect's IMB-style count) or a time cap; a time-based window (storage, object
# store); or a tool that sampled by its own rule (pytest-benchmark).
STOPPED_BY = ("ci", "budget", "max_samples", "slow_call", "iterations", "time_cap", "time", "external")


@dataclass
class Samples:
    """What one measurement keeps: every sample in order, how they were taken, and their
    summary. A sample is seconds per operation, the mean over `number` back-to-back
    operations, unless `what` says what else it is (a window of the weakest link)."""

    samples_s: list[float]
    number: int = 1  # operations per sample
    warmup_reps: int = 0
    stopped_by: str = "ci"  # one of STOPPED_BY
    low_confidence: bool = False  # few samples of a slow call: the median is known only roughly
    what: str | None = None
    # Figures a suite keeps beside the samples (per-rank times, stalled intervals), by name.
    extra: dict[str, Any] = field(default_factory=dict)
    # The statistics of every sample taken; given when samples_s keeps only some of them.
    summary: Summary | None = None

    def __post_init__(self):
        if self.stopped_by not in STOPPED_BY:
            raise ValueError(f"stopped_by {self.stopped_by!r} is not one of {', '.join(STOPPED_BY)}")
        if self.summary is None:
            window = (self.extra.get("interleave") or {}).get("window_samples", 1)
            self.summary = summarize(self.samples_s, window)

    def to_dict(self) -> dict:
        return {"number": self.number, "warmup_reps": self.warmup_reps, "stopped_by": self.stopped_by,
                "low_confidence": self.low_confidence, "what": self.what, **self.summary.to_dict(),
                "samples_s": list(self.samples_s), **self.extra}

    @classmethod
    def from_dict(cls, d: dict) -> "Samples":
        """Samples as stored; schema-1 documents before 0.2 wrote `sample` for `what` and
        other stop reasons for windows (`pytest-benchmark`): both are read."""
        d = dict(d)
        summary_keys = set(Summary.__dataclass_fields__)
        known = {"number", "warmup_reps", "stopped_by", "low_confidence", "what", "samples_s", "ci95_rel_halfwidth",
                 "sample"} | summary_keys
        stopped_by = d.get("stopped_by") if d.get("stopped_by") in STOPPED_BY else "external"
        samples = [float(x) for x in (d.get("samples_s") or []) if isinstance(x, (int, float))]
        have_summary = all(isinstance(d.get(k), (int, float)) and not isinstance(d.get(k), bool)
                           for k in summary_keys)
        if not samples and not have_summary:
            raise ValueError("stats has neither samples_s nor a summary")
        summary = Summary(**{k: d[k] for k in Summary.__dataclass_fields__}) if have_summary else None
        return cls(samples_s=samples, number=int(d.get("number") or 1), warmup_reps=int(d.get("warmup_reps") or 0),
                   stopped_by=stopped_by, low_confidence=bool(d.get("low_confidence")),
                   what=d.get("what") or d.get("sample"), extra={k: v for k, v in d.items() if k not in known},
                   summary=summary)


@dataclass
class Validation:
    status: str  # passed | failed | skipped
    max_rel_error: float | None = None
    tolerance: float | None = None
    reason: str | None = None


@dataclass(frozen=True)
class ContextKey:
    """One thing besides the params that makes two cases the same case, as a suite declares
    it (Suite.context_keys): `text(impl_detail, params)` is what the case's key shows of it
    (e.g. "source=created:ext4"), or None where it does not apply to the case."""

    name: str
    text: Callable[[dict[str, Any], dict[str, Any]], str | None]


@dataclass
class CaseResult:
    suite: str
    case_id: str
    params: dict[str, Any]
    target: str
    impl: str
    status: str  # passed | failed | skipped (the case's outcome)
    metrics: dict[str, Metric] = field(default_factory=dict)
    stats: Samples | None = None  # every sample and its summary
    validation: Validation | None = None
    percent_of_peak: float | None = None
    peak: dict[str, Any] | None = None  # {value, unit, source}
    bound: dict[str, Any] | None = None  # {metric, value, unit, source, refused}: Suite.check_bound
    impl_detail: dict[str, Any] = field(default_factory=dict)  # library version, ISA path...
    telemetry: dict[str, Any] | None = None
    power: dict[str, Any] | None = None  # the --power window (energy/window.py), or why none
    health: dict[str, Any] | None = None  # the timed window's health (health.py), or why unknown
    error: str | None = None
    started_at: str | None = None
    duration_s: float | None = None
    node: str | None = None  # fleet runs: the node (fleet.py's label) that measured it

    def to_dict(self) -> dict:
        d = asdict(self)
        d["stats"] = self.stats.to_dict() if self.stats is not None else None
        return d

    def key(self) -> tuple[str, str, str, str]:
        """What makes cases of two runs (or two nodes) the same case: suite, case, target
        kind (cuda:0 and cuda:3 are the same kind) and impl. What changes a figure's meaning
        without being a parameter goes into the case element, as the suite declares it
        (Suite.context_keys: the storage source, an embedded or a real object-store
        endpoint, a kernel's thread count when the user set it)."""
        detail, params = self.impl_detail or {}, self.params or {}
        context = [text for key in context_keys(self.suite) if (text := key.text(detail, params)) is not None]
        case = f"{self.case_id} [{', '.join(context)}]" if context else self.case_id
        return (self.suite, case, self.target.split(":")[0], self.impl)

    def headline(self) -> tuple[str, Metric] | None:
        """The metric a case is judged by: its first higher-is-better metric."""
        for name, metric in self.metrics.items():
            if metric.higher_is_better:
                return name, metric
        return None

    @classmethod
    def from_dict(cls, d: dict) -> "CaseResult":
        """A case as stored; ValueError (one line) when it is not one. A metric stored as
        null (a NaN or infinity when written) is left out: there is no figure."""
        if not isinstance(d, dict):
            raise ValueError("a case is not an object")
        d = dict(d)
        where = f"case {d.get('case_id')!r}"
        for key in ("suite", "case_id", "target", "impl"):
            if not isinstance(d.get(key), str):
                raise ValueError(f"{where}: {key} is not a string")
        if d.get("status") not in (PASSED, FAILED, SKIPPED):
            raise ValueError(f"{where}: status {d.get('status')!r} is not passed, failed or skipped")
        if not isinstance(d.get("params"), dict):
            raise ValueError(f"{where}: params is not an object")
        metrics = {}
        for name, m in (d.get("metrics") or {}).items():
            if not isinstance(m, dict) or not isinstance(m.get("unit"), str) \
                    or not isinstance(m.get("higher_is_better"), bool):
                raise ValueError(f"{where}: metric {name!r} is not {{value, unit, higher_is_better}}")
            value = m.get("value")
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{where}: metric {name!r} has a value that is not a number ({value!r})")
            metrics[name] = Metric(float(value), m["unit"], m["higher_is_better"])
        d["metrics"] = metrics
        for key in ("percent_of_peak", "duration_s"):
            if d.get(key) is not None and (isinstance(d[key], bool) or not isinstance(d[key], (int, float))):
                raise ValueError(f"{where}: {key} is not a number")
        if d.get("stats") is not None:
            if not isinstance(d["stats"], dict):
                raise ValueError(f"{where}: stats is not an object")
            for key in ("median", "ci95_low", "ci95_high", "cv", "n"):
                v = d["stats"].get(key)
                if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                    raise ValueError(f"{where}: stats.{key} is not a number")
            try:
                d["stats"] = Samples.from_dict(d["stats"])
            except (TypeError, ValueError) as e:
                raise ValueError(f"{where}: stats: {e}") from None
        for key in ("impl_detail", "bound", "health"):
            if d.get(key) is not None and not isinstance(d[key], dict):
                raise ValueError(f"{where}: {key} is not an object")
        if d.get("validation") is not None:
            if not isinstance(d["validation"], dict):
                raise ValueError(f"{where}: validation is not an object")
            d["validation"] = Validation(**d["validation"])
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class RunDocument:
    command: list[str]
    machine: str
    tier: str
    targets: list[str]
    system: dict[str, Any]
    aibench: dict[str, Any]
    cases: list[CaseResult] = field(default_factory=list)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started_at: str = field(default_factory=now_iso)
    finished_at: str | None = None
    status: str = "running"  # running | complete | interrupted | failed
    fleet: dict[str, Any] | None = None  # fleet runs: {nodes: [...], concurrency} (fleet.py)
    ended_by: str | None = None  # why an interrupted or failed run ended

    def to_dict(self) -> dict:
        return {
            "schema": SCHEMA_NAME,
            "schema_version": SCHEMA_VERSION,
            "aibench": self.aibench,
            "run_id": self.run_id,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "status": self.status,
            "command": self.command,
            "machine": self.machine,
            "tier": self.tier,
            "targets": self.targets,
            "system": self.system,
            "fleet": self.fleet,
            "ended_by": self.ended_by,
            "cases": [c.to_dict() for c in self.cases],
        }

    @classmethod
    def from_dict(cls, d: dict) -> "RunDocument":
        if d.get("schema") != SCHEMA_NAME:
            raise ValueError(f"not an aibench run document (schema={d.get('schema')!r})")
        if d.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(
                f"run document schema version {d.get('schema_version')} is not the supported {SCHEMA_VERSION}"
            )
        for key, kind in (("command", list), ("machine", str), ("tier", str), ("targets", list), ("system", dict),
                          ("aibench", dict), ("cases", list), ("run_id", str), ("status", str)):
            if not isinstance(d.get(key), kind):
                raise ValueError(f"{key} is not {dict(str='a string', list='a list').get(kind.__name__, 'an object')}")
        if d.get("fleet") is not None and not isinstance(d["fleet"], dict):
            raise ValueError("fleet is not an object")
        try:
            cases = [CaseResult.from_dict(c) for c in d["cases"]]
        except TypeError as e:  # an unknown or missing field of a case or its validation
            raise ValueError(f"a case has the wrong fields: {e}") from None
        return cls(
            command=d["command"], machine=d["machine"], tier=d["tier"], targets=d["targets"],
            system=d["system"], aibench=d["aibench"],
            cases=cases,
            run_id=d["run_id"], started_at=d["started_at"], finished_at=d["finished_at"],
            status=d["status"], fleet=d.get("fleet"), ended_by=d.get("ended_by"),
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> "RunDocument":
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))


def _finite_or_none(obj):
    """JSON has no NaN/inf: write them as null so every reader can parse the file. And
    no string keeps a URL's credentials (safety.redact_url)."""
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, str):
        return redact_url(obj) if "@" in obj else obj
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_none(v) for v in obj]
    return obj


def redact_case(case: "CaseResult") -> None:
    """Credentials out of what a case shows (its error, reason and details), in place, before
    it is printed or stored."""
    if case.error:
        case.error = redact_url(case.error)
    if case.validation is not None and case.validation.reason:
        case.validation.reason = redact_url(case.validation.reason)
    case.impl_detail = _finite_or_none(case.impl_detail)


def write_atomic(path: Path, data: dict) -> None:
    """Write a run document by aibench's one way of writing (safe_write.write_file): a
    temporary file in the same directory renamed over `path`, so a reader (or a crash)
    sees the old file or the new one, never half of one. The command checked the target
    with the user's --force first (session.prepare_output); what is refused always (a link, a
    device, another user's file) is refused again at every write."""
    from .safe_write import RUN_DOCUMENT, write_file

    text = json.dumps(_finite_or_none(data), indent=1, allow_nan=False)
    write_file(path, text, RUN_DOCUMENT, force=True, flag="--output")


class ResultWriter:
    """Keeps the run document on disk current: rewritten after every finished case."""

    def __init__(self, path: Path, doc: RunDocument):
        self.path = path
        self.doc = doc
        write_atomic(self.path, self.doc.to_dict())

    def add(self, case: CaseResult) -> None:
        redact_case(case)
        self.doc.cases.append(case)
        write_atomic(self.path, self.doc.to_dict())

    def finish(self, status: str, ended_by: str | None = None) -> None:
        self.doc.status = status
        self.doc.ended_by = ended_by
        self.doc.finished_at = now_iso()
        write_atomic(self.path, self.doc.to_dict())


def close_abandoned_document(path: Path, status: str, ended_by: str) -> str | None:
    """A run document its writer could not finish (rank 0 killed, the MPI job aborted):
    mark it `status` with the reason, keeping every case. An empty placeholder (nothing
    was written) is removed. Returns what was done, or None when the document was finished."""
    try:
        if path.stat().st_size == 0:
            path.unlink()
            return f"no case finished; {path} removed"
        doc = RunDocument.load(path)
    except (OSError, ValueError):
        return None
    if doc.status != "running":
        return None
    doc.status, doc.ended_by, doc.finished_at = status, ended_by, now_iso()
    write_atomic(path, doc.to_dict())
    return f"{len(doc.cases)} finished case(s) saved in {path}, marked {status}"
