"""The one way to read a document that someone else may have written: run documents
(JSON), acceptance reports (report.json) and acceptance specs (TOML, with includes).

Every read is bounded in size and nesting depth and validated before use; anything
malformed raises UsageError (one line, exit 2), never a traceback.
"""

from __future__ import annotations

import glob
import importlib.resources
import json
import os
import stat
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from .errors import UsageError
from .results import CaseResult, RunDocument

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

# Size caps: a quick run document is ~1 MiB, a full fleet run tens of MiB; a spec is a few KiB.
RUN_MAX_BYTES = 64 << 20
REPORT_MAX_BYTES = 64 << 20
SPEC_MAX_BYTES = 1 << 20
# Nesting cap (objects, arrays, tables): the deepest a run document goes is about 8.
MAX_DEPTH = 64
# The longest integer a document may hold: 20 digits is 2^64 (a byte count).
MAX_INT_DIGITS = 20
# A number is 0 or of a magnitude in [1e-100, 1e100]: what aibench measures (seconds from
# 1e-12, bytes to 1e20) is far inside, and ratios and plots of products of such numbers
# can neither overflow nor divide by a number that underflowed to 0.
MIN_MAGNITUDE, MAX_MAGNITUDE = 1e-100, 1e100


class DocumentError(ValueError):
    """A document that is not what it claims to be; str() is one line."""


# ---- bounded reading and parsing ------------------------------------------------------------


def read_bytes(path: str | os.PathLike, limit: int, what: str) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; UsageError for anything else
    (missing, a directory, a device or pipe, unreadable, too large)."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer (it is then refused as not a file).
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise UsageError(f"no such {what}: {path}") from None
    except OSError as e:
        raise UsageError(f"{path}: cannot read the {what}: {e.strerror or e}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UsageError(f"{path}: the {what} is not a regular file")
    with os.fdopen(fd, "rb") as f:
        try:
            data = f.read(limit + 1)
        except OSError as e:
            raise UsageError(f"{path}: cannot read the {what}: {e.strerror or e}") from None
    if len(data) > limit:
        raise UsageError(f"{path}: the {what} is larger than {limit >> 20} MiB")
    return data


def _reject_constant(name: str):
    raise DocumentError(f"{name} is not a number a document may hold")


def _finite_float(text: str) -> float:
    value = float(text)
    if value != 0 and not MIN_MAGNITUDE <= abs(value) <= MAX_MAGNITUDE:  # 1e999 (infinity), 5e-324
        raise DocumentError(f"the number {text[:30]} is out of range (0, or {MIN_MAGNITUDE:g} to "
                            f"{MAX_MAGNITUDE:g} in magnitude)")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise DocumentError(f"an integer of {len(text)} digits is out of range")
    return int(text)


def check_depth(obj: Any, limit: int = MAX_DEPTH) -> None:
    """DocumentError when objects and arrays nest deeper than `limit` (checked without
    recursion, so that what later walks the document recursively cannot overflow)."""
    stack = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is None:
            continue
        if depth > limit:
            raise DocumentError(f"nested deeper than {limit} levels")
        stack.extend((child, depth + 1) for child in children)


def parse_json(data: bytes) -> Any:
    """A JSON document of finite numbers, nested at most MAX_DEPTH deep; DocumentError else."""
    try:
        obj = json.loads(data.decode("utf-8"), parse_constant=_reject_constant, parse_float=_finite_float,
                         parse_int=_bounded_int)
    except RecursionError:  # the parser's own recursion (thousands of nested arrays)
        raise DocumentError(f"nested deeper than {MAX_DEPTH} levels") from None
    except UnicodeDecodeError as e:
        raise DocumentError(f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    except DocumentError:
        raise
    except ValueError as e:
        raise DocumentError(f"not valid JSON: {e}") from None
    check_depth(obj)
    return obj


def parse_toml(data: bytes) -> dict[str, Any]:
    """A TOML document nested at most MAX_DEPTH deep; DocumentError else."""
    try:
        obj = tomllib.loads(data.decode("utf-8"))
    except RecursionError:  # tomllib is recursive descent: thousands of nested arrays
        raise DocumentError(f"nested deeper than {MAX_DEPTH} levels") from None
    except UnicodeDecodeError as e:
        raise DocumentError(f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    except tomllib.TOMLDecodeError as e:
        raise DocumentError(f"not valid TOML: {e}") from None
    check_depth(obj)
    return obj


# ---- shapes: the fields aibench reads, and their types --------------------------------------
# A shape is a type (bool is never taken for a number), None (null), a frozenset of the
# values allowed, a list [item shape], a dict {key: shape} (a key ending in "?" may be
# absent; other keys are not checked; the key "*" is the shape of every value), or a tuple
# of alternatives.

NUMBER = (int, float)
SCALAR = (str, int, float, bool, None)
_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", None: "null",
          list: "a list", dict: "an object"}


def _name(shape: Any) -> str:
    if shape == SCALAR:
        return "a plain value (not a list or an object)"
    if isinstance(shape, frozenset):
        return "one of " + ", ".join(sorted(map(str, shape)))
    if isinstance(shape, tuple):
        return " or ".join(dict.fromkeys(_name(s) for s in shape))
    if isinstance(shape, list):
        return "a list"
    if isinstance(shape, dict):
        return "an object"
    return _NAMES.get(shape, getattr(shape, "__name__", str(shape)))


def _fits(value: Any, shape: Any) -> bool:
    if shape is None:
        return value is None
    if isinstance(shape, tuple):
        return any(_fits(value, s) for s in shape)
    if isinstance(shape, frozenset):
        return isinstance(value, str) and value in shape
    if isinstance(shape, list):
        return isinstance(value, list)
    if isinstance(shape, dict):
        return isinstance(value, dict)
    if isinstance(value, bool):
        return shape is bool
    return isinstance(value, shape) or (shape is float and isinstance(value, int))


def check_shape(value: Any, shape: Any, where: str) -> None:
    """DocumentError naming the first field of `value` that does not fit `shape`."""
    if not _fits(value, shape):
        what = repr(value)[:40] if isinstance(shape, frozenset) and isinstance(value, str) else \
            _name(type(value) if value is not None else None)
        raise DocumentError(f"{where or 'the document'} is not {_name(shape)} (it is {what})")
    if isinstance(shape, tuple):  # the alternative it fits, checked inside
        shape = next(s for s in shape if _fits(value, s))
    if isinstance(shape, list):
        for i, item in enumerate(value):
            check_shape(item, shape[0], f"{where}[{i}]")
    elif isinstance(shape, dict):
        for key, inner in shape.items():
            if key == "*":
                for k, v in value.items():
                    check_shape(v, inner, _field(where, k))
            elif key.endswith("?"):
                if key[:-1] in value:
                    check_shape(value[key[:-1]], inner, _field(where, key[:-1]))
            elif key not in value:
                raise DocumentError(f"{where or 'the document'} has no {key}")
            else:
                check_shape(value[key], inner, _field(where, key))


def _field(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _nullable(shape: dict) -> tuple:
    return (None, shape)


# What reports, plots, asv's machine.json and the hardware checks read of the fingerprint.
SYSTEM_SHAPE = {
    "hostname?": SCALAR,
    "cpu?": _nullable({"model?": SCALAR, "arch?": SCALAR, "cores?": SCALAR, "best_isa?": SCALAR}),
    "gpus?": _nullable({"devices?": (None, [{"name?": str}]), "nvidia_driver?": SCALAR,
                        "runtime_version?": SCALAR}),
    "mpi?": _nullable({"library?": SCALAR, "nodes?": (int, None)}),
    "memory?": _nullable({"total_bytes?": (int, None)}),
    "os?": _nullable({"system?": SCALAR, "release?": SCALAR}),
    "python?": _nullable({"version?": SCALAR}),
    "blas?": (None, [{"internal_api?": SCALAR, "version?": SCALAR}]),
    "nics?": (None, [{"name?": SCALAR, "kind?": SCALAR, "speed_gbps?": (NUMBER, None)}]),
}
# Of a run document, what RunDocument.from_dict and CaseResult.from_dict do not check.
RUN_SHAPE = {
    "command": [str], "targets": [str], "started_at": str, "finished_at": (str, None), "ended_by?": (str, None),
    "aibench": {"version?": SCALAR, "commit?": SCALAR},
    "system": SYSTEM_SHAPE,
    "fleet?": _nullable({"nodes": [{"node": str, "host?": (str, None), "target?": (str, None),
                                    "system?": _nullable(SYSTEM_SHAPE)}],
                         "concurrency": str}),
    "cases": [{
        "params": {"*": SCALAR},
        "impl_detail?": _nullable({"device_kind?": SCALAR, "topology?": _nullable({"hosts?": (None, list)})}),
        "metrics?": (None, dict),  # each metric: CaseResult.from_dict
        "validation?": _nullable({"status": frozenset({"passed", "failed", "skipped"}),
                                  "max_rel_error?": (NUMBER, None), "tolerance?": (NUMBER, None),
                                  "reason?": (str, None)}),
        "peak?": _nullable({"value": NUMBER}),
        "telemetry?": (None, dict), "power?": (None, dict), "error?": (str, None), "node?": (str, None),
        "started_at?": (str, None),
    }],
}


def _check_params(cases: list[dict[str, Any]]) -> None:
    """A case of a suite this aibench has holds its parameters with values the suite itself
    would give them (plots and asv read them by name and type); one without some of them
    is not drawn."""
    from .suites import all_suites

    suites = all_suites()
    for i, case in enumerate(cases):
        suite = suites.get(case.get("suite"))
        if suite is None:  # a plugin's suite that is not installed here: its params are only shown
            continue
        for name, param in suite.params.items():
            if name not in case["params"]:
                continue
            where = f"cases[{i}].params.{name}"
            value = case["params"][name]
            text = str(value).lower() if isinstance(value, bool) else str(value)
            try:
                parsed = param.parse(text)
            except (ValueError, UsageError):
                parsed = None
            if parsed is None or type(parsed) is not type(value) or parsed != value:
                raise DocumentError(f"{where} = {text[:40]!r} is not a value of the {suite.name} suite")


def has_suite_params(case: CaseResult) -> bool:
    """Whether a case holds every parameter its suite declares (a hand-made or a foreign
    document may not): plots and asv place a case by them, and leave out one without."""
    from .suites import all_suites

    suite = all_suites().get(case.suite)
    return suite is None or set(suite.params) <= set(case.params)


def run_from_json(obj: Any) -> RunDocument:
    """A run document from parsed JSON, its shape checked first; DocumentError else."""
    if not isinstance(obj, dict) or obj.get("schema") != "aibench.run":
        raise DocumentError("not an aibench run document (no \"schema\": \"aibench.run\")")
    check_shape(obj, RUN_SHAPE, "")
    if not obj["targets"]:
        raise DocumentError("targets is empty")
    try:
        datetime.fromisoformat(obj["started_at"])
    except ValueError:
        raise DocumentError(f"started_at {obj['started_at'][:40]!r} is not a time") from None
    try:
        doc = RunDocument.from_dict(obj)
    except (ValueError, TypeError, KeyError) as e:
        raise DocumentError(str(e).splitlines()[0] if str(e) else type(e).__name__) from None
    _check_params(obj["cases"])
    return doc


def load_run(path: str | Path) -> RunDocument:
    """A run document from a file of at most RUN_MAX_BYTES; UsageError (one line) for
    anything that is not a valid one."""
    data = read_bytes(path, RUN_MAX_BYTES, "run document")
    try:
        return run_from_json(parse_json(data))
    except DocumentError as e:
        raise UsageError(f"{path} is not a readable aibench run document: {e}") from None


# ---- acceptance reports -----------------------------------------------------------------------

_INPUT = {"file": str, "sha256": str}
# What `accept --verify` reads of report.json, and what renders report.md and report.html.
REPORT_SHAPE = {
    "schema": str, "aibench": SCALAR,
    "spec": {"name": str, "description": (str, None)},
    "accepted": bool, "rejected_nodes": [str],
    "nodes": [{"node": str, "accepted": bool, "hardware_problems": [str],
               "identity": {"gpus?": (None, list), "nics?": (None, [str]), "software?": (None, {"*": SCALAR})},
               "checks": [{"check": str, "suite": str, "verdict": str, "case": (str, None), "value": (NUMBER, None),
                           "unit": (str, None), "threshold": str, "margin": (NUMBER, None), "source": str,
                           "reason": str, "limit": (NUMBER, None)}],
               "retries?": [{"check": str, "case": (str, None), "verdict": str,
                             "tries": [{"run": str, "status": str, "value": (NUMBER, None),
                                        "interval": (None, [NUMBER]), "health": (str, None)}]}]}],
    "commands": [str],
    "inputs": {"runs": [_INPUT], "specs": [_INPUT], "references?": [{"name": str, **_INPUT}]},
}


def load_report(path: Path) -> dict[str, Any]:
    """An acceptance report (report.json) checked against REPORT_SHAPE; every input it names
    is a file directly in inputs/ beside it. UsageError (one line) for anything else."""
    data = read_bytes(path, REPORT_MAX_BYTES, "acceptance report")
    try:
        report = parse_json(data)
        if not isinstance(report, dict) or report.get("schema") != "aibench.acceptance":
            raise DocumentError("not an aibench acceptance report (no \"schema\": \"aibench.acceptance\")")
        check_shape(report, REPORT_SHAPE, "")
        if not report["inputs"]["specs"]:
            raise DocumentError("inputs.specs is empty")
        for entry in [*report["inputs"]["runs"], *report["inputs"]["specs"], *report["inputs"].get("references", [])]:
            folder, _, name = entry["file"].partition("/")
            if folder != "inputs" or not name or "/" in name or "\\" in name or name in (".", ".."):
                raise DocumentError(f"input {entry['file'][:60]!r} is not a file in inputs/")
    except DocumentError as e:
        raise UsageError(f"{path} is not a readable acceptance report: {e}") from None
    return report


def reference_dir() -> Path:
    """The reference run documents shipped inside the package (aibench/reference/), found
    through importlib.resources so that an installed aibench finds them from any directory."""
    return Path(str(importlib.resources.files("aibench") / "reference"))


def find_reference(name: str) -> Path:
    """The shipped reference <name>.json, else the one reference whose name starts with <name>."""
    if "/" in name or "\\" in name or name.startswith("."):  # a name, never a path out of the directory
        raise UsageError(f"reference {name!r}: give the name of a shipped reference, not a path")
    root = reference_dir()
    if (root / f"{name}.json").is_file():
        return root / f"{name}.json"
    matches = sorted(root.glob(f"{glob.escape(name)}*.json"))
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise UsageError(f"reference {name!r} is ambiguous: {', '.join(m.name for m in matches)}")
    known = sorted(p.stem for p in root.glob("*.json"))
    raise UsageError(f"no reference result {name!r} (known: {', '.join(known) or 'none'})")
