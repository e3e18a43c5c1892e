"""`aibench accept --mark slurm|k8s`: the verdicts written to the scheduler, with an expiry.

Slurm (through `scontrol`, as argv lists, never a shell):
  accepted  the node gains the features `aibench_<spec>` and `aibench_<spec>_until_<YYYYMMDD>`
            (its other features kept; an earlier aibench feature of the same spec replaced),
            so jobs can ask for `--constraint=aibench_<spec>` and the expiry sits beside it;
            a node that aibench itself drained earlier (its reason starts "aibench ") is resumed
  rejected  the node's aibench features of the spec are removed and it is drained with the
            failing checks as the reason
Kubernetes (through `kubectl`):
  every node gets the labels aibench.io/spec, aibench.io/verdict (accepted|rejected) and
  aibench.io/valid-until (YYYY-MM-DD); a rejected node gets the taint
  aibench.io/verdict=rejected:NoSchedule, an accepted one loses it.

Every node is looked up first (read-only); a missing tool or an unknown node is one line
and exit 2 before anything is changed. `--dry-run` prints the commands, one per line, and
changes nothing.
"""

from __future__ import annotations

import datetime as dt
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import UsageError

SCHEDULERS = ("slurm", "k8s")
DEFAULT_VALID_DAYS = 7.0
MAX_VALID_DAYS = 365.0
REASON_MAX = 200  # Slurm keeps the whole reason; sinfo's columns do not
LABEL_PREFIX = "aibench.io/"
TAINT = f"{LABEL_PREFIX}verdict"
_TOOL = {"slurm": "scontrol", "k8s": "kubectl"}

Runner = Callable[[list[str]], subprocess.CompletedProcess]


@dataclass(frozen=True)
class NodeVerdict:
    node: str
    accepted: bool
    failing: list[str]  # the checks (and hardware problems) that failed, for the drain reason


def valid_days(value: float | None) -> float:
    days = DEFAULT_VALID_DAYS if value is None else value
    if not 0 < days <= MAX_VALID_DAYS:  # also refuses nan
        raise UsageError(f"--valid-for must be a number of days above 0 and at most {MAX_VALID_DAYS:.0f} (got {value})")
    return days


def verdicts_of(report: dict[str, Any]) -> list[NodeVerdict]:
    """Each judged node of an accept report, with what failed on it."""
    out = []
    for n in report["nodes"]:
        failing = list(n.get("hardware_problems") or [])
        failing += [f"{c['check']} {c['verdict']}" for c in n.get("checks", []) if c.get("verdict") != "pass"]
        out.append(NodeVerdict(n["node"], bool(n["accepted"]), failing))
    return out


def slurm_feature(spec: str) -> str:
    """The feature name of a spec: Slurm constraint syntax reserves & | [ ] * ( ) , : and blanks."""
    return "aibench_" + re.sub(r"[^a-z0-9_]+", "_", spec.lower()).strip("_")


def label_value(text: str) -> str:
    """A valid Kubernetes label value: at most 63 of [A-Za-z0-9-_.], alphanumeric at both ends."""
    value = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", value)


def _slurm_fields(text: str) -> dict[str, str]:
    """`scontrol show node X --oneliner` as {key: value}; values may hold blanks (Reason=)."""
    fields, key = {}, None
    for token in text.split():
        k, sep, v = token.partition("=")
        if sep and re.fullmatch(r"[A-Za-z_]+", k):
            key, fields[k] = k, v
        elif key is not None:
            fields[key] += " " + token
    return fields


def _features(value: str | None) -> list[str]:
    return [] if not value or value == "(null)" else value.split(",")


def plan_slurm(verdicts: list[NodeVerdict], spec: str, until: dt.datetime, run: Runner) -> list[list[str]]:
    feature = slurm_feature(spec)
    dated = f"{feature}_until_{until:%Y%m%d}"
    commands = []
    for v in verdicts:
        shown = run(["scontrol", "show", "node", v.node, "--oneliner"])
        if shown.returncode != 0 or f"NodeName={v.node} " not in shown.stdout + " ":
            raise UsageError(f"--mark slurm: Slurm has no node {v.node!r} ({(shown.stderr or shown.stdout).strip()[:200]}); "
                             "nothing was changed")
        fields = _slurm_fields(shown.stdout)
        ours = lambda f: f == feature or f.startswith(feature + "_until_")  # noqa: E731
        available = [f for f in _features(fields.get("AvailableFeatures")) if not ours(f)]
        active = [f for f in _features(fields.get("ActiveFeatures")) if not ours(f)]
        if v.accepted:
            available, active = available + [feature, dated], active + [feature, dated]
        update = ["scontrol", "update", f"NodeName={v.node}"]
        commands.append([*update, f"AvailableFeatures={','.join(available)}", f"ActiveFeatures={','.join(active)}"])
        if not v.accepted:
            reason = f"aibench {spec}: " + "; ".join(v.failing or ["rejected"])
            commands.append([*update, "State=DRAIN", f"Reason={reason[:REASON_MAX]}"])
        elif "DRAIN" in fields.get("State", "") and fields.get("Reason", "").startswith("aibench "):
            commands.append([*update, "State=RESUME"])  # aibench drained it; it passes now
    return commands


def plan_k8s(verdicts: list[NodeVerdict], spec: str, until: dt.datetime, run: Runner | None) -> list[list[str]]:
    """The kubectl commands; with `run`, every node is looked up first (a dry run looks up
    nothing and needs no kubectl: none of the commands depends on the node's state)."""
    commands = []
    for v in verdicts:
        got = run(["kubectl", "get", "node", v.node, "-o", "name"]) if run is not None else None
        if got is not None and got.returncode != 0:
            why = (f"Kubernetes has no node {v.node!r}" if "NotFound" in got.stderr
                   else f"kubectl could not look up node {v.node!r}")
            raise UsageError(f"--mark k8s: {why} ({got.stderr.strip()[:200]}); nothing was changed")
        verdict = "accepted" if v.accepted else "rejected"
        commands.append(["kubectl", "label", "node", v.node, "--overwrite",
                         f"{LABEL_PREFIX}spec={label_value(spec)}", f"{LABEL_PREFIX}verdict={verdict}",
                         f"{LABEL_PREFIX}valid-until={until:%Y-%m-%d}"])
        if v.accepted:
            commands.append(["kubectl", "taint", "node", v.node, f"{TAINT}:NoSchedule-"])
        else:
            commands.append(["kubectl", "taint", "node", v.node, "--overwrite", f"{TAINT}=rejected:NoSchedule"])
    return commands


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


def mark(report: dict[str, Any], scheduler: str, days: float, dry_run: bool, now: dt.datetime | None = None,
         run: Runner = _run, echo: Callable[[str], None] = print) -> int:
    """Write the report's verdicts to the scheduler. Returns 0, or 1 when a command failed
    (the ones before it stay applied and are printed)."""
    tool = _TOOL[scheduler]
    missing = run is _run and shutil.which(tool) is None
    if missing and not (dry_run and scheduler == "k8s"):
        raise UsageError(f"--mark {scheduler}: {tool} is not on PATH; nothing was changed"
                         + (" (a Slurm dry run reads each node's features with scontrol)" if dry_run else ""))
    until = (now or dt.datetime.now(dt.timezone.utc)) + dt.timedelta(days=days)
    spec = report["spec"]["name"]
    verdicts = verdicts_of(report)
    plan = (plan_slurm(verdicts, spec, until, run) if scheduler == "slurm"
            else plan_k8s(verdicts, spec, until, None if dry_run or missing else run))
    for cmd in plan:
        line = shlex.join(cmd)
        if dry_run:
            echo(line)
            continue
        done = run(cmd)
        # Removing a taint the node does not have is not a failure.
        if done.returncode != 0 and not (cmd[1] == "taint" and cmd[-1].endswith("-") and "not found" in done.stderr):
            echo(f"aibench: --mark {scheduler}: failed: {line}: {(done.stderr or done.stdout).strip()[:300]}")
            return 1
        echo(f"marked: {line}")
    return 0
