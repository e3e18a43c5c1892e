"""`aibench preflight`: is this set of nodes fit to be benchmarked together? Run under the
same launcher as the benchmark (`mpirun ... aibench preflight`, `srun aibench preflight`;
alone it launches --ranks local ranks, as `aibench run` does):

1. an MPI hello across every rank: the rank -> host / GPU / NIC / NUMA map;
2. a link check between nodes (the p2p matrix's ping-pong and windowed bandwidth, about
   --link-seconds per pair, disjoint pairs in parallel rounds): by the plan of linkplan.py
   (each node against about log2 N partners, then the suspects' follow-up), or every pair
   with --all-pairs; a pair whose data arrived wrong, or whose bandwidth is under 0.8x the
   median link's, fails, and a node slow against most of its partners is named;
3. a drift table of what must match across nodes (aibench version and build, Python, MPI
   library, mpi4py, NCCL, NVIDIA driver, kernel, CPU model, microcode, BIOS, GPU VBIOS,
   and the environment variables that change MPI/NCCL/OpenMP/BLAS behaviour).

Exit 0 when every pair passed and nothing drifted; 1 otherwise, with the odd hosts named;
2 usage error; 3 a rank stopped answering (the hang watchdog, as in `aibench run`).
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections import Counter
from pathlib import Path
from typing import Any

from . import __version__, linkplan, mpi

# The fields of the drift table, in the order printed: (key, what it is).
DRIFT_FIELDS = (
    ("aibench", "aibench version"), ("aibench_build", "aibench build (commit, compiler)"),
    ("python", "Python"), ("mpi_library", "MPI library"), ("mpi4py", "mpi4py"), ("nccl", "NCCL"),
    ("nvidia_driver", "NVIDIA driver"), ("kernel", "kernel"), ("cpu_model", "CPU model"),
    ("microcode", "CPU microcode"), ("bios", "BIOS"), ("gpu_vbios", "GPU VBIOS"), ("env", "behaviour env"),
)


def _nccl_version() -> str | None:
    try:
        from cupy.cuda import nccl

        v = nccl.get_version()
        return f"{v // 10000}.{v // 100 % 100}.{v % 100}" if v >= 10000 else f"{v // 1000}.{v // 100 % 10}.{v % 100}"
    except Exception:  # noqa: BLE001 - no CuPy, no NCCL, no GPU: not known here
        return None


def _gpu_vbios() -> list[str] | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        out = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            v = pynvml.nvmlDeviceGetVbiosVersion(pynvml.nvmlDeviceGetHandleByIndex(i))
            out.append(v.decode() if isinstance(v, bytes) else v)
        return out
    except Exception:  # noqa: BLE001 - no NVML: no GPU to compare
        return None


def gpu_inventory() -> list[dict[str, Any]] | None:
    """The CUDA devices this rank sees (index, name, PCI bus ID), in CUDA's order (the
    index of cuda:N); None when aibench was built without CUDA."""
    from .targets import cuda as cu

    module = cu.cuda_module()
    if module is None:
        return None
    return [{"index": i, "name": cu.device_name(i), "pci_bus_id": cu.device_properties(i).get("pci_bus_id")}
            for i in range(module.device_count())]


def node_software(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """What must match across nodes, as this node has it (each None where not readable)."""
    from . import _core, fingerprint
    from .targets import cpu as cpu_target
    from .targets.cpu import read_sysfs

    build = _core.build_info()
    from mpi4py import MPI
    import mpi4py

    library = MPI.Get_library_version().strip().splitlines()
    bios = read_sysfs(Path("/sys/class/dmi/id/bios_version"))
    bios_date = read_sysfs(Path("/sys/class/dmi/id/bios_date"))
    return {
        "aibench": __version__,
        "aibench_build": f"{(build.get('git_commit') or 'unknown')[:12]} {build.get('compiler')} {build.get('cxx_flags', '').strip()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "mpi_library": library[0].strip() if library else None,
        "mpi4py": mpi4py.__version__,
        "nccl": _nccl_version(),
        "nvidia_driver": fingerprint._nvidia_driver(),
        "kernel": platform.release(),
        "cpu_model": fingerprint._cpu_model(),
        "microcode": cpu_target.cpuinfo_first().get("microcode"),
        "bios": f"{bios} ({bios_date})" if bios and bios_date else bios,
        "gpu_vbios": _gpu_vbios(),
        "env": {**mpi.behaviour_env(environ), **fingerprint.threading_env(environ)},
    }


def rank_placement(session) -> dict[str, Any]:
    """This rank's place: host, CPUs it may run on, their NUMA nodes, GPUs, NICs."""
    from . import fingerprint

    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    numa = sorted({int(p.name[4:]) for p in Path("/sys/devices/system/node").glob("node[0-9]*")
                   if any((p / f"cpu{c}").exists() for c in cpus)})
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return {"rank": session.rank, "host": session.host, "pid": os.getpid(), "cpus": _ranges(cpus), "numa": numa,
            "gpus": visible if visible is not None else "all", "gpu_devices": gpu_inventory(),
            "nics": [n.get("name") for n in fingerprint._nics()]}


def _ranges(values: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2,5'."""
    out, start = [], None
    for i, v in enumerate(values):
        if start is None:
            start = v
        if i + 1 == len(values) or values[i + 1] != v + 1:
            out.append(f"{start}-{v}" if v != start else f"{v}")
            start = None
    return ",".join(out)


def drift(nodes: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The fields whose value differs across nodes: for each, the most common value and the
    hosts that have another (every host, by value, when no value is held by most)."""
    found = []
    for key, label in DRIFT_FIELDS:
        values = {host: json.dumps(sw.get(key), sort_keys=True) for host, sw in nodes.items()}
        counts = Counter(values.values())
        if len(counts) < 2:
            continue
        (common, n_common), (_, n_next) = counts.most_common(2)
        majority = common if n_common > n_next else None
        odd = {h: json.loads(v) for h, v in values.items() if v != majority}
        entry = {"field": key, "what": label, "common": json.loads(majority) if majority else None, "odd": odd}
        if key == "env":  # name the variables, not the whole environment
            envs = {h: nodes[h].get("env") or {} for h in nodes}
            entry["variables"] = sorted({k for e in envs.values() for k in e
                                         if any(e.get(k) != o.get(k) for o in envs.values())})
        found.append(entry)
    return found


def failed_links(matrix: dict[str, Any]) -> list[str]:
    """The pairs that failed the link check, one line each."""
    bad = [f"{s['src']} -> {s['dst']}: {s['gbps']:.3f} GB/s, {s['fraction_of_median']:.2f}x the median link"
           for s in matrix.get("slow_links", [])]
    return bad + unusable_links(matrix)


def unusable_links(matrix: dict[str, Any]) -> list[str]:
    """The measured pairs (every pair, unless the matrix lists its `pairs`) whose data
    arrived wrong or that have no usable figure, one line each."""
    bad = [f"{link}: data arrived wrong" for link in matrix.get("wrong_links", [])]
    # Fail closed: a link with no figure, or one that is not a finite positive number,
    # fails (a NaN would also blind the slow-link test, through the median).
    labels, bw = matrix.get("participants") or [], matrix.get("bw_gbps") or []
    pairs = matrix.get("pairs")
    measured = ([(i, j) for i in range(len(labels)) for j in range(len(labels)) if i != j] if pairs is None
                else [(i, j) for a, b in pairs for i, j in ((a, b), (b, a))])
    bad += [f"{labels[i]} -> {labels[j]}: bandwidth not measured ({bw[i][j] if i < len(bw) else None!r})"
            for i, j in measured
            if not (i < len(bw) and isinstance(bw[i][j], (int, float)) and 0 < bw[i][j] < math.inf)]
    return bad


LINK_BYTES = 1 << 20  # the link check's message size (the p2p matrix's windowed bandwidth)


def _directed_figures(matrix: dict[str, Any], pairs: list[tuple[int, int]]):
    """(src, dst, gbps) of both directions of each pair, NaN where no figure came back."""
    bw = matrix["bw_gbps"]
    directed = [(i, j) for a, b in pairs for i, j in ((a, b), (b, a))]
    gbps = [bw[i][j] if isinstance(bw[i][j], (int, float)) else math.nan for i, j in directed]
    return [i for i, _ in directed], [j for _, j in directed], gbps


def check_links(session, link_seconds: float, all_pairs: bool) -> tuple[dict | None, dict | None]:
    """Collective. The link check by the plan (or every pair): on rank 0 the plan rounds'
    matrix and the plan's report (its rounds, follow-up and verdict), else (None, None)."""
    from .suites.interconnect.p2p import link_matrix, participants

    n = len(participants(session))
    plan = linkplan.plan(n, all_pairs=all_pairs)
    rounds = plan.as_lists()
    started = time.monotonic()
    matrix = link_matrix(session, LINK_BYTES, budget_s=link_seconds, min_iters=5, schedule=rounds)
    round_s = (time.monotonic() - started) / len(rounds)
    found, follow = None, ([], [])
    if session.is_root:
        pairs = [p for r in rounds for p in r]
        matrix["pairs"] = pairs
        found = linkplan.judge(n, *_directed_figures(matrix, pairs))
        follow = linkplan.followup_rounds(n, found)
    against_good, again = session.bcast(follow)
    second = None
    if against_good or again:  # only the suspects' links
        second = link_matrix(session, LINK_BYTES, budget_s=link_seconds, min_iters=5, schedule=against_good + again)
    if not session.is_root:
        return None, None
    label = matrix["participants"]
    if second is None:
        verdict = linkplan.Verdict(found.slow_nodes, [])  # no suspect pair
    else:
        follow_pairs = [p for r in against_good + again for p in r]
        second["pairs"] = follow_pairs
        verdict = linkplan.confirm(n, found, *_directed_figures(second, follow_pairs))
    return matrix, {
        "all_pairs": plan.all_pairs, "rounds": len(rounds), "all_pairs_rounds": linkplan.all_pairs_rounds(n),
        "partners": min((len(v) for v in found.partners.values()), default=0),
        "round_s": round_s, "median_gbps": found.median_gbps,
        "suspect_pairs": [[label[a], label[b]] for a, b in found.suspect_pairs],
        "followup_rounds": len(against_good) + len(again),
        "followup": None if second is None else {
            "pairs": [[label[a], label[b]] for a, b in second["pairs"]],
            "bw_gbps": {f"{label[a]} -> {label[b]}": second["bw_gbps"][a][b]
                        for p in second["pairs"] for a, b in (p, p[::-1])},
            "unusable": unusable_links(second)},
        "slow_nodes": [label[x] for x in verdict.slow_nodes],
        "slow_links": [[label[a], label[b]] for a, b in verdict.slow_links],
        "not_reproduced": [[label[a], label[b]] for a, b in verdict.not_reproduced],
    }


def link_failures(matrix: dict[str, Any], link_plan: dict[str, Any]) -> list[str]:
    """The link check's failures, one line each: the slow nodes, the slow links (slow in
    the rounds and again in the follow-up), and the pairs whose data arrived wrong or that
    have no figure."""
    follow = link_plan["followup"] or {}
    figures = follow.get("bw_gbps", {})
    index = {label: i for i, label in enumerate(matrix["participants"])}
    lines = [f"{node}: slow against most of its partners (a slow node)" for node in link_plan["slow_nodes"]]
    for a, b in link_plan["slow_links"]:
        first = [matrix["bw_gbps"][index[x]][index[y]] for x, y in ((a, b), (b, a))]
        again = [figures.get(f"{x} -> {y}") for x, y in ((a, b), (b, a))]
        shown = [" / ".join("-" if v is None else f"{v:.3f}" for v in figs) for figs in (first, again)]
        lines.append(f"{a} <-> {b}: slow link, {shown[0]} then {shown[1]} GB/s each way "
                     f"(median link {link_plan['median_gbps']:.3f})")
    return lines + unusable_links(matrix) + follow.get("unusable", [])


def run_preflight(session, link_seconds: float, on_hello=None, all_pairs: bool = False) -> dict[str, Any] | None:
    """Collective. The report on rank 0, None elsewhere; on_hello(report) is called on rank
    0 with the rank map and the drift table before the link check."""
    from .suites.interconnect.p2p import participants

    from . import watchdog

    with watchdog.section("preflight hello"):
        placements = session.comm.gather(rank_placement(session), root=0)
        mine = node_software() if session.local_rank == 0 else None
        software = session.comm.gather(mine, root=0)
    report = None
    if session.is_root:
        nodes = {p["host"]: sw for p, sw in zip(placements, software) if sw is not None}
        report = {"schema": "aibench.preflight", "ranks": placements, "nodes": nodes, "drift": drift(nodes),
                  "links": None, "link_plan": None, "failed_links": [],
                  "mpi": session.info}
        if on_hello is not None:  # said before the link check, which drift can hang
            on_hello(report)
    if len(participants(session)) >= 2:
        with watchdog.section("preflight link check"):
            matrix, link_plan = check_links(session, link_seconds, all_pairs)
        if report is not None:
            report["links"], report["link_plan"] = matrix, link_plan
            report["failed_links"] = link_failures(matrix, link_plan)
    if report is not None:
        report["ok"] = not report["drift"] and not report["failed_links"]
    return report


def print_hello(report: dict[str, Any]) -> None:
    """The rank map and the drift table."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    ranks = Table(title=f"ranks ({len(report['ranks'])} on {len(report['nodes'])} node(s); "
                        f"{report['mpi'].get('library', '?')}, launched by {report['mpi'].get('launcher', '?')})")
    for col in ("rank", "host", "cpus", "numa", "gpus", "nics"):
        ranks.add_column(col)
    for p in report["ranks"]:
        ranks.add_row(str(p["rank"]), p["host"], p["cpus"], ",".join(map(str, p["numa"])) or "-", _gpus_seen(p),
                      ",".join(n for n in p["nics"] if n) or "-")
    console.print(ranks)
    _print_drift(console, report)


def _gpus_seen(placement: dict[str, Any]) -> str:
    """The gpus column: CUDA_VISIBLE_DEVICES (or all), then each device the rank sees."""
    devices = placement.get("gpu_devices") or []
    return "; ".join([str(placement["gpus"])] + [f"{d['index']}: {d['name']} {d['pci_bus_id']}" for d in devices])


MATRIX_PRINTED_UP_TO = 8  # endpoints; a wider link matrix is left to the report


def print_links(report: dict[str, Any]) -> None:
    """The link check and the verdict."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    m = report["links"]
    if m is None:
        console.print("links: one node and one rank: nothing to check")
    elif len(m["participants"]) > MATRIX_PRINTED_UP_TO:  # too wide to read: the report has it
        console.print(f"link check ({m['scope']}: {len(m['participants'])} endpoints; median "
                      f"{m['median_gbps']:.3f} GB/s, {m['median_lat_p50_us']:.1f} us); the matrix is in the "
                      f"report (--json, --output)")
    else:
        links = Table(title=f"link check ({m['scope']}: {len(m['participants'])} endpoints, "
                            f"{m['rounds']} round(s); median {m['median_gbps']:.3f} GB/s, "
                            f"{m['median_lat_p50_us']:.1f} us)")
        links.add_column("from \\ to")
        for p in m["participants"]:
            links.add_column(p, justify="right")
        for i, src in enumerate(m["participants"]):
            links.add_row(src, *("-" if v is None else f"{v:.3f}" for v in m["bw_gbps"][i]))
        console.print(links)
    lp = report.get("link_plan")
    if lp:
        how = ("every pair" if lp["all_pairs"] else
               f"the plan: each node against {lp['partners']}+ partners, instead of all-pairs' "
               f"{lp['all_pairs_rounds']} rounds")
        console.print(f"link check by {how}: {lp['rounds']} round(s) of {lp['round_s']:.2f} s, "
                      f"{lp['followup_rounds']} follow-up round(s) for {len(lp['suspect_pairs'])} suspect pair(s)")
        for a, b in lp["not_reproduced"]:
            console.print(f"[yellow]not reproduced:[/] {a} <-> {b} was slow once, healthy on the recheck")
    for line in report["failed_links"]:
        console.print(f"[red]failed link:[/] {line}")
    for entry in report["drift"]:
        console.print(f"[red]drift:[/] {entry['what']} differs on {', '.join(entry['odd'])}")
    console.print("preflight: [green]passed[/]" if report["ok"] else
                  f"preflight: [red]failed[/] ({len(report['failed_links'])} link(s), "
                  f"{len(report['drift'])} field(s) drifted)")


def _print_drift(console, report: dict[str, Any]) -> None:
    from rich.table import Table

    drifted = report["drift"]
    table = Table(title="what must match across nodes")
    for col in ("field", "value on most nodes", "differs on"):
        table.add_column(col, overflow="fold")
    first = next(iter(report["nodes"].values()), {})
    for key, label in DRIFT_FIELDS:
        entry = next((d for d in drifted if d["field"] == key), None)
        if entry is None:
            value = first.get(key)
            shown = ", ".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else str(value)
            table.add_row(label, shown or "-", "")
        else:
            odd = "; ".join(f"{h}: {v}" for h, v in entry["odd"].items())
            if entry.get("variables"):
                odd = f"variables {', '.join(entry['variables'])}: " + "; ".join(
                    f"{h}: {dict((k, v.get(k)) for k in entry['variables'])}" for h, v in entry["odd"].items())
            table.add_row(f"[red]{label}[/]", str(entry["common"]) if entry["common"] is not None else "(no majority)",
                          f"[red]{odd}[/]")
    console.print(table)


# The round time --plan assumes: a round at the default --link-seconds 1 as measured
# (link_plan.round_s) between 2 local ranks on the 2-core development machine: the pair's
# bandwidth both ways (1 s), its latency ping-pong, warm-up windows, the byte check of
# the received windows and the barrier. The 16-host test cluster's rounds are no guide:
# its hosts share those 2 cores (13-18 s a round at --link-seconds 0.3, docs/clusters.md).
# A run's own is in its report (link_plan.round_s): give it as --round-s.
DEFAULT_ROUND_S = 3.6


def plan_sizes(text: str) -> list[int]:
    from .errors import UsageError

    try:
        sizes = [int(x) for x in text.split(",")]
    except ValueError:
        sizes = []
    if not sizes or any(not 2 <= n <= 1_000_000 for n in sizes):
        raise UsageError(f"--plan needs node counts of at least 2 (and at most 1000000), comma-separated (got {text!r})")
    return sizes


def plan_round_s(value: float | None) -> float:
    from .errors import UsageError

    if value is None:
        return DEFAULT_ROUND_S
    if not 0 < value < math.inf:
        raise UsageError(f"--round-s must be a number of seconds above 0 (got {value})")
    return value


def print_plan(sizes: list[int], round_s: float, assumed: bool) -> None:
    """The --plan table: per node count, the plan's rounds and follow-up, and all-pairs'."""
    print(f"link-check schedule; round time {round_s:g} s "
          + ("(assumed: a round at --link-seconds 1 measured between 2 local ranks; give yours with --round-s)"
             if assumed
             else "(--round-s)"))
    print(f"{'nodes':>7} {'rounds':>6} {'pairs/rnd':>9} {'follow-up':>9} {'plan min':>9} "
          f"{'all-pairs rounds':>16} {'all-pairs min':>13}")
    for row in linkplan.schedule_table(sizes, round_s):
        print(f"{row['nodes']:>7} {row['plan_rounds']:>6} {row['pairs_per_round']:>9} "
              f"{row['followup_rounds_worst']:>9} {row['plan_minutes']:>9.2f} "
              f"{row['all_pairs_rounds']:>16} {row['all_pairs_minutes']:>13.2f}"
              + ("  (all-pairs: the plan would not be shorter)" if row["all_pairs_used"] else ""))
    print("rounds: each node against max(3, ceil(log2 N)) distinct partners (one more round when N is odd); "
          "follow-up: at most, while the suspects are few (each suspect against a known-good node, "
          "then the suspect pairs again); plan min counts both")


def cmd_preflight(args) -> int:
    from .errors import UsageError
    from .request import ranks_option, seconds_option
    from .safe_write import PREFLIGHT_REPORT, check_target, write_file

    if args.plan is not None:  # the schedule only: no MPI, no ranks
        print_plan(plan_sizes(args.plan), plan_round_s(args.round_s), args.round_s is None)
        return 0
    if not 0 < args.link_seconds <= 60:
        raise UsageError(f"--link-seconds must be above 0 and at most 60 (got {args.link_seconds})")
    ranks_option(args.ranks)  # the same limits as `aibench run` (#27: 300 ranks hung)
    seconds_option("--collective-timeout", args.collective_timeout)
    if args.output:  # refused before any rank starts (#27: it replaced /dev/null)
        check_target(args.output, PREFLIGHT_REPORT, args.force, "--output")
    reason = mpi.mpi_unavailable_reason()
    if reason is not None:
        raise UsageError(f"preflight needs MPI: {reason}")
    if not mpi.under_launcher():
        code, _ = mpi.self_launch(args.ranks or mpi.DEFAULT_RANKS,
                                  ["preflight", "--link-seconds", repr(args.link_seconds),
                                   *(["--collective-timeout", repr(args.collective_timeout)]
                                     if args.collective_timeout is not None else []),
                                   *(["--json"] if args.json else []), *(["--force"] if args.force else []),
                                   *(["--all-pairs"] if args.all_pairs else []),
                                   *(["--output", str(args.output)] if args.output else [])])
        if args.output:
            from .leftovers import remove_partial_writes

            remove_partial_writes(Path(args.output))  # rank 0 died writing it
        return code
    session = mpi.start_session()
    problem = None
    if session.is_root and args.output:  # started by mpirun/srun: rank 0 writes, all learn whether it can
        try:
            check_target(args.output, PREFLIGHT_REPORT, args.force, "--output")
        except UsageError as e:
            problem = str(e)
    problem = session.bcast(problem)
    if problem:
        raise UsageError(problem)
    from . import watchdog

    watchdog.start(session, args.collective_timeout or watchdog.DEFAULT_TIMEOUT_S)
    report = run_preflight(session, args.link_seconds, on_hello=None if args.json else print_hello,
                           all_pairs=args.all_pairs)
    code = None
    if session.is_root:
        if args.output:
            write_file(args.output, json.dumps(report, indent=1, default=str) + "\n", PREFLIGHT_REPORT,
                       args.force, "--output")
        if args.json:
            print(json.dumps(report, indent=1, default=str))
        else:
            print_links(report)
        code = 0 if report["ok"] else 1
    watchdog.stop()
    return session.exit_code(code)


def add_parser(sub) -> None:
    from .request import add_collective_timeout

    p = sub.add_parser("preflight", help="check the nodes of an MPI run before benchmarking: rank map, "
                                          "a link check between every pair, drift across nodes")
    p.add_argument("--link-seconds", type=float, default=1.0, metavar="S",
                   help="time per pair of nodes for the link check (default 1)")
    p.add_argument("--ranks", type=int, default=None, metavar="N",
                   help="local ranks to launch when not started by mpirun/srun (default 2)")
    add_collective_timeout(p)
    p.add_argument("--all-pairs", action="store_true",
                   help="check every pair of nodes (N-1 rounds) instead of the plan (about log2 N rounds)")
    p.add_argument("--plan", default=None, metavar="N[,N...]",
                   help="print the link-check schedule for N nodes and its predicted time, and exit")
    p.add_argument("--round-s", type=float, default=None, metavar="S",
                   help=f"the round time --plan predicts with, e.g. a report's link_plan.round_s (default "
                        f"{DEFAULT_ROUND_S}: a round at --link-seconds 1, measured between 2 local ranks)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--output", type=Path, default=None, help="also write the report (JSON) here")
    p.add_argument("--force", action="store_true",
                   help="let --output replace a regular file of yours that is not a preflight report")
