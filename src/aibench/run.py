"""`aibench run`: its options, read into a RunRequest (request.py) and run in this process
(session.py); the summary and the exit code are report.py's."""

from __future__ import annotations

import argparse
from pathlib import Path

from .mpi import DEFAULT_THREAD_LEVEL, THREAD_LEVELS
from .request import DEFAULT_ASV_RESULTS, RunRequest, add_collective_timeout


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
    p_run.add_argument("--asv-results", type=Path, default=DEFAULT_ASV_RESULTS,
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
    add_collective_timeout(p_run)
    p_run.add_argument("--mpi-thread-level", choices=THREAD_LEVELS, default=DEFAULT_THREAD_LEVEL,
                       help="the thread support an MPI run initialises with: single (the default: plain MPI_Init, "
                            "as IMB-MPI1 and osu_allreduce), or MPI_Init_thread with funneled, serialized or "
                            "multiple; the library's algorithms may differ by level (recorded in system.mpi)")
    p_run.add_argument("--per-gpu", action="store_true",
                       help="with --fleet and --target cuda: one rank per GPU, each on cuda:<local rank>")


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


def cmd_run(args, argv: list[str]) -> int:
    from .report import print_run
    from .session import run

    report = run(RunRequest.from_args(args, argv))
    print_run(report, as_json=args.json)
    return report.exit_code
