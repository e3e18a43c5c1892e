"""The run document: one JSON file per run, written atomically after every case.

Schema (version SCHEMA_VERSION, described field by field in docs/result-schema.md and
checked by src/aibench/schema/run.schema.json):

    {schema, schema_version, aibench{version, commit}, run_id, started_at, finished_at,
     status (running|complete|interrupted), command[], machine, tier, targets[],
     system{...fingerprint...}, fleet{...} | null, cases[ CaseResult ]}
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

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


@dataclass
class Validation:
    status: str  # passed | failed | skipped
    max_rel_error: float | None = None
    tolerance: float | None = None
    reason: str | None = None


@dataclass
class CaseResult:
    suite: str
    case_id: str
    params: dict[str, Any]
    target: str
    impl: str
    status: str  # passed | failed | skipped (the case's outcome)
    metrics: dict[str, Metric] = field(default_factory=dict)
    stats: dict[str, Any] | None = None  # Measurement.to_dict(): summary and every sample
    validation: Validation | None = None
    percent_of_peak: float | None = None
    peak: dict[str, Any] | None = None  # {value, unit, source}
    impl_detail: dict[str, Any] = field(default_factory=dict)  # library version, ISA path...
    telemetry: dict[str, Any] | None = None
    power: dict[str, Any] | None = None  # the --power window (energy/window.py), or why none
    error: str | None = None
    started_at: str | None = None
    duration_s: float | None = None
    node: str | None = None  # fleet runs: the node (fleet.py's label) that measured it

    def to_dict(self) -> dict:
        return asdict(self)

    def key(self) -> tuple[str, str, str, str]:
        """What makes cases of two runs (or two nodes) the same case: suite, case, target
        kind (cuda:0 and cuda:3 are the same kind) and impl."""
        return (self.suite, self.case_id, self.target.split(":")[0], self.impl)

    def headline(self) -> tuple[str, Metric] | None:
        """The metric a case is judged by: its first higher-is-better metric."""
        for name, metric in self.metrics.items():
            if metric.higher_is_better:
                return name, metric
        return None

    @classmethod
    def from_dict(cls, d: dict) -> "CaseResult":
        d = dict(d)
        d["metrics"] = {k: Metric(**v) for k, v in (d.get("metrics") or {}).items()}
        if d.get("validation") is not None:
            d["validation"] = Validation(**d["validation"])
        return cls(**d)


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
    status: str = "running"
    fleet: dict[str, Any] | None = None  # fleet runs: {nodes: [...], concurrency} (fleet.py)

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
        return cls(
            command=d["command"], machine=d["machine"], tier=d["tier"], targets=d["targets"],
            system=d["system"], aibench=d["aibench"],
            cases=[CaseResult.from_dict(c) for c in d["cases"]],
            run_id=d["run_id"], started_at=d["started_at"], finished_at=d["finished_at"],
            status=d["status"], fleet=d.get("fleet"),
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> "RunDocument":
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))


def _finite_or_none(obj):
    """JSON has no NaN/inf: write them as null so every reader can parse the file."""
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_none(v) for v in obj]
    return obj


def write_atomic(path: Path, data: dict) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over `path`:
    a reader (or a crash) sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # as open() would create it (mkstemp makes it private)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(_finite_or_none(data), f, indent=1, allow_nan=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class ResultWriter:
    """Keeps the run document on disk current: rewritten after every finished case."""

    def __init__(self, path: Path, doc: RunDocument):
        self.path = path
        self.doc = doc
        write_atomic(self.path, self.doc.to_dict())

    def add(self, case: CaseResult) -> None:
        self.doc.cases.append(case)
        write_atomic(self.path, self.doc.to_dict())

    def finish(self, status: str) -> None:
        self.doc.status = status
        self.doc.finished_at = now_iso()
        write_atomic(self.path, self.doc.to_dict())
