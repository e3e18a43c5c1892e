"""The repository holds source, docs and result documents, not binaries: a tracked file
over 1 MB must be a reference result document (JSON) or an image under docs/."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIMIT_BYTES = 1 << 20
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".svg")


def _tracked_files() -> list[Path]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: no tracked files to check")
    out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True).stdout
    return [ROOT / name for name in out.decode().split("\0") if name]


def allowed_large(path: Path) -> bool:
    """A large file may stay: an image under docs/, or a run document (JSON of schema
    `aibench.run`, with its cases) among the shipped reference results."""
    rel = path.relative_to(ROOT).as_posix()
    if rel.startswith("docs/") and path.suffix.lower() in IMAGE_SUFFIXES:
        return True
    if path.suffix == ".json" and "/reference/" in f"/{rel}":
        try:
            doc = json.loads(path.read_text())
        except ValueError:
            return False
        return isinstance(doc, dict) and doc.get("schema") == "aibench.run" and "cases" in doc
    return False


def test_no_large_binaries_are_tracked():
    large = [p for p in _tracked_files() if p.is_file() and p.stat().st_size > LIMIT_BYTES]
    offenders = [f"{p.relative_to(ROOT)} ({p.stat().st_size / 1e6:.1f} MB)" for p in large if not allowed_large(p)]
    assert not offenders, f"tracked files over 1 MB that are not reference results or docs images: {offenders}"


def test_the_rule_refuses_a_wheel_and_keeps_a_reference():
    """The rule itself: a wheel (or any other binary) is refused, a reference document kept."""
    wheel = ROOT / "examples/cluster/pkg-1.0-py3-none-any.whl"
    assert not allowed_large(wheel)
    refs = [p for p in _tracked_files() if p.suffix == ".json" and "/reference/" in f"/{p.relative_to(ROOT).as_posix()}"]
    assert refs, "no reference result documents found"
    assert all(allowed_large(p) for p in refs)
    assert allowed_large(ROOT / "docs/img/x.png") and not allowed_large(ROOT / "docs/x.bin")
