"""Fleet runs: the per-node suites on every node at once, gathered into one document.

    mpirun -n <nodes> --map-by ppr:1:node aibench run --fleet --suite gemm --suite storage
    mpirun -n <gpus>  --map-by ppr:<gpus per node>:node aibench run --fleet --per-gpu --target cuda

Every rank stands for a node (or, with --per-gpu, for one GPU: it drives cuda:<local
rank>). Each case starts on every rank together; rank 0 gathers every node's result into
one run document (each case names its `node`; `fleet.nodes` holds each node's host, rank,
target and fingerprint) and prints the fleet summary: min, median, max and spread per case.
`aibench diagnose` (diagnose.py) turns the document into the defective-node list.

Ranks sharing a host without --per-gpu stand for separate nodes only when testing on one
machine: they take turns case by case, so that co-located "nodes" never compete for the
cores they measure. Ranks on different hosts always run together, as do the GPUs of a node.
MPI suites (interconnect) are not per node: the whole fleet runs them together, once.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

from .errors import UsageError
from .results import FAILED, PASSED, RunDocument


def node_labels(hosts: list[str], per_gpu: bool) -> list[str]:
    """A node name per rank: the host name, `host:gpuN` with --per-gpu, and `host:rankN`
    when several ranks share a host without it."""
    count = Counter(hosts)
    seen: Counter = Counter()
    labels = []
    for rank, host in enumerate(hosts):
        local = seen[host]
        seen[host] += 1
        labels.append(f"{host}:gpu{local}" if per_gpu else host if count[host] == 1 else f"{host}:rank{rank}")
    return labels


@dataclass
class Fleet:
    """This rank's part in a fleet run (see the module docstring)."""

    session: Any  # mpi.Session
    per_gpu: bool
    labels: list[str]

    @classmethod
    def start(cls, session, per_gpu: bool) -> "Fleet":
        return cls(session, per_gpu, node_labels(session.hosts, per_gpu))

    @property
    def node(self) -> str:
        return self.labels[self.session.rank]

    @property
    def turns(self) -> int:
        """1 when every rank runs at once; else the most ranks any host has."""
        return 1 if self.per_gpu else max(len(r) for r in self.session.node_ranks().values())

    @property
    def concurrency(self) -> str:
        if self.turns == 1:
            return "every node at once"
        return "nodes on different hosts at once, ranks sharing a host in turns"

    def run(self, fn: Callable[[], Any]) -> list[Any] | None:
        """fn() on this rank (in its turn); rank 0 gets every rank's result in rank order,
        the others None. Every rank must call it, once per case."""
        mine = None
        for turn in range(self.turns):
            self.session.idle_barrier()  # the previous turn is over on every host
            if self.turns == 1 or self.session.local_rank == turn:
                mine = fn()
        self.session.idle_barrier()  # gather only once all are done: MPI's gather spins while it waits
        return self.session.comm.gather(mine, root=0)

    def check_same_plan(self, case_keys: list[tuple]) -> None:
        """Every node must plan the same cases, or the per-case steps would not line up."""
        everyone = self.session.comm.allgather(case_keys)
        differing = [self.labels[r] for r, keys in enumerate(everyone) if keys != everyone[0]]
        if differing:
            raise UsageError(f"fleet nodes {', '.join(differing)} planned other cases than {self.labels[0]} "
                             "(different hardware or options); run them as a separate fleet")

    def describe(self, target: str) -> dict[str, Any] | None:
        """The run document's `fleet` section, on rank 0; None elsewhere. Collective.
        Each node's fingerprint is taken in its turn (it measures the clock)."""
        from .fingerprint import system_fingerprint

        s = self.session
        systems = self.run(system_fingerprint)
        nodes = s.comm.gather({"node": self.node, "host": s.host, "rank": s.rank, "local_rank": s.local_rank,
                               "target": target}, root=0)
        if not s.is_root:
            return None
        return {"nodes": [{**n, "system": system} for n, system in zip(nodes, systems)],
                "concurrency": self.concurrency}


def node_documents(doc: RunDocument) -> list[RunDocument]:
    """One run document per node of a fleet document (machine = the node, with that
    node's fingerprint and only its cases); any other document as the one node it is."""
    if not doc.fleet:
        return [doc]
    return [RunDocument(machine=n["node"], targets=[n.get("target") or doc.targets[0]],
                        system=n.get("system") or doc.system,
                        cases=[c for c in doc.cases if c.node == n["node"]], **_common(doc))
            for n in doc.fleet["nodes"]]


def split_by_node(doc: RunDocument) -> list[RunDocument]:
    """node_documents(doc), plus one document for the cases the fleet ran together (MPI
    suites), named after the run (`<run>-fleet` if a node has that name)."""
    if not doc.fleet:
        return [doc]
    nodes = node_documents(doc)
    together = [c for c in doc.cases if c.node is None]
    if together:
        name = doc.machine if doc.machine not in {n.machine for n in nodes} else f"{doc.machine}-fleet"
        nodes.append(RunDocument(machine=name, targets=doc.targets, system=doc.system, cases=together,
                                 **_common(doc)))
    return nodes


def _common(doc: RunDocument) -> dict[str, Any]:
    return dict(command=doc.command, tier=doc.tier, aibench=doc.aibench, run_id=doc.run_id,
                started_at=doc.started_at, finished_at=doc.finished_at, status=doc.status)


@dataclass
class FleetRow:
    """One case across the nodes: the headline metric per node that passed it."""

    key: tuple[str, str, str, str]  # CaseResult.key()
    metric: str
    unit: str
    values: dict[str, float]  # node -> value
    failed: list[str]  # nodes where the case failed
    skipped: list[str]  # nodes where it was skipped (e.g. no such impl there)

    @property
    def median(self) -> float:
        return statistics.median(self.values.values())

    @property
    def spread(self) -> float:
        """(max - min) / median: 0 on a uniform fleet."""
        med = self.median
        return (max(self.values.values()) - min(self.values.values())) / med if med > 0 else math.nan

    @property
    def slowest(self) -> str:
        return min(self.values, key=self.values.get)


def fleet_rows(nodes: list[RunDocument]) -> list[FleetRow]:
    """Per case (in first-seen order), each node's headline value, from per-node documents."""
    rows: dict[tuple, FleetRow] = {}
    for node in nodes:
        for c in node.cases:
            row = rows.get(c.key())
            head = c.headline()
            if row is None and (head or c.status != PASSED):
                row = rows[c.key()] = FleetRow(c.key(), head[0] if head else "", head[1].unit if head else "",
                                               {}, [], [])
            if row is None:
                continue
            if c.status == PASSED and head:
                row.metric, row.unit = row.metric or head[0], row.unit or head[1].unit
                row.values[node.machine] = head[1].value
            elif c.status == FAILED:
                row.failed.append(node.machine)
            elif c.status != PASSED:
                row.skipped.append(node.machine)
    return list(rows.values())


def print_fleet_summary(doc: RunDocument, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    nodes = node_documents(doc)
    table = Table(title=f"fleet summary: {len(nodes)} nodes ({doc.fleet['concurrency']})")
    for col in ("suite", "case", "impl", "metric", "min", "median", "max", "spread", "slowest", "not passed"):
        table.add_column(col, justify="right" if col in ("min", "median", "max", "spread") else "left")
    for row in fleet_rows(nodes):
        suite, case_id, _, impl = row.key
        if row.values:
            vals = row.values.values()
            cells = [f"{min(vals):.4g}", f"{row.median:.4g}", f"{max(vals):.4g}", f"{row.spread * 100:.1f}%",
                     row.slowest]
        else:
            cells = ["-"] * 5
        not_passed = [f"[red]failed on {', '.join(row.failed)}[/]"] if row.failed else []
        if row.skipped:
            where = "every node" if len(row.skipped) == len(nodes) else ", ".join(row.skipped)
            not_passed.append(f"skipped on {where}")
        table.add_row(suite, case_id, impl, f"{row.metric} ({row.unit})" if row.metric else "", *cells,
                      "; ".join(not_passed))
    console = console or Console()
    if not console.is_terminal:
        console = Console(width=200)  # a log file gets whole columns
    console.print(table)
