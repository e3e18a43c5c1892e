"""`aibench list | info | run | compare | diagnose | accept | publish | preview | plot`: the command line.

Exit codes: 0 every case passed; 1 some case failed (the others ran and were saved);
2 usage error, printed as one line; 130 interrupted (finished cases are saved).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from . import __version__
from .errors import UsageError
from .harness import SamplingPolicy
from .safety import check_machine_name, machine_name_of
from .suites.base import TIERS


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, no usage dump
        raise UsageError(message)


def _param(text: str) -> tuple[str, list[str]]:
    key, sep, values = text.partition("=")
    if not sep or not key.strip() or not values.strip():
        raise UsageError(f"malformed --param {text!r}: expected key=v1,v2")
    items = [v.strip() for v in values.split(",")]
    if any(not v for v in items):
        raise UsageError(f"malformed --param {text!r}: empty value")
    return key.strip(), items


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="aibench", description="What an AI node really delivers, measured and validated.")
    parser.add_argument("--version", action="version", version=f"aibench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p_list = sub.add_parser("list", help="suites, their cases and the impls available here")
    p_list.add_argument("--target", default="cpu")
    p_list.add_argument("--json", action="store_true")

    p_info = sub.add_parser("info", help="system fingerprint and theoretical peaks")
    p_info.add_argument("--json", action="store_true")

    p_cmp = sub.add_parser("compare", help="runs (nodes) side by side, with ratios and noise-aware verdicts")
    p_cmp.add_argument("runs", nargs="*", help="run documents; the first is the baseline")
    p_cmp.add_argument("--reference", metavar="NAME", help="baseline from results/reference/NAME*.json")
    p_cmp.add_argument("--fail-below", type=float, default=None, metavar="RATIO",
                       help="exit 1 when any shared case is below RATIO of the baseline")
    fmt = p_cmp.add_mutually_exclusive_group()
    fmt.add_argument("--markdown", action="store_true")
    fmt.add_argument("--json", action="store_true")

    p_diag = sub.add_parser("diagnose", help="the defective-node list of a fleet run")
    p_diag.add_argument("run", help="run document (a fleet run, or one node with --baseline)")
    base = p_diag.add_mutually_exclusive_group()
    base.add_argument("--baseline", metavar="FILE", help="compare every node with this run instead of the fleet median")
    base.add_argument("--reference", metavar="NAME", help="baseline from results/reference/NAME*.json")
    p_diag.add_argument("--threshold", type=float, default=0.1, metavar="FRACTION",
                        help="list figures more than this fraction below the reference (default 0.1)")
    p_diag.add_argument("--json", action="store_true")

    from .accept import add_parser as add_accept_parser

    add_accept_parser(sub)

    p_pub = sub.add_parser("publish", help="record run documents in the asv results tree and build asv's pages")
    p_pub.add_argument("runs", nargs="*", help="run documents (default: results/runs/*.json)")
    p_pub.add_argument("--results", type=Path, default=Path("results"), help="asv results tree (default results/)")
    p_pub.add_argument("--html", type=Path, default=Path("html"), help="where the pages go (default html/)")
    p_pub.add_argument("--repo", default=".", help="the aibench git checkout the runs' commits belong to")

    p_pre = sub.add_parser("preview", help="serve the published pages on 127.0.0.1")
    p_pre.add_argument("--html", type=Path, default=Path("html"))
    p_pre.add_argument("--port", type=int, default=8080)

    p_plot = sub.add_parser("plot", help="PNG charts of run documents and a page showing them")
    p_plot.add_argument("runs", nargs="+", help="run documents")
    p_plot.add_argument("--out", type=Path, default=Path("plots"), metavar="DIR",
                        help="where the PNGs and index.html go (default plots/)")

    p_run = sub.add_parser("run", help="run suites and write a result file")
    p_run.add_argument("--suite", action="append", help="suite to run (repeatable; default: gemm)")
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
    io = p_run.add_argument_group("storage and objectstore suites")
    io.add_argument("--path", default=None, metavar="DIR",
                    help="storage: directory for aibench's own test file (default: the current directory)")
    io.add_argument("--file", default=None, metavar="PATH",
                    help="storage: read this existing file instead (read-only, never modified)")
    io.add_argument("--device", default=None, metavar="PATH", help="storage: read this block device (read-only)")
    io.add_argument("--file-size", default=None, metavar="SIZE",
                    help="storage: size of the test file (e.g. 4G; default by tier, at most 1/4 of free space)")
    io.add_argument("--url", default=None, metavar="URL",
                    help="objectstore: s3://bucket/prefix (or gs://, az://); default: a local S3 endpoint")
    io.add_argument("--endpoint-url", default=None, metavar="URL", help="objectstore: S3 endpoint (http(s)://host:port)")
    io.add_argument("--keep", action="store_true", help="objectstore: keep the uploaded objects")
    io.add_argument("--read-only", action="store_true",
                    help="objectstore: read the existing objects under --url, write nothing")
    p_run.add_argument("--json", action="store_true", help="print the run document as JSON")
    p_run.add_argument("--ranks", type=int, default=None, metavar="N",
                       help="MPI ranks to launch locally for MPI suites (interconnect) or --fleet when not "
                            "started by mpirun/mpiexec/srun (default 2)")
    p_run.add_argument("--fleet", action="store_true",
                       help="every MPI rank is a node: run the per-node suites on all of them at once and "
                            "gather the results into one document (mpirun -n NODES --map-by ppr:1:node ...)")
    p_run.add_argument("--per-gpu", action="store_true",
                       help="with --fleet and --target cuda: one rank per GPU, each on cuda:<local rank>")
    return parser


def cmd_list(args) -> int:
    from .suites import all_suites
    from .targets import parse_target

    target = parse_target(args.target)
    out = []
    for suite in all_suites().values():
        entry = {"suite": suite.name, "description": suite.description, "targets": list(suite.target_kinds),
                 "params": {p.name: p.help for p in suite.params.values()}, "cases": {}, "impls": []}
        if target.kind in suite.target_kinds:
            entry["cases"] = {t: len(suite.default_cases(t, target)) for t in TIERS}
        for impl in suite.impls():
            reason = impl.unavailable_reason(target) if target.kind in impl.target_kinds else \
                f"not on the {target.kind} target"
            entry["impls"].append({"impl": impl.name, "available": reason is None, "reason": reason,
                                   "description": impl.description})
        out.append(entry)
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    console = Console()
    for e in out:
        console.print(f"[bold]{e['suite']}[/]: {e['description']}")
        console.print(f"  targets: {', '.join(e['targets'])}; params: "
                      + ", ".join(f"{k} ({v})" for k, v in e["params"].items()))
        if e["cases"]:
            console.print(f"  cases on {target}: " + ", ".join(f"{t} {n}" for t, n in e["cases"].items()))
        for i in e["impls"]:
            state = "[green]available[/]" if i["available"] else f"[yellow]unavailable[/]: {escape(i['reason'])}"
            console.print(f"  - {i['impl']:8s} {state}  ({escape(i['description'])})")
    return 0


def cmd_info(args) -> int:
    from .fingerprint import system_fingerprint
    from .peaks import gpu_peak

    info = system_fingerprint()
    for dev in (info.get("gpus") or {}).get("devices", []):
        dev["peak_tflops"] = {d: gpu_peak(dev["name"], d) for d in ("fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8")}
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    console = Console()
    cpu = info["cpu"]
    console.print(f"[bold]{info['hostname']}[/]  {info['os']['system']} {info['os']['release']}  Python {info['python']['version']}")
    console.print(f"CPU: {cpu['model']} ({cpu['arch']}), {cpu['sockets']} socket(s), {cpu['cores']} cores, "
                  f"{cpu['threads']} threads; ISA paths {', '.join(cpu['isa_paths'])} (best {cpu['best_isa']})")
    cap = f"; capped at {cpu['isa_cap']} by AIBENCH_CPU_ISA" if cpu.get("isa_cap") else ""
    console.print(f"     ISA levels {', '.join(cpu.get('isa_levels', []))}{cap}; bf16 path {cpu.get('lowp_paths', {}).get('bf16')}, "
                  f"int8 path {cpu.get('lowp_paths', {}).get('int8')}")
    console.print(f"     caches {cpu['caches']}; measured clock {cpu['measured_clock_ghz']:.3f} GHz")
    for dtype, peak in cpu["peak_tflops"].items():
        if peak:
            console.print(f"     peak {dtype}: {peak['value'] * 1e3:.1f} GFLOP/s  ({peak['source']})")
    console.print(f"Memory: {info['memory']['total_bytes'] / 2**30:.1f} GiB, NUMA nodes {info['memory']['numa_nodes']}")
    console.print(f"Build: {info['build'].get('compiler')} flags '{info['build'].get('cxx_flags')}', "
                  f"OpenMP {info['build'].get('openmp')}")
    for b in info["blas"]:
        console.print(f"BLAS: {b.get('internal_api')} {b.get('version')} ({b.get('num_threads')} threads, {b.get('architecture')})")
    gpus = info["gpus"]
    if gpus.get("available"):
        console.print(f"GPUs: {gpus['count']}, driver {gpus['driver_version']}, runtime {gpus['runtime_version']}")
        for dev in gpus["devices"]:
            peaks = ", ".join(f"{d} {p['value']:g}" for d, p in dev["peak_tflops"].items() if p)
            console.print(f"  {dev['name']} (cc {dev.get('major')}.{dev.get('minor')}): peaks TFLOP/s {peaks or 'unknown'}")
    else:
        console.print(f"GPUs: none ({gpus.get('reason')})")
    if info.get("mpi"):
        console.print(f"MPI: {info['mpi']}")
    return 0


def run_options(args) -> dict:
    """Run-wide options that suites read from RunContext.options."""
    seconds_option("--power-window", args.power_window)
    from .suites.objectstore.options import validate_options as objectstore_options
    from .suites.storage.source import validate_options as storage_options

    io = {"path": args.path, "file": args.file, "device": args.device, "file_size": args.file_size,
          "url": args.url, "endpoint_url": args.endpoint_url, "keep": args.keep, "read_only": args.read_only}
    storage_options(io)  # UsageError (exit 2) before anything runs
    objectstore_options(io)
    return {"power": args.power, "power_window_s": args.power_window, "redfish": args.redfish, **io}


MAX_LOCAL_RANKS = 256
MAX_SECONDS = 7 * 86400.0


def check_isa_cap() -> None:
    """AIBENCH_CPU_ISA (a cap on the own kernels' instruction level) must name a level this
    CPU can run: a usage error here, before any case, not a failed case per kernel."""
    if not os.environ.get("AIBENCH_CPU_ISA"):
        return
    from . import _core

    try:
        _core.isa_level_cap()
    except ValueError as e:
        raise UsageError(str(e)) from None


def seconds_option(flag: str, value: float | None) -> None:
    if value is not None and not (0 < value <= MAX_SECONDS):  # also refuses nan and inf
        raise UsageError(f"{flag} must be a number of seconds above 0 and at most {MAX_SECONDS:.0f} (got {value})")


def prepare_output(path: Path | None, machine: str, force: bool, create: bool) -> Path:
    """Where the run document goes: --output (replacing only an aibench run document, or
    any regular file with --force), else a new, uniquely named file under results/runs/.
    Checks the directory can be written (one line, exit 2) before anything runs."""
    from .runner import default_output
    from .safety import check_overwrite

    try:
        if path is None:
            path = default_output(machine, create=create)
        else:
            check_overwrite(path, force)
            path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".aibench-write-test-"):
            pass
    except OSError as e:
        where = path.parent if path is not None else "results/runs"
        raise UsageError(f"cannot write the run document in {where}: {e.strerror or e}") from None
    return path


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
    options = run_options(args)
    if args.ranks is not None and not 1 <= args.ranks <= MAX_LOCAL_RANKS:
        raise UsageError(f"--ranks must be between 1 and {MAX_LOCAL_RANKS} (got {args.ranks}): it launches that many "
                         "processes on this machine")
    machine = check_machine_name(args.machine) if args.machine else machine_name_of(socket.gethostname())
    if args.per_gpu and not (args.fleet and target.kind == "cuda"):
        raise UsageError("--per-gpu goes with --fleet and --target cuda")
    suites = args.suite or default_suites(target, raw_params) or default_suites(target)
    planned = plan_run(suites, tier, target, args.impl, raw_params)
    if not planned:
        raise UsageError("nothing to run: no impl of the chosen suite(s) runs on this target")
    # MPI: under a launcher every rank runs (rank 0 writes and prints); without one, a run
    # with an MPI suite or --fleet launches itself on --ranks local ranks and returns their
    # exit code.
    from . import mpi

    session = fleet = None
    if mpi.under_launcher():
        session = mpi.start_session()
    elif args.fleet or any(p.suite.uses_mpi for p in planned):
        reason = mpi.mpi_unavailable_reason()
        if reason is None:
            # The document's name is fixed here, so that whatever happens to the ranks this
            # process can close the document they leave (a usage error launches nothing).
            output = prepare_output(args.output, machine, args.force, create=True)
            child_argv = argv[1:] if args.output else [*argv[1:], "--output", str(output)]
            code, stop_signal = mpi.self_launch(args.ranks or mpi.DEFAULT_RANKS, child_argv)
            from .results import close_abandoned_document

            if stop_signal is not None:
                done = close_abandoned_document(output, "interrupted", f"signal {signal.Signals(stop_signal).name}")
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
        fleet.check_same_plan([(p.suite.name, p.suite.case_id(p.params), p.impl.name) for p in planned])
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
    err.print(f"aibench {__version__}: {len(planned)} case(s), tier {tier}, target {target}; writing {output}")
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
    status = "complete"
    if session is None:
        stop_on_signals()  # SIGTERM and SIGHUP end a run as Ctrl-C does: saved, cleaned up
    # A fleet records each per-node case once per node.
    total = sum(session.size if fleet is not None and not p.suite.uses_mpi else 1 for p in planned)
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


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        check_isa_cap()
        if args.command == "list":
            return cmd_list(args)
        if args.command == "info":
            return cmd_info(args)
        if args.command == "compare":
            from .compare import cmd_compare

            return cmd_compare(args)
        if args.command == "diagnose":
            from .diagnose import cmd_diagnose

            return cmd_diagnose(args)
        if args.command == "accept":
            from .accept import cmd_accept

            return cmd_accept(args, ["aibench", *argv])
        if args.command in ("publish", "preview"):
            from . import publish

            return publish.cmd_publish(args) if args.command == "publish" else publish.cmd_preview(args)
        if args.command == "plot":
            from .plot import cmd_plot

            return cmd_plot(args)
        return cmd_run(args, ["aibench", *argv])
    except UsageError as e:
        print(f"aibench: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("aibench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `aibench compare ... | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except Exception:
        from .mpi import abort_on_crash

        abort_on_crash()  # an MPI job of several ranks: abort them all rather than hang
        raise


if __name__ == "__main__":
    sys.exit(main())
