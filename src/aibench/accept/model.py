"""What a loaded acceptance spec is: its checks (`Check`) and the spec (`Spec`), and how a
check's params filter matches a case (`param_matches`). spec.py builds them from TOML,
lint.py and judge.py read them; here, apart from both, so neither imports the other
for them."""

from __future__ import annotations

import fnmatch
import operator
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

THRESHOLD_KEYS = ("min", "max", "fraction_of_peak", "ratio_to_reference", "ratio_to_fleet_median")

_COMPARISON = re.compile(r"^\s*(>=|<=|>|<|==|!=)\s*(-?[0-9.]+(?:[eE][-+]?[0-9]+)?)\s*$")
_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq,
        "!=": operator.ne}


def param_matches(want: Any, value: Any) -> bool:
    """A params filter: a list (any of), a comparison string (">=4096"), a glob string, or
    an exact value."""
    if isinstance(want, list):
        return any(param_matches(w, value) for w in want)
    if isinstance(want, str):
        m = _COMPARISON.match(want)
        if m and isinstance(value, (int, float)) and not isinstance(value, bool):
            return _OPS[m.group(1)](value, float(m.group(2)))
        return fnmatch.fnmatchcase(str(value).lower(), want.lower())
    if isinstance(want, bool) or isinstance(value, bool):
        return want is value or str(want).lower() == str(value).lower()
    return want == value


@dataclass
class Check:
    id: str
    suite: str
    metric: str
    source: str
    spec: str  # the spec (name) the check comes from
    case: str = "*"
    impl: str = "*"
    target: str = "*"
    params: dict[str, Any] = field(default_factory=dict)
    select: str = "best"
    min: float | None = None
    max: float | None = None
    unit: str | None = None
    fraction_of_peak: float | None = None
    ratio_to_reference: float | None = None
    reference: str | None = None
    ratio_to_fleet_median: float | None = None
    health: dict[str, float] | None = None  # what each case's window must have been (health.window_problems)
    spread: dict[str, float] | None = None  # {max}: the devices of a node within this of the best (spread.py)

    @property
    def threshold_kind(self) -> str:
        return next(k for k in THRESHOLD_KEYS if getattr(self, k) is not None)

    def describe_threshold(self) -> str:
        """The threshold as the spec states it, and the window health the check requires."""
        kind = self.threshold_kind
        if kind in ("min", "max"):
            text = f"{'>=' if kind == 'min' else '<='} {getattr(self, kind):g} {self.unit}"
        elif kind == "fraction_of_peak":
            text = f">= {self.fraction_of_peak:.0%} of peak"
        elif kind == "ratio_to_reference":
            text = f">= {self.ratio_to_reference:g}x reference {self.reference}"
        else:
            text = f">= {self.ratio_to_fleet_median:g}x fleet median"
        if self.health:
            text += "; window health " + ", ".join(f"{k} = {v:g}" for k, v in self.health.items())
        return text

    def matches(self, case) -> bool:
        """Whether a CaseResult is one this check is about."""
        return (case.suite == self.suite and fnmatch.fnmatchcase(case.case_id, self.case)
                and fnmatch.fnmatchcase(case.impl, self.impl)
                and fnmatch.fnmatchcase(case.target.split(":")[0], self.target)
                and all(k in case.params and param_matches(v, case.params[k]) for k, v in self.params.items()))


@dataclass
class Spec:
    name: str
    description: str
    tier: str
    target: str
    files: list[Path]  # this spec's file, then every included file (depth first)
    hardware: list[tuple[str, dict[str, Any]]]  # (spec name, its [hardware] table) of every file
    checks: list[Check]
    # What lint could not check (a metric with no known hardware bound): `aibench accept --lint`.
    lint_notes: list[str] = field(default_factory=list)
