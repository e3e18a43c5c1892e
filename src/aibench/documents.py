"""The one way to read a document that someone else may have written: run documents
(JSON), acceptance reports (report.json) and acceptance specs (TOML, with includes).

Every read is bounded in size and nesting depth and validated before use; anything
malformed raises UsageError (one line, exit 2), never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import UsageError
from .results import RunDocument


def load_run(path: str | Path) -> RunDocument:
    try:
        return RunDocument.load(path)
    except FileNotFoundError:
        raise UsageError(f"no such run document: {path}") from None
    except (ValueError, KeyError, json.JSONDecodeError) as e:
        raise UsageError(f"{path} is not a readable aibench run document: {e}") from None


def find_reference(name: str) -> Path:
    """results/reference/<name>.json, else the one <name>*.json, in the current directory
    or aibench's source tree."""
    roots = [Path("results/reference"), Path(__file__).resolve().parents[2] / "results" / "reference"]
    for root in roots:
        if (root / f"{name}.json").is_file():
            return root / f"{name}.json"
        matches = sorted(root.glob(f"{name}*.json")) if root.is_dir() else []
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise UsageError(f"reference {name!r} is ambiguous: {', '.join(m.name for m in matches)}")
    known = sorted({p.stem for r in roots if r.is_dir() for p in r.glob("*.json")})
    raise UsageError(f"no reference result {name!r} (known: {', '.join(known) or 'none'})")
