"""The one way to read a document that someone else may have written: run documents
(JSON), acceptance reports (report.json) and acceptance specs (TOML, with includes).

Every read is bounded in size and nesting depth and validated before use; anything
malformed raises UsageError (one line, exit 2), never a traceback.
"""

from __future__ import annotations

import glob
import importlib.resources
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
