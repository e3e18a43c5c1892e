"""Acceptance spec files: what a node must deliver, as TOML (docs/accept.md).

    spec_version = 1
    name = "nvidia-h200-sxm"
    description = "..."
    tier = "quick"                 # the tier `aibench accept` runs when given no run documents
    target = "cuda"                # the checks' default target kind
    include = ["nic-400g", "nvme-gen5.toml"]   # shipped names, or paths relative to this file

    [hardware]                     # the node the spec is for; a run on other hardware fails
    gpu_name = "H200(?! NVL)"      # regular expression, searched in every GPU's name
    min_gpus = 1

    [[check]]
    id = "gemm-bf16"
    suite = "gemm"
    case = "*"                     # glob over the case id (default "*")
    impl = "*"                     # glob over the impl (default "*")
    params = { dtype = "bf16", m = ">=4096" }   # exact value, glob, comparison or list
    select = "best"                # best: the best matching figure must pass; each: every one
    metric = "tflops"
    fraction_of_peak = 0.6         # exactly one threshold: min/max (+ unit), fraction_of_peak,
                                   # ratio_to_reference (+ reference), ratio_to_fleet_median
    source = "where the figure comes from"
    health = { throttle_s_max = 0 }   # optional: replaces the spec's `health` for this check
    spread = { max = 0.05 }           # optional: replaces the spec's `spread` for this check

A spec (any file of it) may set `health = { throttle_s_max = 0, ecc_new_max = 0,
clock_min_fraction = 0.9 }` (what each case's timed window must have been: health.py) and
`spread = { max = 0.05 }` (how far each device of a node may fall short of the node's best:
spread.py) for its checks; a check's own table replaces the file's.

Loading validates everything and raises SpecError with one line per problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..documents import SPEC_MAX_BYTES, DocumentError, parse_toml, read_bytes
from ..errors import UsageError
from ..health import REQUIREMENT_KEYS as HEALTH_KEYS
from .lint import lint_spec
from .model import THRESHOLD_KEYS, Check, Spec, param_matches  # noqa: F401 - param_matches: importable here too

SPEC_VERSION = 1
SHIPPED_DIR = Path(__file__).resolve().parent / "specs"
TIERS = ("quick", "standard", "full")
TARGET_KINDS = ("cpu", "cuda", "jax", "*")
SELECT = ("best", "each")
HARDWARE_KEYS = {"gpu_name": str, "min_gpus": int, "cpu_model": str, "cpu_arch": str, "min_nodes": int,
                 "min_nics": int, "nic_min_gbps": (int, float)}
# Requirements a spec file sets for its checks and a check may replace with its own.
REQUIREMENT_TABLES = ("health", "spread")
SPREAD_KEYS = ("max",)
CHECK_KEYS = {"id", "suite", "case", "impl", "target", "params", "select", "metric", "unit", "source",
              "reference", *THRESHOLD_KEYS, *REQUIREMENT_TABLES}
TOP_KEYS = {"spec_version", "name", "description", "tier", "target", "include", "hardware", "check",
            *REQUIREMENT_TABLES}
# What one spec may load with its includes (each file at most SPEC_MAX_BYTES): the shipped
# specs use at most 5 files, 3 levels deep.
MAX_INCLUDE_DEPTH = 32
MAX_SPEC_FILES = 64
MAX_SPEC_TOTAL_BYTES = 4 << 20
# A ratio_to_reference / ratio_to_fleet_median above this is a typo (90 for 0.9), not a
# node twice its reference: refused at load.
MAX_RATIO = 2.0


class SpecError(Exception):
    """A spec that cannot be used; str() is one line per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


class SpecLimitError(SpecError):
    """A cap on the includes was reached: the load stops, and the problem is reported as it is."""


def shipped_specs() -> dict[str, Path]:
    return {p.stem: p for p in sorted(SHIPPED_DIR.glob("*.toml"))}


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long, a NUL byte
        return False


def resolve(name: str, relative_to: Path | None = None) -> Path:
    """A shipped spec name, or a path: the one given on the command line (relative to the
    cwd), or an include's, relative to the including file and inside its directory tree."""
    if relative_to is None:
        candidates = [Path(name)]
    else:
        home = relative_to.parent.resolve()
        candidates = [home / name, home / f"{name}.toml"]
        for c in candidates:
            if _is_file(c) and not c.resolve().is_relative_to(home):
                raise SpecError([f"{c.resolve()} is outside {home} (an include stays in its spec's directory)"])
    for c in candidates:
        if _is_file(c):
            return c
    shipped = shipped_specs()
    if name in shipped:
        return shipped[name]
    raise SpecError([f"no spec {name!r}: not a file, and not a shipped spec ({', '.join(shipped)})"])


def _validate_requirements(raw: dict[str, Any], where: str, problems: list[str]) -> None:
    """A `health` or `spread` table: known keys, each a number in its range (a percentage
    written for a fraction, 5 for 0.05, is refused: it would pass every node)."""
    ranges = {"throttle_s_max": (0, None, "seconds, 0 or more"), "ecc_new_max": (0, None, "errors, 0 or more"),
              "clock_min_fraction": (0, 1, "a fraction in (0, 1], 0.9 for 90%"),
              "max": (0, 1, "a fraction in (0, 1), 0.05 for 5%")}
    for table, known in (("health", HEALTH_KEYS), ("spread", SPREAD_KEYS)):
        if table not in raw:
            continue
        if not isinstance(raw[table], dict):
            problems.append(f"{where}: {table} must be a table ({table} = {{ {known[0]} = ... }})")
            continue
        for key, value in raw[table].items():
            if key not in known:
                problems.append(f"{where}: unknown {table} key {key!r} (known: {', '.join(known)})")
                continue
            low, high, what = ranges[key]
            ok = not isinstance(value, bool) and isinstance(value, (int, float)) and value == value
            if ok and key == "clock_min_fraction":
                ok = low < value <= high
            elif ok and key == "max":
                ok = low < value < high
            elif ok:
                ok = low <= value < float("inf")
            if not ok:
                problems.append(f"{where}: {table}.{key} must be {what} (got {value!r})")


def _validate_check(raw: Any, where: str, problems: list[str]) -> None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: a check must be a table")
        return
    for key in raw:
        if key not in CHECK_KEYS:
            problems.append(f"{where}: unknown key {key!r} (known: {', '.join(sorted(CHECK_KEYS))})")
    for key in ("id", "suite", "metric", "source"):
        if not isinstance(raw.get(key), str) or not raw.get(key).strip():
            problems.append(f"{where}: {key!r} is required (a non-empty string)")
    for key in ("case", "impl", "target", "unit", "reference"):
        if key in raw and not isinstance(raw[key], str):
            problems.append(f"{where}: {key!r} must be a string")
    if "target" in raw and isinstance(raw["target"], str) and raw["target"] not in TARGET_KINDS:
        problems.append(f"{where}: target {raw['target']!r} is not one of {', '.join(TARGET_KINDS)}")
    _validate_requirements(raw, where, problems)
    if "select" in raw and raw["select"] not in SELECT:
        problems.append(f"{where}: select must be one of {', '.join(SELECT)} (got {raw['select']!r})")
    if "params" in raw:
        if not isinstance(raw["params"], dict):
            problems.append(f"{where}: params must be a table of filters")
        else:
            for k, v in raw["params"].items():
                items = v if isinstance(v, list) else [v]
                if not items or any(isinstance(i, (dict, list)) for i in items):
                    problems.append(f"{where}: params.{k} must be a value, a glob, a comparison or a list of them")
    given = [k for k in THRESHOLD_KEYS if k in raw]
    if len(given) != 1:
        problems.append(f"{where}: exactly one threshold is needed ({', '.join(THRESHOLD_KEYS)}); got "
                        f"{', '.join(given) or 'none'}")
        return
    kind, value = given[0], raw[given[0]]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or value != value \
            or value == float("inf"):
        problems.append(f"{where}: {kind} must be a positive finite number (got {value!r})")
    if kind in ("min", "max") and not isinstance(raw.get("unit"), str):
        problems.append(f"{where}: {kind} needs its unit (unit = \"TFLOP/s\", as the metric records it)")
    if kind == "ratio_to_reference" and not isinstance(raw.get("reference"), str):
        problems.append(f"{where}: ratio_to_reference needs reference = \"NAME\" (a shipped reference, aibench/reference) or a run path")
    if kind == "fraction_of_peak" and isinstance(value, (int, float)) and value > 1:
        problems.append(f"{where}: fraction_of_peak is a fraction in (0, 1] (0.6 for 60%), got {value}")
    if kind.startswith("ratio_to_") and isinstance(value, (int, float)) and value > MAX_RATIO:
        problems.append(f"{where}: {kind} {value:g} is outside (0, {MAX_RATIO:g}]: no node is that many times "
                        f"its {'reference' if kind == 'ratio_to_reference' else 'fleet median'} (0.9 for 90%)")


@dataclass
class _Loading:
    """What one spec has loaded so far: each file once, however often it is included (the
    includes are a graph, not a tree), and the bytes read, against the caps."""
    tables: dict[Path, dict[str, Any] | None] = field(default_factory=dict)  # None: still loading
    total_bytes: int = 0


def _read_table(path: Path, loading: _Loading) -> dict[str, Any]:
    try:
        data = read_bytes(path, SPEC_MAX_BYTES, "spec file")
    except UsageError as e:
        raise SpecError([str(e)]) from None
    loading.total_bytes += len(data)
    if loading.total_bytes > MAX_SPEC_TOTAL_BYTES:
        raise SpecLimitError([f"{path.name}: the spec and its includes are over {MAX_SPEC_TOTAL_BYTES >> 20} MiB"])
    try:
        return parse_toml(data)
    except DocumentError as e:
        raise SpecError([f"{path}: {e}"]) from None


def _load_file(path: Path, stack: list[Path], loading: _Loading) -> None:
    """Load and validate one file and, depth first, what it includes, into loading.tables."""
    path = path.resolve()
    if path in stack:
        raise SpecError([f"{path}: include cycle ({' -> '.join(p.name for p in [*stack, path])})"])
    if path in loading.tables:  # included before, through another file
        return
    if len(stack) >= MAX_INCLUDE_DEPTH:
        raise SpecLimitError([f"{stack[0].name}: includes nest deeper than {MAX_INCLUDE_DEPTH} files "
                              f"({' -> '.join(p.name for p in stack[:3])} -> ...)"])
    if len(loading.tables) >= MAX_SPEC_FILES:
        raise SpecLimitError([f"{stack[0].name}: the spec includes more than {MAX_SPEC_FILES} files"])
    loading.tables[path] = None
    raw = _read_table(path, loading)
    problems: list[str] = []
    where = path.name
    for key in raw:
        if key not in TOP_KEYS:
            problems.append(f"{where}: unknown key {key!r} (known: {', '.join(sorted(TOP_KEYS))})")
    if raw.get("spec_version") != SPEC_VERSION:
        problems.append(f"{where}: spec_version must be {SPEC_VERSION} (got {raw.get('spec_version')!r})")
    if not isinstance(raw.get("name"), str) or not raw.get("name"):
        problems.append(f"{where}: 'name' is required")
    if "tier" in raw and raw["tier"] not in TIERS:
        problems.append(f"{where}: tier must be one of {', '.join(TIERS)} (got {raw['tier']!r})")
    if "target" in raw and raw["target"] not in TARGET_KINDS:
        problems.append(f"{where}: target must be one of {', '.join(TARGET_KINDS)} (got {raw['target']!r})")
    _validate_requirements(raw, where, problems)
    hardware = raw.get("hardware", {})
    if not isinstance(hardware, dict):
        problems.append(f"{where}: [hardware] must be a table")
    else:
        for k, v in hardware.items():
            if k not in HARDWARE_KEYS:
                problems.append(f"{where}: unknown hardware key {k!r} (known: {', '.join(HARDWARE_KEYS)})")
            elif isinstance(v, bool) or not isinstance(v, HARDWARE_KEYS[k]):
                problems.append(f"{where}: hardware.{k} has the wrong type ({type(v).__name__})")
            elif isinstance(v, str):
                try:
                    re.compile(v)
                except re.error as e:
                    problems.append(f"{where}: hardware.{k} is not a regular expression: {e}")
    checks = raw.get("check", [])
    if not isinstance(checks, list):
        problems.append(f"{where}: checks are [[check]] tables")
        checks = []
    for i, c in enumerate(checks):
        _validate_check(c, f"{where} check {i + 1}" + (f" ({c.get('id')})" if isinstance(c, dict) and c.get("id") else ""),
                        problems)
    includes = raw.get("include", [])
    if not isinstance(includes, list) or not all(isinstance(x, str) for x in includes):
        problems.append(f"{where}: include must be a list of spec names or paths")
        includes = []
    for inc in includes:
        try:
            _load_file(resolve(inc, path), [*stack, path], loading)
        except SpecLimitError:
            raise
        except SpecError as e:
            problems.extend(f"{where}: include {inc!r}: {p}" for p in e.problems)
    if problems:
        raise SpecError(problems)
    loading.tables[path] = raw


def load_spec(name: str) -> Spec:
    """A spec with its includes, validated; SpecError lists every problem."""
    loading = _Loading()
    _load_file(resolve(name), [], loading)
    files = list(loading.tables.items())  # this spec's file first, then its includes depth first
    top = files[0][1]
    checks: list[Check] = []
    problems: list[str] = []
    seen_ids: dict[str, str] = {}
    hardware = []
    for path, raw in files:
        spec_name = raw["name"]
        hardware.append((spec_name, dict(raw.get("hardware", {}))))
        # A file's defaults for its checks: its own, else the top spec's.
        defaults = {"target": raw.get("target", top.get("target", "cpu")),
                    **{k: raw.get(k, top.get(k)) for k in REQUIREMENT_TABLES}}
        for c in raw.get("check", []):
            if c["id"] in seen_ids:
                problems.append(f"{path.name}: check id {c['id']!r} is already used in {seen_ids[c['id']]}")
                continue
            seen_ids[c["id"]] = path.name
            checks.append(Check(spec=spec_name, **{**defaults, **c}))
    if problems:
        raise SpecError(problems)
    if not checks:
        raise SpecError([f"{files[0][0].name}: the spec (with its includes) has no check"])
    spec = Spec(name=top["name"], description=top.get("description", ""), tier=top.get("tier", "standard"),
                target=top.get("target", "cpu"), files=[p for p, _ in files], hardware=hardware, checks=checks)
    # Every threshold against its metric's unit and the hardware's bound (lint.py).
    problems, spec.lint_notes = lint_spec(spec)
    if problems:
        raise SpecError(problems)
    return spec


def load_specs(names: list[str]) -> Spec:
    """Several specs judged together (--spec a,b): one spec of all their checks."""
    if not names:
        raise SpecError(["no spec named (give --spec NAME or a path; aibench accept --list-specs)"])
    specs = [load_spec(n) for n in names]
    if len(specs) == 1:
        return specs[0]
    ids = [c.id for s in specs for c in s.checks]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise SpecError([f"check id(s) {', '.join(dup)} appear in more than one of {', '.join(names)}"])
    tiers = [s.tier for s in specs]
    return Spec(name="+".join(s.name for s in specs), description="; ".join(s.description for s in specs if s.description),
                tier=max(tiers, key=TIERS.index), target=specs[0].target,
                files=[f for s in specs for f in s.files], hardware=[h for s in specs for h in s.hardware],
                checks=[c for s in specs for c in s.checks],
                lint_notes=[n for s in specs for n in s.lint_notes])
