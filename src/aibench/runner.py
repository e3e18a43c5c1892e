"""Runs a planned set of cases, writing the run document after each one."""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__
from .errors import UsageError
from .fingerprint import git_commit, system_fingerprint
from .harness import SamplingPolicy
from .results import FAILED, CaseResult, ResultWriter, RunDocument, Validation
from .safety import redact_url
from .suites import get_suite
from .suites.base import ImplInfo, RunContext, Suite
from .registry import plugin_packages
from .targets import Target

# Per-case time budget (seconds of sampling) by tier; --time-budget replaces it.
TIER_BUDGET_S = {"quick": 1.0, "standard": 3.0, "full": 10.0}


@dataclass
class PlannedCase:
    """One case and the impl(s) measured in it: one, or a group measured together
    (Suite.group_impls), each giving its own result."""

    suite: Suite
    params: dict[str, Any]
    impls: list[ImplInfo]

    @property
    def label(self) -> str:
        return f"{self.suite.name} {self.suite.case_id(self.params)} [{' + '.join(i.name for i in self.impls)}]"

    def keys(self) -> list[tuple[str, str, str]]:
        """(suite, case id, impl) of each result it gives."""
        return [(self.suite.name, self.suite.case_id(self.params), i.name) for i in self.impls]


def plan_run(suite_names: list[str], tier: str, target: Target, impl_names: list[str] | None,
             raw_params: dict[str, list[str]]) -> list[PlannedCase]:
    """Every (suite, case, impl) to run, or a UsageError before anything runs."""
    suites = [get_suite(n) for n in suite_names]
    known_impls = {i for s in suites for i in s.impl_names()}
    for name in impl_names or []:
        if name not in known_impls:
            raise UsageError(f"unknown impl {name!r} for suite(s) {', '.join(suite_names)} "
                             f"(known: {', '.join(sorted(known_impls))})")
    known_params = {p for s in suites for p in s.params}
    for key in raw_params:
        if key not in known_params:
            raise UsageError(f"unknown parameter {key!r} (known: {', '.join(sorted(known_params))})")
    planned: list[PlannedCase] = []
    for suite in suites:
        if target.kind not in suite.target_kinds:
            raise UsageError(f"suite {suite.name!r} does not run on target {target} "
                             f"(it runs on: {', '.join(suite.target_kinds)})")
        overrides = suite.parse_overrides({k: v for k, v in raw_params.items() if k in suite.params})
        impls = [i for i in suite.impls() if target.kind in i.target_kinds
                 and (not impl_names or i.name in impl_names)]
        for params in suite.expand(tier, target, overrides):
            # A suite may narrow the impls of a case (interconnect: p2p runs on `mpi` only)
            # and measure some together (storage: aibench and fio interleaved).
            case_impls = suite.impls_for_case(params, impls)
            planned.extend(PlannedCase(suite, params, group) for group in suite.group_impls(params, case_impls))
    return planned


def default_suites(target: Target, param_keys=()) -> list[str]:
    """What `aibench run` without --suite runs: every suite of the default run on this
    target that has all the --param keys given (so gemm's m, n, k select gemm)."""
    from .suites import all_suites

    return [name for name, s in all_suites().items()
            if s.in_default_run and target.kind in s.target_kinds and set(param_keys) <= set(s.params)]


def new_document(argv: list[str], machine: str, tier: str, target: Target,
                 system: dict[str, Any] | None = None) -> RunDocument:
    return RunDocument(command=[redact_url(a) for a in argv], machine=machine, tier=tier, targets=[str(target)],
                       system=system or system_fingerprint(),
                       aibench={"version": __version__, "commit": git_commit(), "plugins": plugin_packages()})


def run_planned(planned: list[PlannedCase], writer: ResultWriter, target: Target, policy: SamplingPolicy,
                progress=None, options: dict[str, Any] | None = None, fleet=None) -> None:
    """Run every case; a failing case is recorded and the others go on. Ctrl-C stops the
    run between cases and leaves every finished case in the file (the caller marks it);
    in an MPI run every rank stops at the same case (mpi.Session.agree_to_stop).
    In an MPI run, MPI suites run on every rank together and the others on rank 0 only,
    except in a fleet run (fleet.Fleet), where every node runs them and rank 0 gathers."""
    from . import mpi

    ctx = RunContext(target=target, policy=policy, options=options or {})
    try:
        session = mpi.current()
        for item in planned:
            collective = session is not None and item.suite.uses_mpi
            per_node = fleet is not None and not collective
            if session is not None and (collective or per_node):
                # Every rank takes part: wait (asleep) for rank 0 to finish its own cases, and
                # stop here, all together, if any rank was asked to.
                if session.agree_to_stop():
                    raise KeyboardInterrupt
            elif session is not None and (not session.is_root or session.stop.requested):
                continue  # a rank-0 case; when asked to stop, rank 0 skips to the next agreement
            if progress is not None:
                progress.start_case(item.label)
            if per_node:
                # [] off rank 0; on rank 0 each node's results, in rank order
                results = [r for node_results in fleet.run(lambda: run_case(item, ctx, node=fleet.node)) or []
                           for r in node_results]
            else:
                results = run_case(item, ctx)
            for result in results:
                writer.add(result)
                if progress is not None:
                    progress.end_case(result)
    finally:
        ctx.close()  # the run's shared resources (storage test file, object store) end with it


def run_case(item: PlannedCase, ctx: RunContext, node: str | None = None) -> list[CaseResult]:
    """One case, a result per impl; a suite bug fails its case, not the run."""
    started = time.perf_counter()
    try:
        results = item.suite.run_case(item.params, item.impls, ctx)
    except KeyboardInterrupt:
        raise
    except Exception as e:  # noqa: BLE001
        results = [CaseResult(suite=item.suite.name, case_id=item.suite.case_id(item.params),
                              params=dict(item.params), target=str(ctx.target), impl=impl.name,
                              status=FAILED, error=f"{type(e).__name__}: {e}",
                              validation=Validation(status=FAILED, reason="the case raised an exception"),
                              duration_s=time.perf_counter() - started) for impl in item.impls]
    for result in results:
        result.node = node
    return results


def default_output(machine: str, create: bool = False) -> Path:
    """results/runs/<machine>-<time>-<random>.json; with create, made exclusively (two
    runs started in the same second never share a document)."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    runs = Path("results") / "runs"
    while True:
        path = runs / f"{machine}-{stamp}-{secrets.token_hex(3)}.json"
        if not create:
            return path
        runs.mkdir(parents=True, exist_ok=True)
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return path
        except FileExistsError:
            continue


