"""One run in this process: `run(RunRequest) -> RunReport`, as `aibench run`, `aibench
accept` and asv's benchmarks (asv_benchmarks.run_point, for an MPI suite's case asked for
outside any MPI run) call it.

The session plans the cases; launches the MPI ranks when a suite needs them and no
launcher started this process (and closes the document they leave); starts the fleet;
writes the run document after every case (rank 0 alone); starts the hang watchdog; and
holds the run's one StopSignals. The exit code, the asv record and what is printed at
the end are report.py's.
"""

from __future__ import annotations

import signal
import socket
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from . import __version__, mpi, watchdog
from .errors import UsageError
from .harness import SamplingPolicy
from .report import RunProgress, RunReport, exit_code, record_in_asv
from .request import RunRequest
from .results import ResultWriter
from .runner import TIER_BUDGET_S, PlannedCase, default_suites, new_document, plan_run, run_planned
from .safety import check_machine_name, machine_name_of
from .stop_signals import StopSignals
from .targets import Target, parse_target


@dataclass
class Plan:
    target: Target
    suite_names: list[str]
    cases: list[PlannedCase]
    options: dict[str, Any]  # RunContext.options
    machine: str


def plan_request(request: RunRequest) -> Plan:
    """Every case the request runs, or a UsageError before anything runs."""
    target = parse_target(request.target)
    machine = check_machine_name(request.machine) if request.machine else machine_name_of(socket.gethostname())
    suites = request.suites or default_suites(target, request.params) or default_suites(target)
    cases = plan_run(suites, request.tier, target, request.impls, request.params)
    options = run_options(request, list(dict.fromkeys(p.suite for p in cases)))
    if not cases:
        raise UsageError("nothing to run: no impl of the chosen suite(s) runs on this target")
    return Plan(target, suites, cases, options, machine)


def run_options(request: RunRequest, suites) -> dict[str, Any]:
    """Run-wide options that suites read from RunContext.options: the energy options and
    every suite's declared ones, checked by the suites that run (UsageError, exit 2,
    before anything runs)."""
    declared = request.suite_option_values()
    for suite in suites:
        suite.validate_options(declared)
    return {"power": request.power, "power_window_s": request.power_window, "redfish": request.redfish, **declared}


def run(request: RunRequest) -> RunReport:
    """Run the request here. Under a launcher (mpirun, srun) every rank calls it and rank 0
    writes; without one, a run with an MPI suite or a fleet launches itself on --ranks
    local ranks (mpi.self_launch) and reports what they did."""
    plan = plan_request(request)
    session = None
    if mpi.under_launcher():
        session = mpi.start_session(request.mpi_thread_level, StopSignals())
    elif request.fleet or any(p.suite.uses_mpi for p in plan.cases):
        reason = mpi.mpi_unavailable_reason()
        if reason is None:
            return _launch_ranks(request, plan.machine)
        if request.fleet:
            raise UsageError(f"--fleet needs MPI: {reason}")
    return _run_here(request, plan, session)


# ---- the run document's path ------------------------------------------------------------------


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


# ---- a run that launches its own ranks ---------------------------------------------------------


def _launch_ranks(request: RunRequest, machine: str) -> RunReport:
    """`mpiexec -n N aibench run ...` of this request; the ranks print (rank 0), this
    process closes the document they leave unfinished."""
    from .leftovers import remove_partial_writes
    from .results import close_abandoned_document

    # The document's name is fixed here, so that whatever happens to the ranks this
    # process can close the document they leave (a usage error launches nothing).
    output = prepare_output(request.output, machine, request.force, create=True)
    code, stop_signal = mpi.self_launch(request.ranks or mpi.DEFAULT_RANKS, replace(request, output=output).argv(),
                                        stdout=_stdout_fd())
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
    doc = _read_document(output)
    return RunReport(status=doc.status if doc else "failed", ended_by=doc.ended_by if doc else None,
                     exit_code=code, output=output, document=doc, prints=False)


def _stdout_fd() -> int | None:
    """Where launched ranks print: this process's stdout, also when redirected (accept
    sends its runs' tables to stderr); None (inherit) when it is no file."""
    try:
        return sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def _read_document(output: Path):
    from .results import RunDocument

    try:
        return RunDocument.load(output)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def name_forwarded_sighup(output: Path) -> None:
    """hydra passes only SIGINT and SIGTERM on to the ranks, so a self-launch forwards a
    closed terminal's SIGHUP as SIGINT and the ranks save `ended_by: signal SIGINT`: the
    document says the signal that came."""
    from .results import write_atomic

    doc = _read_document(output)
    if doc is not None and doc.status == "interrupted" and doc.ended_by == "signal SIGINT":
        doc.ended_by = "signal SIGHUP"
        write_atomic(output, doc.to_dict())


# ---- a run in this process (alone, or one rank of an MPI run) ------------------------------------


def _run_here(request: RunRequest, plan: Plan, session: mpi.Session | None) -> RunReport:
    target, planned, fleet = plan.target, plan.cases, None
    if request.fleet:
        from .fleet import Fleet

        fleet = Fleet.start(session, request.per_gpu)
        if request.per_gpu:  # this rank's GPU; the plan is made again for it
            target = parse_target(f"cuda:{session.local_rank}")
            planned = plan_run(plan.suite_names, request.tier, target, request.impls, request.params)
        fleet.check_same_plan([key for p in planned for key in p.keys()])
    is_root = session is None or session.is_root
    output = _agree_on_output(request, plan.machine, session, is_root)
    policy = SamplingPolicy(budget_s=request.time_budget or TIER_BUDGET_S[request.tier],
                            **({"max_call_s": request.max_call_s} if request.max_call_s else {}))

    err = Console(stderr=True, quiet=not is_root)
    err.print(f"aibench {__version__}: {sum(len(p.impls) for p in planned)} case(s), tier {request.tier}, "
              f"target {target}; writing {output}")
    if session is not None and request.ranks is not None and request.ranks != session.size:
        err.print(f"--ranks {request.ranks} ignored: started by {mpi.launcher()} with {session.size} rank(s)")
    writer = _open_document(request, plan.machine, target, output, session, fleet)
    if session is not None:  # a hung rank ends the run, naming it (watchdog.py)
        watchdog.start(session, request.collective_timeout or watchdog.DEFAULT_TIMEOUT_S,
                       on_timeout=lambda message: writer.finish("failed", message))
    stop = session.stop if session is not None else StopSignals()
    if session is None:
        stop.raise_on_signals()  # SIGTERM and SIGHUP end a run as Ctrl-C does: saved, cleaned up
    # A fleet records each per-node case once per node.
    total = sum(len(p.impls) * (session.size if fleet is not None and not p.suite.uses_mpi else 1) for p in planned)
    status = "complete"
    try:
        with RunProgress(total, enabled=not request.json and is_root) as progress:
            run_planned(planned, writer, target, policy, progress, plan.options, fleet)
        if session is not None and session.agree_to_stop():  # the last point where ranks agree
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        status = "interrupted"
    finally:
        if session is None:
            stop.restore()
    ended_by = stop.ended_by() if status == "interrupted" else None
    writer.finish(status, ended_by)
    code, doc = None, writer.doc
    if is_root:
        if request.record_asv and doc.cases:
            record_in_asv(doc, request.asv_results, err)
        code = exit_code(doc.cases, request.fail_on_skip, stop.stopped_by() if status == "interrupted" else None)
    if session is not None:
        code = session.exit_code(code)  # rank 0's, on every rank
        watchdog.stop()
    return RunReport(status=status, ended_by=ended_by, exit_code=code, output=output, document=doc, prints=is_root)


def _open_document(request: RunRequest, machine: str, target: Target, output: Path, session: mpi.Session | None,
                   fleet) -> ResultWriter | mpi.NullWriter:
    """Rank 0's writer of the run document, saved after every case; the other ranks keep none."""
    fleet_info = fleet.describe(str(target)) if fleet is not None else None  # collective
    if session is not None and not session.is_root:
        return mpi.NullWriter()
    doc = new_document(request.command_line(), machine, request.tier, target,
                       system=fleet_info["nodes"][0]["system"] if fleet_info else None)
    if session is not None:
        doc.system["mpi"] = {**(doc.system.get("mpi") or {}), **session.info}
    doc.fleet = fleet_info
    return ResultWriter(output, doc)


def _agree_on_output(request: RunRequest, machine: str, session: mpi.Session | None, is_root: bool) -> Path:
    """Rank 0 alone writes; every rank learns whether it can (or all would wait for it)."""
    output, problem = None, None
    if is_root:
        try:
            output = prepare_output(request.output, machine, request.force, create=True)
        except UsageError as e:
            problem = str(e)
    if session is not None:
        output, problem = session.bcast((output, problem))
    if problem:
        raise UsageError(problem)
    return output
