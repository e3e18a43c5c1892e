"""What every suite declares, and how its cases are expanded from sweeps and --param.

A suite (gemm, attention, storage, objectstore, interconnect, power) is a named family of
cases. It declares its parameters and their parsers, the default sweep per tier and
target, the implementations it knows, and runs one (case, impl) pair into a CaseResult.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from ..errors import UsageError
from ..harness import SamplingPolicy
from ..results import CaseResult
from ..targets import Target

TIERS = ("quick", "standard", "full")


@dataclass(frozen=True)
class Param:
    name: str
    parse: Callable[[str], Any]  # text -> value; raises ValueError with a reason
    help: str


@dataclass(frozen=True)
class Impl:
    """Who computes a case: aibench's own kernel or a named library."""

    name: str
    description: str
    target_kinds: tuple[str, ...]
    # Returns None when this impl can run on `target` here, else the reason it cannot.
    unavailable_reason: Callable[[Target], str | None]


@dataclass(frozen=True)
class AsvTrack:
    """One asv `track_` benchmark fed from a metric of the suite's cases."""

    method: str  # e.g. "track_tflops"
    metric: str  # the case metric it reports
    unit: str  # unit shown by asv
    scale: float = 1.0  # metric value x scale = asv value


@dataclass(frozen=True)
class AsvSpec:
    """How a suite's cases map onto asv benchmarks: one class in suites/<suite>.py with
    these params (their product) and one track_ method per metric. `version` is explicit
    so that editing the asv module never silently orphans older results."""

    class_name: str
    param_names: tuple[str, ...]
    param_values: tuple[tuple[Any, ...], ...]
    tracks: tuple[AsvTrack, ...]
    version: str
    # CaseResult params + target + impl -> the asv parameter tuple, or None if the case
    # is not one of the tracked points (e.g. an ad-hoc --param shape, another target).
    key: Callable[[dict[str, Any], str, str], tuple | None]
    target_kind: str | None = None  # the target kind of a per-target class


@dataclass
class RunContext:
    """What a suite needs to run one case, besides the case itself."""

    target: Target
    policy: SamplingPolicy
    seed: int = 0
    # Run-wide options from the command line that some suites read (e.g. `power`,
    # `power_window_s`, `redfish`, storage paths, object-store URL), by name.
    options: dict[str, Any] = field(default_factory=dict)
    # The impls planned for the current case, in run order (the runner sets it per case):
    # a suite may measure an impl and its peer interleaved (storage: aibench and fio).
    case_impls: tuple[str, ...] = ()


class Suite:
    name: str = ""
    description: str = ""
    params: dict[str, Param] = {}
    target_kinds: tuple[str, ...] = ()
    # Pairs (impl, peer) whose headline ratio the summary prints, e.g. ("aibench", "blas").
    comparisons: tuple[tuple[str, str], ...] = ()
    # follower -> leader: when --param sweeps the leader and not the follower, the follower
    # takes the leader's value (e.g. attention's kv_seqlen follows seqlen).
    coupled: dict[str, str] = {}
    # Whether every MPI rank takes part in each case (interconnect); other suites run on
    # rank 0 alone in an MPI run.
    uses_mpi: bool = False
    # Whether a plain `aibench run` (no --suite) includes this suite on its targets.
    in_default_run: bool = True

    def impls(self) -> list[Impl]:
        raise NotImplementedError

    def impls_for_case(self, params: dict[str, Any], impls: list[Impl]) -> list[Impl]:
        """The impls that apply to one case (default: all of them)."""
        return impls

    def asv_spec(self) -> AsvSpec | None:
        """The asv benchmark class of a suite with one (None: not tracked in asv)."""
        return None

    def asv_specs(self) -> list[AsvSpec]:
        """Every asv benchmark class of this suite. Suites that run on several targets
        keep one class per target kind, so that asv's parameter product holds only
        combinations that can occur (asv stores and graphs the whole product)."""
        spec = self.asv_spec()
        return [spec] if spec is not None else []

    def default_cases(self, tier: str, target: Target) -> list[dict[str, Any]]:
        raise NotImplementedError

    def check_case(self, params: dict[str, Any], target: Target) -> None:
        """Raise UsageError for an impossible case (bad size, too big for memory)."""

    def case_id(self, params: dict[str, Any]) -> str:
        return ",".join(f"{k}={v}" for k, v in params.items())

    def run_case(self, params: dict[str, Any], impl: Impl, ctx: RunContext) -> CaseResult:
        raise NotImplementedError

    # --- shared machinery -------------------------------------------------------------
    def impl_names(self) -> list[str]:
        return [i.name for i in self.impls()]

    def parse_overrides(self, raw: dict[str, list[str]]) -> dict[str, list[Any]]:
        parsed: dict[str, list[Any]] = {}
        for key, texts in raw.items():
            if key not in self.params:
                known = ", ".join(self.params)
                raise UsageError(f"suite {self.name!r} has no parameter {key!r} (known: {known})")
            values = []
            for text in texts:
                try:
                    values.append(self.params[key].parse(text))
                except ValueError as e:
                    raise UsageError(f"bad value {text!r} for {self.name} parameter {key!r}: {e}") from None
            parsed[key] = values
        return parsed

    def expand(self, tier: str, target: Target, overrides: dict[str, list[Any]]) -> list[dict[str, Any]]:
        """The cases to run: the default sweep with each overridden parameter's values
        substituted. When every parameter is given, exactly their product is run."""
        if set(overrides) >= set(self.params):
            bases: Iterable[dict[str, Any]] = [{k: None for k in self.params}]
        else:
            bases = self.default_cases(tier, target)
        cases: list[dict[str, Any]] = []
        seen: set[tuple] = set()
        for base in bases:
            for combo in _product(overrides):
                case = {**base, **combo}
                for follower, leader in self.coupled.items():
                    if leader in overrides and follower not in overrides:
                        case[follower] = case[leader]
                key = tuple(case.items())
                if key not in seen:
                    seen.add(key)
                    cases.append(case)
        for case in cases:
            self.check_case(case, target)
        return cases


def per_target_asv_specs(suite: "Suite", class_prefix: str, kinds: tuple[str, ...], names: tuple[str, ...],
                         point: Callable[[dict[str, Any]], tuple], values: Callable[[str], tuple[tuple, ...]],
                         tracks: tuple[AsvTrack, ...], version: str) -> list[AsvSpec]:
    """One asv class per target kind (e.g. GemmCpu, GemmCuda, GemmJax) with params
    `names` + impl: `point(params)` gives a case's values for `names`, `values(kind)`
    each name's values on that kind (the product stays small: no impossible rows)."""
    specs = []
    for kind in kinds:
        impls = tuple(i.name for i in suite.impls() if kind in i.target_kinds)

        def key(params, target, impl, kind=kind, impls=impls):
            if target.split(":")[0] != kind or impl not in impls:
                return None
            return (*point(params), impl)

        specs.append(AsvSpec(class_name=f"{class_prefix}{kind.capitalize()}", param_names=(*names, "impl"),
                             param_values=(*values(kind), impls), tracks=tracks, version=version, key=key,
                             target_kind=kind))
    return specs


def _product(overrides: dict[str, list[Any]]) -> list[dict[str, Any]]:
    combos: list[dict[str, Any]] = [{}]
    for key, values in overrides.items():
        combos = [{**c, key: v} for c in combos for v in values]
    return combos


def positive_int(text: str) -> int:
    """Integer >= 1; accepts 4096, 4k, 1M (binary multiples: k=1024)."""
    t = text.strip().lower()
    mult = 1
    for suffix, m in (("k", 1024), ("m", 1024**2), ("g", 1024**3)):
        if t.endswith(suffix):
            t, mult = t[:-1], m
            break
    try:
        value = int(t) * mult
    except ValueError:
        raise ValueError("expected a positive integer") from None
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def choice(options: Iterable[str]) -> Callable[[str], str]:
    opts = tuple(options)

    def parse(text: str) -> str:
        if text not in opts:
            raise ValueError(f"expected one of {', '.join(opts)}")
        return text

    return parse
