"""The suite and impl contract, and the one case template every suite runs through.

A *suite* (gemm, attention, storage, objectstore, interconnect, power, or one from
another package) is a named family of cases: it declares its parameters, its default
sweep per tier and target, its options, and one table of impls (IMPLS).

An *impl* is one small class listed in that table: its name, description, target kinds
and `unavailable(target)` reason are class attributes; an instance is the prepared
operation it measures, with the same shape as the CUDA ops in csrc/cuda: `run()` one
operation, `time(number)` seconds for `number` back-to-back ones, `check()` the
validation of a fresh result, `detail()`, `close()`.

`Suite.run_case` is the case template: skipping, failing, measuring (the harness),
validating, energy, statistics and the CaseResult are done there, once. A suite supplies
`prepare(params, impl, ctx) -> op` (default: construct the impl's class) and
`metrics(params, samples, op)`; a suite whose impls are measured together groups them
(`group_impls`) and gets one result per impl from one case: the impls of a group are
measured in interleaved windows, A B B A (harness.measure_interleaved; storage: aibench
and fio in its own alternating windows), so that drift during the case cancels.
"""

from __future__ import annotations

import time
import weakref
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterable

from ..errors import SkipCase, UsageError
from ..faults import inflate
from ..health import HealthWindow
from ..harness import CallTooSlow, SamplingPolicy, measure, measure_interleaved
from ..results import FAILED, PASSED, SKIPPED, CaseResult, ContextKey, Metric, Samples, Validation, now_iso
from ..targets import Target, bound_for_peak
from .charts import Chart, PercentileChart
from ..registry import CONTRACT_VERSION, registered_impls

TIERS = ("quick", "standard", "full")


@dataclass(frozen=True)
class Param:
    name: str
    parse: Callable[[str], Any]  # text -> value; raises ValueError with a reason
    help: str


@dataclass(frozen=True)
class Option:
    """A run-wide option a suite reads from RunContext.options (like an fio engine's
    options): the CLI adds `--<flag>` for it, in the suite's group of `aibench run`."""

    flag: str  # e.g. "file-size": --file-size, options["file_size"]
    help: str
    metavar: str | None = "VALUE"  # None: a flag without a value (store_true)

    @property
    def dest(self) -> str:
        return self.flag.replace("-", "_")


class Impl:
    """One impl of a suite: subclass it, set the class attributes, list the class in the
    suite's IMPLS (or publish it under the `aibench.impls` entry point). An instance is
    the prepared operation (buffers allocated and filled, clients connected)."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    target_kinds: ClassVar[tuple[str, ...]] = ("cpu",)
    # Set by the plugin loader for impls from other packages: "package version".
    package: ClassVar[str | None] = None
    # What the class is and the contract it was written for (registry.py refuses a plugin
    # of another contract version). A plugin built for this contract may state it
    # explicitly: `aibench_contract = ("impl", 1)`.
    aibench_contract: ClassVar[tuple[str, int]] = ("impl", CONTRACT_VERSION)

    @classmethod
    def unavailable(cls, target: Target) -> str | None:
        """None when this impl can run on `target` here, else the reason it cannot."""
        return None

    # --- the operation ----------------------------------------------------------------
    def run(self) -> None:
        """One operation on the first buffer set, finished before returning."""
        raise NotImplementedError

    def time(self, number: int) -> float:
        """Seconds for `number` back-to-back operations."""
        raise NotImplementedError

    def check(self) -> Validation:
        """Validate a freshly computed result (after timing): a wrong result fails the
        case and is never a number."""
        raise NotImplementedError

    def measure(self, policy: SamplingPolicy) -> Samples:
        """The samples of this operation alone: the harness over `time`. Windowed and
        collective impls override this to measure their own way; impls that do not are
        measured through `time`, interleaved with the others of their group."""
        self.refuse_slow_call(policy)
        return measure(self.time, policy)

    def refuse_slow_call(self, policy: SamplingPolicy) -> None:
        """CallTooSlow before the first call when the probe says one call would run past
        the policy's max_call_s."""
        estimate = self.estimated_call_s()
        if estimate is not None and estimate > policy.max_call_s:
            raise CallTooSlow(f"one call would take about {estimate:.0f} s (from a smaller probe), over the "
                              f"{policy.max_call_s:g} s cap per call (--max-call-s); not run")

    def estimated_call_s(self) -> float | None:
        """Seconds one operation is expected to take, from a small probe, or None when the
        impl is never that slow. A call is uninterruptible, so an impl that would run past
        the policy's max_call_s must be stopped before its first full call."""
        return None

    def detail(self) -> dict:
        """What this impl ran with (library version, ISA path, engine...)."""
        return {}

    def peak(self) -> dict | None:
        """{value, unit, source} of the theoretical peak of the headline metric, if known."""
        return None

    def bound(self, fresh: bool = False) -> dict | None:
        """{value, unit, source} of an independent physical bound of the headline figure:
        a limit from a path that shares no code with the figure's, which the figure cannot
        exceed (Suite.bound; the case template holds the figure to it). Default: from the
        impl's peak (targets.bound_for_peak: a GPU's datasheet peak; on a CPU, the measured
        FMA rate of the path's instructions). `fresh`: measure the bound again (the case
        template asks once, when the figure exceeded the first measurement)."""
        return bound_for_peak(self.peak(), fresh)

    def work(self) -> float | None:
        """Operations (FLOPs) per call, for the energy window; None: no energy figures."""
        return None

    def telemetry(self) -> dict | None:
        return None

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class ImplInfo:
    """An impl as users see it: one name over the target kinds its classes cover (the own
    GEMM is one impl on cpu and cuda, two classes). Derived from the IMPLS tables."""

    name: str
    description: str
    target_kinds: tuple[str, ...]
    classes: tuple[type[Impl], ...]
    package: str | None = None

    def for_kind(self, kind: str) -> type[Impl] | None:
        return next((c for c in self.classes if kind in c.target_kinds), None)

    def unavailable_reason(self, target: Target) -> str | None:
        cls = self.for_kind(target.kind)
        if cls is None:
            return f"impl {self.name!r} does not run on the {target.kind} target"
        return cls.unavailable(target)


def impl_infos(classes: Iterable[type[Impl]]) -> list[ImplInfo]:
    """The ImplInfo of each impl name, in table order."""
    by_name: dict[str, list[type[Impl]]] = {}
    for cls in classes:
        by_name.setdefault(cls.name, []).append(cls)
    out = []
    for name, group in by_name.items():
        kinds = tuple(k for c in group for k in c.target_kinds)
        if len(group) == 1:
            description = group[0].description
        else:
            description = "; ".join(f"{'/'.join(c.target_kinds)}: {c.description}" for c in group)
        out.append(ImplInfo(name, description, kinds, tuple(group), group[0].package))
    return out


@dataclass(frozen=True)
class AsvTrack:
    """One asv `track_` benchmark fed from a metric of the suite's cases."""

    method: str  # e.g. "track_tflops"
    metric: str  # the case metric it reports
    unit: str  # unit shown by asv
    scale: float = 1.0  # metric value x scale = asv value


@dataclass(frozen=True)
class AsvSpec:
    """How a suite's cases map onto asv benchmarks: one class (suites/benchmarks.py) with
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
    # When set, a case's point is found from the case itself (its id) instead of `key`.
    case_key: Callable[[Any], tuple | None] | None = None


@dataclass
class RunContext:
    """What a suite needs to run one case, besides the case itself, and the resources the
    cases of one run share (an MPI session, a storage read source, an object store): each
    opened on first use (`resource`) and closed, last opened first, by `close()` when the
    run ends, or when the context is collected (an API caller's or a test's)."""

    target: Target
    policy: SamplingPolicy
    seed: int = 0
    # Run-wide options by name: the suites' declared Options (storage paths, object-store
    # URL) and the energy options (`power`, `power_window_s`, `redfish`).
    options: dict[str, Any] = field(default_factory=dict)
    _resources: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)
    _closing: ExitStack = field(default_factory=ExitStack, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._finalizer = weakref.finalize(self, self._closing.close)

    def resource(self, key: str, open: Callable[[], Any] | None = None,
                 close: Callable[[Any], None] | None = None) -> Any:
        """The run's resource `key`: opened by `open()` on first use, `close(resource)` run
        by close(). One whose opening raised raises the same for every later case, without
        a second try (a store that cannot start stays down for the run). KeyError when it is
        not open and no `open` is given."""
        if key not in self._resources:
            if open is None:
                raise KeyError(f"the run has no {key!r} open")
            try:
                self._resources[key] = open()
            except Exception as e:
                self._resources[key] = e
                raise
            if close is not None:
                self._closing.callback(close, self._resources[key])
        value = self._resources[key]
        if isinstance(value, Exception):
            raise value
        return value

    def close(self) -> None:
        """Close every resource the run opened, last opened first."""
        self._resources.clear()
        self._finalizer()


class CaseFailed(Exception):
    """A case failed for a reason stated in full (no exception type in front of it)."""


class Suite:
    name: str = ""
    description: str = ""
    params: dict[str, Param] = {}
    options: tuple[Option, ...] = ()
    target_kinds: tuple[str, ...] = ()
    # The impl classes of this suite (Impl subclasses); impls() adds those of plugins.
    IMPLS: tuple[type[Impl], ...] = ()
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
    # What `aibench plot` draws of this suite's cases (charts.py); the default fits any suite.
    charts: tuple[Chart | PercentileChart, ...] = (Chart(),)
    # "package version" of a suite from another package (set by the plugin loader).
    package: str | None = None
    # What besides the params makes two of its cases the same case (CaseResult.key()):
    # impl_detail entries that change what a figure means, such as the storage source.
    context_keys: tuple[ContextKey, ...] = ()
    aibench_contract: ClassVar[tuple[str, int]] = ("suite", CONTRACT_VERSION)  # as Impl's

    # --- declaration ------------------------------------------------------------------
    def impl_classes(self) -> list[type[Impl]]:
        return [*self.IMPLS, *registered_impls(self.name)]

    def impls(self) -> list[ImplInfo]:
        return impl_infos(self.impl_classes())

    def impl_names(self) -> list[str]:
        return [i.name for i in self.impls()]

    def impls_for_case(self, params: dict[str, Any], impls: list[ImplInfo]) -> list[ImplInfo]:
        """The impls that apply to one case (default: all of them)."""
        return impls

    def group_impls(self, params: dict[str, Any], impls: list[ImplInfo]) -> list[list[ImplInfo]]:
        """The impls of one case measured together, group by group (default: each alone)."""
        return [[i] for i in impls]

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

    def validate_options(self, options: dict[str, Any]) -> None:
        """Raise UsageError for a bad value of one of this suite's options."""

    def case_id(self, params: dict[str, Any]) -> str:
        return ",".join(f"{k}={v}" for k, v in params.items())

    # --- the case template ------------------------------------------------------------
    def prepare(self, params: dict[str, Any], impl: type[Impl], ctx: RunContext) -> Impl:
        """The prepared operation of one impl (SkipCase when it cannot run here)."""
        return impl(params, ctx)

    def metrics(self, params: dict[str, Any], samples: Samples, op: Impl) -> dict[str, Metric]:
        """The figures of a validated measurement, headline first."""
        raise NotImplementedError

    def bound(self, params: dict[str, Any], op: Impl, metrics: dict[str, Metric],
              fresh: bool = False) -> dict | None:
        """How this suite bounds a case's figure: {value, unit, source} and optionally
        `metric` (the metric it bounds; default the headline) and `refused` (the bound
        itself failed its own check: why). None: no bound is known (recorded as such).
        Default: the impl's (Impl.bound). Every case goes through check_bound."""
        return op.bound(fresh)

    def measure_group(self, params: dict[str, Any], ops: dict[str, Impl],
                      ctx: RunContext) -> dict[str, Samples | Exception]:
        """The samples of every op of a group; an impl whose measurement failed alone maps
        to its exception. Ops timed through `time` are measured together in interleaved
        windows (A B B A: harness.measure_interleaved); an op that measures its own way
        (it overrides Impl.measure) is measured after them, alone."""
        out: dict[str, Samples | Exception] = {}
        timers = {}
        for name, op in ops.items():
            if type(op).measure is not Impl.measure:
                continue
            try:
                op.refuse_slow_call(ctx.policy)
            except CallTooSlow as e:
                out[name] = e
                continue
            timers[name] = op.time
        out.update(measure_interleaved(timers, ctx.policy))
        for name, op in ops.items():
            if name not in out:
                out[name] = op.measure(ctx.policy)
        return {name: out[name] for name in ops}

    def measured_apart(self, params: dict[str, Any], group: list[ImplInfo], ctx: RunContext) -> str | None:
        """Why the impls of a group must be measured one after the other (e.g. their
        operands do not fit in memory together), or None to measure them together."""
        return None

    def stage(self, step: Callable[[], Any]) -> Any:
        """Run one step of the template (prepare, measure, check, detail, close). The
        interconnect suite runs each on every rank together and agrees on the outcome."""
        return step()

    def run_case(self, params: dict[str, Any], impls: list[ImplInfo] | ImplInfo, ctx: RunContext) -> list[CaseResult]:
        """One case with one impl or a group of impls: a CaseResult per impl. An impl that
        cannot run is skipped with its reason; an exception fails its impl's result only."""
        group = [impls] if isinstance(impls, ImplInfo) else list(impls)
        apart = self.measured_apart(params, group, ctx) if len(group) > 1 else None
        if apart is not None:
            results = [r for info in group for r in self.run_case(params, info, ctx)]
            for r in results:
                if r.stats is not None:
                    r.stats.extra["interleave"] = {"impls": [i.name for i in group], "alone": apart}
            return results
        started = time.perf_counter()
        results = {i.name: CaseResult(suite=self.name, case_id=self.case_id(params), params=dict(params),
                                      target=str(ctx.target), impl=i.name, status=SKIPPED, started_at=now_iso())
                   for i in group}
        ops: dict[str, Impl] = {}
        try:
            for info in group:
                with _outcome(results[info.name]):
                    cls = self.stage(lambda: _available(info, ctx.target))
                    ops[info.name] = self.stage(lambda: self.prepare(params, cls, ctx))
                    results[info.name].impl_detail = self.stage(ops[info.name].detail) or {}
                    for what, package in (("impl", cls.package), ("suite", self.package)):
                        if package:  # from another installed package: which one, which version
                            results[info.name].impl_detail[f"{what}_package"] = package
            samples: dict[str, Samples | Exception] | None = None
            live = {n: op for n, op in ops.items() if results[n].validation is None}  # prepared without fault
            if live:
                with _outcome(*(results[n] for n in live)):
                    window = HealthWindow(ctx.target)  # the device before and after the timed samples
                    samples = self.stage(lambda: self.measure_group(params, live, ctx))
                    health = window.finish()
                    for n in live:
                        results[n].health = health
            for name, op in live.items() if samples is not None else ():
                with _outcome(results[name]):
                    if isinstance(samples.get(name), Exception):
                        raise samples[name]  # this impl's measurement failed, not the group's
                    self._finish(results[name], params, samples[name], op, ctx)
        finally:
            for name, op in ops.items():
                with _outcome(results[name], closing=True):
                    self.stage(op.close)
            elapsed = time.perf_counter() - started
            for r in results.values():
                r.duration_s = elapsed
        return list(results.values())

    def _finish(self, result: CaseResult, params: dict[str, Any], samples: Samples, op: Impl,
                ctx: RunContext) -> None:
        """Validate after timing, then (only if valid) the figures."""
        result.stats = samples
        validation = self.stage(op.check)
        result.validation = validation
        result.telemetry = op.telemetry()
        if validation.status != PASSED:
            result.impl_detail = {**result.impl_detail, **(self.stage(op.detail) or {})}
            result.status = FAILED
            result.error = validation.reason
            return
        result.metrics = inflate(result.impl, self.metrics(params, samples, op))  # tests only: faults.py
        result.impl_detail = {**result.impl_detail, **(self.stage(op.detail) or {})}
        self.check_bound(result, params, op)
        peak, head = op.peak(), result.headline()
        if peak is not None and head is not None:
            result.peak = peak
            result.percent_of_peak = 100.0 * head[1].value / peak["value"]
        work = op.work()
        if ctx.options.get("power") and work is not None:
            _add_energy(result, op, samples, work, ctx)
        result.status = PASSED

    def check_bound(self, result: CaseResult, params: dict[str, Any], op: Impl) -> None:
        """The one place a figure is held to its independent bound (Suite.bound): the bound
        is recorded in the result, and a figure above it fails the case (CaseFailed:
        `exceeds physical bound: <figure> > <bound> (<source>)`). A figure above a first
        measurement of the bound is judged again against a fresh one (a bound measured on a
        busy machine can be low), so only a figure above both fails."""
        bound = self.stage(lambda: self.bound(params, op, result.metrics))
        if bound is None or result.headline() is None:
            result.bound = None
            return
        name = bound.get("metric") or result.headline()[0]
        figure = result.metrics[name]
        if not bound.get("refused") and figure.value is not None and figure.value > bound["value"]:
            bound = self.stage(lambda: self.bound(params, op, result.metrics, fresh=True))
        result.bound = {"metric": name, "value": bound["value"], "unit": bound["unit"], "source": bound["source"],
                        "refused": bound.get("refused")}
        if bound.get("refused"):
            raise CaseFailed(f"exceeds physical bound: {bound['refused']}")
        if figure.value is not None and figure.value > bound["value"]:
            raise CaseFailed(f"exceeds physical bound: {name} {figure.value:.4g} {figure.unit} > "
                             f"{bound['value']:.4g} {bound['unit']} ({bound['source']})")

    # --- planning ---------------------------------------------------------------------
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

    def normalize_case(self, case: dict[str, Any]) -> dict[str, Any]:
        """A case with the parameters that do not apply to it set to one value, so that
        sweeping them does not run it twice (interconnect: p2p has no dtype)."""
        return case

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
                case = self.normalize_case(case)
                key = tuple(case.items())
                if key not in seen:
                    seen.add(key)
                    cases.append(case)
        for case in cases:
            self.check_case(case, target)
        return cases


def _available(info: ImplInfo, target: Target) -> type[Impl]:
    reason = info.unavailable_reason(target)
    if reason is not None:
        raise SkipCase(reason)
    return info.for_kind(target.kind)


class _outcome:
    """Records how a step of the case template ended on the result(s) it concerns: a
    SkipCase (or a call too slow to run) skips, any other exception fails with one line.
    KeyboardInterrupt goes through: the run stops between cases."""

    def __init__(self, *results: CaseResult, closing: bool = False):
        self.results, self.closing = results, closing

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False
        for r in self.results:
            if self.closing:  # the figures stand; the failed cleanup is noted
                r.impl_detail["close_error"] = f"{type(exc).__name__}: {exc}"
            elif isinstance(exc, (SkipCase, CallTooSlow)):
                r.status, r.validation = SKIPPED, Validation(status=SKIPPED, reason=str(exc))
            else:
                stated = isinstance(exc, (CaseFailed, UsageError))
                lines = str(exc).strip().splitlines()
                r.status = FAILED
                r.error = str(exc) if stated else f"{type(exc).__name__}: {lines[0] if lines else ''}".strip()
                r.validation = Validation(status=FAILED, reason=str(exc) if stated else "the case raised an exception")
                r.metrics = {}  # a failed case has no figures
        return True


def _add_energy(result: CaseResult, op: Impl, samples: Samples, work: float, ctx: RunContext) -> None:
    """The sustained power window: energy metrics from the meter(s) covering the device,
    or the reason there are none (never an estimate)."""
    from ..energy.window import measure_energy

    result.power = measure_energy(op.time, samples.summary.median, work, ctx.target, ctx.options)
    primary = result.power.get("primary")
    if not primary:
        return
    result.metrics["gflops_per_watt"] = Metric(primary["gflops_per_watt"], "GFLOP/s/W", True)
    result.metrics["joules_per_tflop"] = Metric(primary["joules_per_tflop"], "J/TFLOP", False)
    result.metrics["avg_watts"] = Metric(primary["avg_watts"], "W", False)
    result.metrics["energy_j"] = Metric(primary["joules"], "J", False)
    if primary.get("fraction_of_limit") is not None:  # the device tells its power limit (NVML)
        result.metrics["pct_of_power_limit"] = Metric(100 * primary["fraction_of_limit"], "%", True)


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


def case_table_asv_spec(suite: "Suite", class_name: str, tracks: tuple[AsvTrack, ...],
                        version: str = "1") -> AsvSpec:
    """An asv class of (case, impl, target) over the suite's default cases of every tier
    on the cpu target: for suites whose cases are best named by their id."""
    cases = tuple(dict.fromkeys(suite.case_id(c) for t in TIERS for c in suite.default_cases(t, Target("cpu"))))
    return AsvSpec(class_name=class_name, param_names=("case", "impl", "target"),
                   param_values=(cases, tuple(suite.impl_names()), ("cpu",)), tracks=tracks, version=version,
                   key=lambda p, target, impl: (suite.case_id(p), impl, target.split(":")[0]))


def _product(overrides: dict[str, list[Any]]) -> list[dict[str, Any]]:
    combos: list[dict[str, Any]] = [{}]
    for key, values in overrides.items():
        combos = [{**c, key: v} for c in combos for v in values]
    return combos
