"""What one `aibench run` is asked to do, as a value: `RunRequest`.

A request is built from the command line (`RunRequest.from_args`) or by code (`aibench
accept`, asv's benchmark of an MPI suite outside an MPI run), and checked as it is built: a bad
number of seconds or ranks, a malformed parameter or target is a UsageError (one line,
exit 2) before anything runs. `session.run(request)` runs it in this process.
`RunRequest.argv()` is the one place that spells a request as command-line words, for
the child processes of an MPI self-launch (and for the command a report records).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UsageError
from .mpi import DEFAULT_THREAD_LEVEL, THREAD_LEVELS

MAX_LOCAL_RANKS = 256
MAX_SECONDS = 7 * 86400.0
TIERS = ("quick", "standard", "full")
DEFAULT_ASV_RESULTS = Path("results")


def seconds_option(flag: str, value: float | None) -> None:
    if value is not None and not (0 < value <= MAX_SECONDS):  # also refuses nan and inf
        raise UsageError(f"{flag} must be a number of seconds above 0 and at most {MAX_SECONDS:.0f} (got {value})")


def ranks_option(value: int | None) -> None:
    """--ranks of every command that self-launches MPI ranks (run, preflight)."""
    if value is not None and not 1 <= value <= MAX_LOCAL_RANKS:
        raise UsageError(f"--ranks must be between 1 and {MAX_LOCAL_RANKS} (got {value}): it launches that many "
                         "processes on this machine")


def add_collective_timeout(parser: argparse.ArgumentParser) -> None:
    """--collective-timeout, the one timeout of every collective wait, alike in `run` and
    `preflight` (checked by seconds_option; None: watchdog.DEFAULT_TIMEOUT_S)."""
    from .watchdog import DEFAULT_TIMEOUT_S, EXIT_COLLECTIVE_TIMEOUT

    parser.add_argument("--collective-timeout", type=float, default=None, metavar="SECONDS",
                        help=f"in an MPI run, end the run (exit {EXIT_COLLECTIVE_TIMEOUT}) when ranks are in a "
                             "collective and none has progressed for this long, naming the ranks that did not "
                             f"arrive (default {DEFAULT_TIMEOUT_S:.0f})")


def parse_param(text: str) -> tuple[str, list[str]]:
    """One --param KEY=V1,V2."""
    key, sep, values = text.partition("=")
    if not sep or not key.strip() or not values.strip():
        raise UsageError(f"malformed --param {text!r}: expected key=v1,v2")
    items = [v.strip() for v in values.split(",")]
    if any(not v for v in items):
        raise UsageError(f"malformed --param {text!r}: empty value")
    return key.strip(), items


def param_text(value: Any) -> str:
    """A parameter value as --param spells it (booleans as true/false, as units.parse_bool reads them)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _declared_options() -> dict[str, Any]:
    """dest -> Option of every suite's declared run-wide options (Suite.options)."""
    from .suites import all_suites

    return {o.dest: o for s in all_suites().values() for o in s.options}


@dataclass
class RunRequest:
    """Everything a run is asked to do; defaults are those of `aibench run`."""

    suites: list[str] = field(default_factory=list)  # empty: the default run of the target; pytest:PATH too
    tier: str = "standard"
    target: str = "cpu"
    impls: list[str] | None = None
    params: dict[str, list[str]] = field(default_factory=dict)  # --param: raw values, parsed by the suites
    output: Path | None = None
    force: bool = False
    fail_on_skip: bool = False
    machine: str | None = None
    time_budget: float | None = None  # seconds of sampling per case (default: by tier)
    max_call_s: float | None = None
    asv_results: Path = DEFAULT_ASV_RESULTS
    record_asv: bool = True
    power: bool = False
    power_window: float | None = None
    redfish: str | None = None
    suite_options: dict[str, Any] = field(default_factory=dict)  # Option.dest -> value, the ones given
    json: bool = False
    ranks: int | None = None
    fleet: bool = False
    per_gpu: bool = False
    mpi_thread_level: str = DEFAULT_THREAD_LEVEL
    collective_timeout: float | None = None
    # The command line the run document records (from_args: as typed); not part of what is asked.
    command: list[str] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        from .targets import parse_target

        self.params = {k: [param_text(v) for v in vs] for k, vs in self.params.items()}
        if self.tier not in TIERS:
            raise UsageError(f"unknown tier {self.tier!r} (known: {', '.join(TIERS)})")
        target = parse_target(self.target)  # UsageError for a bad one
        seconds_option("--time-budget", self.time_budget)
        seconds_option("--max-call-s", self.max_call_s)
        seconds_option("--collective-timeout", self.collective_timeout)
        seconds_option("--power-window", self.power_window)
        ranks_option(self.ranks)
        if self.mpi_thread_level not in THREAD_LEVELS:
            raise UsageError(f"--mpi-thread-level {self.mpi_thread_level!r}: expected one of {', '.join(THREAD_LEVELS)}")
        if self.per_gpu and not (self.fleet and target.kind == "cuda"):
            raise UsageError("--per-gpu goes with --fleet and --target cuda")
        unknown = sorted(set(self.suite_options) - set(_declared_options()))
        if unknown:
            raise UsageError(f"unknown suite option(s) {', '.join(unknown)}")

    @classmethod
    def from_args(cls, args: argparse.Namespace, argv: list[str]) -> RunRequest:
        """The request of `aibench run`'s parsed arguments; argv: the whole command line."""
        params: dict[str, list[str]] = {}
        for text in args.param:
            key, values = parse_param(text)
            params.setdefault(key, []).extend(values)
        options = {}
        for dest, option in _declared_options().items():
            value = getattr(args, dest, None)
            if value not in (None, False):
                options[dest] = value
        return cls(
            suites=[*(args.suite or []), *(f"pytest:{p}" for p in args.pytest_benchmark)],
            tier=args.tier or "standard", target=args.target, impls=args.impl, params=params,
            output=args.output, force=args.force, fail_on_skip=args.fail_on_skip, machine=args.machine,
            time_budget=args.time_budget, max_call_s=args.max_call_s, asv_results=args.asv_results,
            record_asv=not args.no_asv, power=args.power, power_window=args.power_window, redfish=args.redfish,
            suite_options=options, json=args.json, ranks=args.ranks, fleet=args.fleet, per_gpu=args.per_gpu,
            mpi_thread_level=args.mpi_thread_level, collective_timeout=args.collective_timeout,
            command=list(argv))

    def argv(self) -> list[str]:
        """`aibench` arguments ("run", ...) that make this same request; only what differs
        from the defaults is spelled."""
        words = ["run"]
        for suite in self.suites:
            words += ["--suite", suite]
        if self.tier != "standard":
            words.append(f"--{self.tier}")
        if self.target != "cpu":
            words += ["--target", self.target]
        for impl in self.impls or []:
            words += ["--impl", impl]
        for key, values in self.params.items():
            words += ["--param", f"{key}={','.join(values)}"]
        valued = (("--machine", self.machine), ("--time-budget", self.time_budget), ("--max-call-s", self.max_call_s),
                  ("--power-window", self.power_window), ("--redfish", self.redfish), ("--ranks", self.ranks),
                  ("--collective-timeout", self.collective_timeout), ("--output", self.output))
        for flag, value in valued:
            if value is not None:
                words += [flag, repr(value) if isinstance(value, float) else str(value)]
        if self.asv_results != DEFAULT_ASV_RESULTS:
            words += ["--asv-results", str(self.asv_results)]
        if self.mpi_thread_level != DEFAULT_THREAD_LEVEL:
            words += ["--mpi-thread-level", self.mpi_thread_level]
        declared = _declared_options()
        for dest, value in self.suite_options.items():
            flag = f"--{declared[dest].flag}"
            words += [flag] if declared[dest].metavar is None else [flag, str(value)]
        switches = (("--force", self.force), ("--fail-on-skip", self.fail_on_skip), ("--no-asv", not self.record_asv),
                    ("--power", self.power), ("--json", self.json), ("--fleet", self.fleet),
                    ("--per-gpu", self.per_gpu))
        words += [flag for flag, on in switches if on]
        return words

    def command_line(self) -> list[str]:
        """The command the run document records: as typed, else as argv() spells it."""
        return self.command if self.command is not None else ["aibench", *self.argv()]

    def suite_option_values(self) -> dict[str, Any]:
        """Every declared suite option, given or not (RunContext.options)."""
        return {dest: self.suite_options.get(dest, False if o.metavar is None else None)
                for dest, o in _declared_options().items()}
