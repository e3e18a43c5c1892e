"""`aibench run`: plan the cases, launch the MPI ranks when a suite needs them, run, write
the run document after every case, record it in asv, print the summary."""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from . import __version__
from .errors import UsageError
from .harness import SamplingPolicy
from .mpi import DEFAULT_THREAD_LEVEL, THREAD_LEVELS
from .safety import check_machine_name, machine_name_of


def add_parser(sub) -> None:
    p_run = sub.add_parser("run", help="run suites and write a result file")
    p_run.add_argument("--suite", action="append",
                       help="suite to run (repeatable; default: every suite of the default run on the target); "
                            "pytest:PATH runs a pytest-benchmark file")
    p_run.add_argument("--pytest-benchmark", action="append", default=[], metavar="PATH",
                       help="run the benchmarks of a pytest-benchmark file or directory as a suite (repeatable)")
    tier = p_run.add_mutually_exclusive_group()
    tier.add_argument("--quick", action="store_const", const="quick", dest="tier")
    tier.add_argument("--full", action="store_const", const="full", dest="tier")
    p_run.add_argument("--target", default="cpu", help="cpu, cuda[:N] or jax[:platform]")
    p_run.add_argument("--impl", action="append", help="only this impl (repeatable)")
    p_run.add_argument("--param", action="append", default=[], metavar="KEY=V1,V2",
                       help="replace a parameter's sweep (repeatable)")
    p_run.add_argument("--output", type=Path,
                       help="run document path (default results/runs/<machine>-<time>-<random>.json); an existing "
                            "file is replaced only if it is an aibench run document")
    p_run.add_argument("--force", action="store_true", help="let --output replace an existing regular file")
    p_run.add_argument("--fail-on-skip", action="store_true",
                       help="exit 1 when any case was skipped (a run where every case was skipped always does)")
    p_run.add_argument("--machine", default=None, help="machine name (default: host name)")
    p_run.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                       help="sampling time budget per case")
    p_run.add_argument("--max-call-s", type=float, default=None, metavar="SECONDS",
                       help="skip an impl whose one call takes longer than this (default 30); a call longer "
                            "than the time budget gets 3 samples, marked low-confidence")
    p_run.add_argument("--asv-results", type=Path, default=Path("results"),
                       help="asv results tree to record the run in (default results/)")
    p_run.add_argument("--no-asv", action="store_true", help="do not record the run in the asv results tree")
    p_run.add_argument("--power", action="store_true",
                       help="measure energy over a sustained window on compute cases (gemm, attention)")
    p_run.add_argument("--power-window", type=float, default=None, metavar="SECONDS",
                       help="sustained power window (default 5 s, at least 10 meter update periods)")
    p_run.add_argument("--redfish", default=None, metavar="URL",
                       help="BMC Redfish service for whole-node power (credentials: AIBENCH_REDFISH_USER/PASSWORD)")
    add_suite_options(p_run)
    p_run.add_argument("--json", action="store_true", help="print the run document as JSON")
    p_run.add_argument("--ranks", type=int, default=None, metavar="N",
                       help="MPI ranks to launch locally for MPI suites (interconnect) or --fleet when not "
                            "started by mpirun/mpiexec/srun (default 2)")
    p_run.add_argument("--fleet", action="store_true",
                       help="every MPI rank is a node: run the per-node suites on all of them at once and "
                            "gather the results into one document (mpirun -n NODES --map-by ppr:1:node ...)")
    p_run.add_argument("--collective-timeout", type=float, default=None, metavar="SECONDS",
                       help="in an MPI run, end the run (exit 3) when ranks are in a collective and none has "
                            "progressed for this long, naming the ranks that did not arrive (default 300)")
    p_run.add_argument("--mpi-thread-level", choices=THREAD_LEVELS, default=DEFAULT_THREAD_LEVEL,
                       help="the thread support an MPI run initialises with: single (the default: plain MPI_Init, "
                            "as IMB-MPI1 and osu_allreduce), or MPI_Init_thread with funneled, serialized or "
                            "multiple; the library's algorithms may differ by level (recorded in system.mpi)")
    p_run.add_argument("--per-gpu", action="store_true",
                       help="with --fleet and --target cuda: one rank per GPU, each on cuda:<local rank>")


def _param(text: str) -> tuple[str, list[str]]:
    key, sep, values = text.partition("=")
    if not sep or not key.strip() or not values.strip():
        raise UsageError(f"malformed --param {text!r}: expected key=v1,v2")
    items = [v.strip() for v in values.split(",")]
    if any(not v for v in items):
        raise UsageError(f"malformed --param {text!r}: empty value")
    return key.strip(), items


def add_suite_options(parser: argparse.ArgumentParser) -> None:
    """Each suite's declared options (Suite.options), in a group per suite; an option two
    suites declare (by flag) is added once."""
    from .suites import all_suites

    seen: set[str] = set()
    for suite in all_suites().values():
        fresh = [o for o in suite.options if o.flag not in seen]
        if not fresh:
            continue
        group = parser.add_argument_group(f"{suite.name} suite")
        for option in fresh:
            seen.add(option.flag)
            if option.metavar is None:
                group.add_argument(f"--{option.flag}", dest=option.dest, action="store_true", help=option.help)
            else:
                group.add_argument(f"--{option.flag}", dest=option.dest, default=None, metavar=option.metavar,
                                   help=option.help)


def run_options(args, suites) -> dict:
    """Run-wide options that suites read from RunContext.options: the energy options and
    every suite's declared ones, checked by the suites that run (UsageError, exit 2,
    before anything runs)."""
    seconds_option("--power-window", args.power_window)
    from .suites import all_suites

    declared = {o.dest: getattr(args, o.dest, None) for s in all_suites().values() for o in s.options}
    for suite in suites:
        suite.validate_options(declared)
    return {"power": args.power, "power_window_s": args.power_window, "redfish": args.redfish, **declared}


MAX_LOCAL_RANKS = 256
MAX_SECONDS = 7 * 86400.0


def seconds_option(flag: str, value: float | None) -> None:
    if value is not None and not (0 < value <= MAX_SECONDS):  # also refuses nan and inf
        raise UsageError(f"{flag} must be a number of seconds above 0 and at most {MAX_SECONDS:.0f} (got {value})")


def ranks_option(value: int | None) -> None:
    """--ranks of every command that self-launches MPI ranks (run, preflight)."""
    if value is not None and not 1 <= value <= MAX_LOCAL_RANKS:
        raise UsageError(f"--ranks must be between 1 and {MAX_LOCAL_RANKS} (got {value}): it launches that many "
                         "processes on this machine")


def prepare_output(path: Path | None, machine: str, force: bool, create: bool) -> Path:
    """Where the run document goes: --output (replacing only an aibench run document, or
    any regular file with --force), else a new, uniquely named file under results/runs/.
    Checks the directory can be written (one line, exit 2) before anything runs."""
    from .runner import default_output
    from .safe_write import RUN_DOCUMENT, check_target

    try:
        if path is None:
            path = default_output(machine, create=create)
        else:
            check_target(path, RUN_DOCUMENT, force, "--output")
            path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".aibench-write-test-"):
            pass
    except OSError as e:
        where = path.parent if path is not None else "results/runs"
        raise UsageError(f"cannot write the run document in {where}: {e.strerror or e}") from None
    return path


def name_forwarded_sighup(output: Path) -> None:
    """hydra passes only SIGINT and SIGTERM on to the ranks, so a self-launch forwards a
    closed terminal's SIGHUP as SIGINT and the ranks save `ended_by: signal SIGINT`: the
    document says the signal that came."""
    from .results import RunDocument, write_atomic

    try:
        doc = RunDocument.load(output)
    except (OSError, ValueError, KeyError, TypeError):
        return
    if doc.status == "interrupted" and doc.ended_by == "signal SIGINT":
        doc.ended_by = "signal SIGHUP"
        write_atomic(output, doc.to_dict())


_SIGNALS_RECEIVED: list[int] = []
_PREVIOUS_HANDLERS: dict[int, object] = {}


def stop_on_signals() -> None:
    """SIGTERM (timeout, Slurm, kill) and SIGHUP (a closed terminal) stop a run like
    Ctrl-C: KeyboardInterrupt between two statements, so that the case's cleanup runs
    (test files, shared memory) and the document is saved as `interrupted`."""
    def handler(signum, frame):
        _SIGNALS_RECEIVED.append(signum)
        raise KeyboardInterrupt

    _SIGNALS_RECEIVED.clear()  # this run's signals only (main() may be called again in-process)
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        _PREVIOUS_HANDLERS[sig] = signal.signal(sig, handler)


def restore_signals() -> None:
    for sig, handler in _PREVIOUS_HANDLERS.items():
        signal.signal(sig, handler)
    _PREVIOUS_HANDLERS.clear()


def cmd_run(args, argv: list[str]) -> int:
    from .report import RunProgress, print_summary
    from .results import ResultWriter
    from .runner import TIER_BUDGET_S, default_suites, exit_code, new_document, plan_run, run_planned
    from .targets import parse_target

    tier = args.tier or "standard"
    target = parse_target(args.target)
    raw_params: dict[str, list[str]] = {}
    for text in args.param:
        key, values = _param(text)
        raw_params.setdefault(key, []).extend(values)
    seconds_option("--time-budget", args.time_budget)
    seconds_option("--max-call-s", args.max_call_s)
    seconds_option("--collective-timeout", args.collective_timeout)
    ranks_option(args.ranks)
    machine = check_machine_name(args.machine) if args.machine else machine_name_of(socket.gethostname())
    if args.per_gpu and not (args.fleet and target.kind == "cuda"):
        raise UsageError("--per-gpu goes with --fleet and --target cuda")
    suites = [*(args.suite or []), *(f"pytest:{p}" for p in args.pytest_benchmark)]
    suites = suites or default_suites(target, raw_params) or default_suites(target)
    planned = plan_run(suites, tier, target, args.impl, raw_params)
    options = run_options(args, list(dict.fromkeys(p.suite for p in planned)))
    if not planned:
        raise UsageError("nothing to run: no impl of the chosen suite(s) runs on this target")
    # MPI: under a launcher every rank runs (rank 0 writes and prints); without one, a run
    # with an MPI suite or --fleet launches itself on --ranks local ranks and returns their
    # exit code.
    from . import mpi

    session = fleet = None
    if mpi.under_launcher():
        session = mpi.start_session(args.mpi_thread_level)
    elif args.fleet or any(p.suite.uses_mpi for p in planned):
        reason = mpi.mpi_unavailable_reason()
        if reason is None:
            # The document's name is fixed here, so that whatever happens to the ranks this
            # process can close the document they leave (a usage error launches nothing).
            output = prepare_output(args.output, machine, args.force, create=True)
            child_argv = argv[1:] if args.output else [*argv[1:], "--output", str(output)]
            code, stop_signal = mpi.self_launch(args.ranks or mpi.DEFAULT_RANKS, child_argv)
            from .leftovers import remove_partial_writes
            from .results import close_abandoned_document

            remove_partial_writes(output)  # rank 0 died writing it
            if stop_signal is not None:
                done = close_abandoned_document(output, "interrupted", f"signal {signal.Signals(stop_signal).name}")
                if stop_signal == signal.SIGHUP:
                    name_forwarded_sighup(output)
            else:
                done = close_abandoned_document(output, "failed", f"the MPI job ended (mpiexec exit code {code}) "
                                                "before rank 0 finished the document")
            if done:
                print(f"aibench: the ranks did not finish the run document: {done}", file=sys.stderr)
                code = code or 1
            return code
        if args.fleet:
            raise UsageError(f"--fleet needs MPI: {reason}")
    if args.fleet:
        from .fleet import Fleet

        fleet = Fleet.start(session, args.per_gpu)
        if args.per_gpu:  # this rank's GPU; the plan is made again for it
            target = parse_target(f"cuda:{session.local_rank}")
            planned = plan_run(suites, tier, target, args.impl, raw_params)
        fleet.check_same_plan([key for p in planned for key in p.keys()])
    is_root = session is None or session.is_root
    # Rank 0 alone writes; every rank learns whether it can (or all would wait for it).
    output, problem = None, None
    if is_root:
        try:
            output = prepare_output(args.output, machine, args.force, create=True)
        except UsageError as e:
            problem = str(e)
    if session is not None:
        output, problem = session.bcast((output, problem))
    if problem:
        raise UsageError(problem)
    policy = SamplingPolicy(budget_s=args.time_budget or TIER_BUDGET_S[tier],
                            **({"max_call_s": args.max_call_s} if args.max_call_s else {}))

    err = Console(stderr=True, quiet=not is_root)
    err.print(f"aibench {__version__}: {sum(len(p.impls) for p in planned)} case(s), tier {tier}, target {target}; writing {output}")
    if session is not None and args.ranks is not None and args.ranks != session.size:
        err.print(f"--ranks {args.ranks} ignored: started by {mpi.launcher()} with {session.size} rank(s)")
    fleet_info = fleet.describe(str(target)) if fleet is not None else None  # collective
    if is_root:
        doc = new_document(argv, machine, tier, target,
                           system=fleet_info["nodes"][0]["system"] if fleet_info else None)
        if session is not None:
            doc.system["mpi"] = {**(doc.system.get("mpi") or {}), **session.info}
        doc.fleet = fleet_info
        writer = ResultWriter(output, doc)
    else:
        writer = mpi.NullWriter()  # rank 0 holds the run document
    if session is not None:  # a hung rank ends the run, naming it (watchdog.py)
        from . import watchdog

        watchdog.start(session, args.collective_timeout or watchdog.DEFAULT_TIMEOUT_S,
                       on_timeout=lambda message: writer.finish("failed", message))
    status = "complete"
    if session is None:
        stop_on_signals()  # SIGTERM and SIGHUP end a run as Ctrl-C does: saved, cleaned up
    # A fleet records each per-node case once per node.
    total = sum(len(p.impls) * (session.size if fleet is not None and not p.suite.uses_mpi else 1) for p in planned)
    try:
        with RunProgress(total, enabled=not args.json and is_root) as progress:
            run_planned(planned, writer, target, policy, progress, options, fleet)
        if session is not None and session.agree_to_stop():  # the last point where ranks agree
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        status = "interrupted"
    finally:
        if session is None:
            restore_signals()
    received = _SIGNALS_RECEIVED if session is None else mpi.stop_signals()
    ended_by = None
    if status == "interrupted":
        ended_by = f"signal {signal.Signals(received[-1]).name}" if received else "signal SIGINT"
    writer.finish(status, ended_by)
    if not is_root:
        return session.exit_code(None)  # rank 0's exit code
    cases = writer.doc.cases

    if not args.no_asv and cases:
        from .asv_export import export_run
        from .fleet import split_by_node

        try:
            for node_doc in split_by_node(writer.doc):  # a fleet: one asv machine per node
                err.print(f"asv results: {export_run(node_doc, args.asv_results)}")
        except Exception as e:  # noqa: BLE001 - the run document is the record; asv is a view
            err.print(f"[yellow]asv export skipped:[/] {e}")
    if args.json:
        print(json.dumps(writer.doc.to_dict(), indent=1))
    elif fleet is not None:
        from .fleet import print_fleet_summary

        print_fleet_summary(writer.doc)
        if any(c.node is None for c in cases):  # MPI suites, run by the fleet together
            print_summary([c for c in cases if c.node is None])
        err.print(f"run document: {output}")
    else:
        print_summary(cases)
        err.print(f"run document: {output}")
    code = exit_code(cases, args.fail_on_skip)
    if cases and all(c.status == "skipped" for c in cases):
        err.print(f"[yellow]nothing was measured:[/] all {len(cases)} case(s) were skipped (exit 1)")
    if status == "interrupted":
        err.print(f"interrupted: {len(cases)} finished case(s) saved in {output}")
        code = 128 + (received[-1] if received else signal.SIGINT)
    return code if session is None else session.exit_code(code)
