"""`aibench accept --mark slurm|k8s` (accept/mark.py) without a cluster: the exact commands
from an accept report, against a scheduler double that answers `scontrol show node` and
`kubectl get node` as they do. The Slurm path against a real slurmctld is in
tests/test_cluster.py::test_mark_slurm_sets_features_and_drains_on_the_test_cluster."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest

from aibench.accept import mark
from aibench.errors import UsageError

NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.timezone.utc)


def report(*nodes):
    return {"spec": {"name": "nvidia-h200-sxm"}, "accepted": all(n[1] for n in nodes),
            "nodes": [{"node": name, "accepted": ok, "hardware_problems": hw,
                       "checks": [{"check": "gemm-bf16", "verdict": "pass" if ok else "fail"},
                                  {"check": "hbm-copy", "verdict": "pass"}]}
                      for name, ok, hw in nodes]}


class Scheduler:
    """Answers the read-only lookups as scontrol/kubectl do; records every other command."""

    def __init__(self, nodes: dict[str, str], fail: str | None = None):
        self.nodes, self.fail, self.ran = nodes, fail, []

    def __call__(self, cmd):
        if cmd[:3] == ["scontrol", "show", "node"]:
            name = cmd[3]
            if name not in self.nodes:
                return subprocess.CompletedProcess(cmd, 1, "", f"Node {name} not found\n")
            return subprocess.CompletedProcess(cmd, 0, f"NodeName={name} {self.nodes[name]}\n", "")
        if cmd[:3] == ["kubectl", "get", "node"]:
            ok = cmd[3] in self.nodes
            return subprocess.CompletedProcess(cmd, 0 if ok else 1, f"node/{cmd[3]}\n" if ok else "",
                                               "" if ok else f'Error from server (NotFound): nodes "{cmd[3]}" not found')
        self.ran.append(cmd)
        if self.fail and self.fail in " ".join(cmd):
            return subprocess.CompletedProcess(cmd, 1, "", "slurm_update error: Invalid node state specified")
        if cmd[1] == "taint" and cmd[-1].endswith("-"):
            return subprocess.CompletedProcess(cmd, 1, "", 'error: taint "aibench.io/verdict:NoSchedule" not found')
        return subprocess.CompletedProcess(cmd, 0, "", "")


IDLE = "Arch=x86_64 AvailableFeatures=gpu,nvlink ActiveFeatures=gpu,nvlink State=IDLE Reason=(null)"


def test_slurm_accepted_node_gains_the_feature_and_its_expiry_and_keeps_its_own():
    sched = Scheduler({"gpu01": IDLE})
    lines = []
    assert mark.mark(report(("gpu01", True, [])), "slurm", 7, dry_run=False, now=NOW, run=sched, echo=lines.append) == 0
    assert sched.ran == [["scontrol", "update", "NodeName=gpu01",
                          "AvailableFeatures=gpu,nvlink,aibench_nvidia_h200_sxm,aibench_nvidia_h200_sxm_until_20261214",
                          "ActiveFeatures=gpu,nvlink,aibench_nvidia_h200_sxm,aibench_nvidia_h200_sxm_until_20261214"]]
    assert lines == ["marked: " + " ".join(sched.ran[0])]


def test_slurm_rejected_node_is_drained_with_the_failing_checks_and_loses_the_old_acceptance():
    old = ("AvailableFeatures=gpu,aibench_nvidia_h200_sxm,aibench_nvidia_h200_sxm_until_20261201 "
           "ActiveFeatures=gpu,aibench_nvidia_h200_sxm,aibench_nvidia_h200_sxm_until_20261201 State=IDLE")
    sched = Scheduler({"gpu02": old})
    r = report(("gpu02", False, ["hardware: 7 GPUs, the spec needs 8"]))
    assert mark.mark(r, "slurm", 7, dry_run=False, now=NOW, run=sched, echo=lambda _: None) == 0
    assert sched.ran == [
        ["scontrol", "update", "NodeName=gpu02", "AvailableFeatures=gpu", "ActiveFeatures=gpu"],
        ["scontrol", "update", "NodeName=gpu02", "State=DRAIN",
         "Reason=aibench nvidia-h200-sxm: hardware: 7 GPUs, the spec needs 8; gemm-bf16 fail"]]


def test_slurm_resumes_only_a_node_that_aibench_itself_drained():
    ours = "AvailableFeatures=(null) ActiveFeatures=(null) State=IDLE+DRAIN Reason=aibench nvidia-h200-sxm: gemm-bf16 fail [root@2026-12-01]"
    theirs = "AvailableFeatures=(null) ActiveFeatures=(null) State=IDLE+DRAIN Reason=bad DIMM, ticket 4711"
    sched = Scheduler({"a": ours, "b": theirs})
    mark.mark(report(("a", True, []), ("b", True, [])), "slurm", 1, dry_run=False, now=NOW, run=sched,
              echo=lambda _: None)
    assert ["scontrol", "update", "NodeName=a", "State=RESUME"] in sched.ran
    assert not any("NodeName=b" in c and "State=RESUME" in c for c in sched.ran)


def test_a_long_reason_is_capped_and_passed_as_one_argument_never_through_a_shell():
    sched = Scheduler({"n": IDLE})
    r = report(("n", False, ["x; rm -rf / $(reboot) " * 30]))
    mark.mark(r, "slurm", 7, dry_run=False, now=NOW, run=sched, echo=lambda _: None)
    reason = sched.ran[-1][-1]
    assert reason.startswith("Reason=aibench ") and len(reason) == len("Reason=") + mark.REASON_MAX


def test_an_unknown_node_changes_nothing_and_is_one_usage_line():
    sched = Scheduler({"gpu01": IDLE})
    with pytest.raises(UsageError, match="no node 'gpu09'.*nothing was changed"):
        mark.mark(report(("gpu01", True, []), ("gpu09", True, [])), "slurm", 7, False, NOW, sched, lambda _: None)
    assert sched.ran == []
    with pytest.raises(UsageError, match="Kubernetes has no node 'gpu09'"):
        mark.mark(report(("gpu01", True, []), ("gpu09", True, [])), "k8s", 7, False, NOW, sched, lambda _: None)
    assert sched.ran == []


def test_a_failed_command_stops_there_and_exits_1():
    sched = Scheduler({"a": IDLE, "b": IDLE}, fail="NodeName=a")
    lines = []
    assert mark.mark(report(("a", True, []), ("b", True, [])), "slurm", 7, False, NOW, sched, lines.append) == 1
    assert len(sched.ran) == 1 and lines[-1].startswith("aibench: --mark slurm: failed: scontrol update NodeName=a")


def test_k8s_labels_the_verdict_and_expiry_and_taints_only_the_rejected():
    sched = Scheduler({"gpu01": "", "gpu02": ""})
    r = report(("gpu01", True, []), ("gpu02", False, []))
    r["spec"]["name"] = "My Spec: H200/8x"
    assert mark.mark(r, "k8s", 7, dry_run=False, now=NOW, run=sched, echo=lambda _: None) == 0
    assert sched.ran == [
        ["kubectl", "label", "node", "gpu01", "--overwrite", "aibench.io/spec=My-Spec-H200-8x",
         "aibench.io/verdict=accepted", "aibench.io/valid-until=2026-12-14"],
        ["kubectl", "taint", "node", "gpu01", "aibench.io/verdict:NoSchedule-"],  # absent: not a failure
        ["kubectl", "label", "node", "gpu02", "--overwrite", "aibench.io/spec=My-Spec-H200-8x",
         "aibench.io/verdict=rejected", "aibench.io/valid-until=2026-12-14"],
        ["kubectl", "taint", "node", "gpu02", "--overwrite", "aibench.io/verdict=rejected:NoSchedule"]]


@pytest.mark.parametrize("text, value", [("nvidia-h200-sxm", "nvidia-h200-sxm"), ("-_x_-", "x"),
                                         ("a" * 80, "a" * 63), ("ä b", "b"), ("v1.2", "v1.2")])
def test_label_values_are_valid_kubernetes_label_values(text, value):
    assert mark.label_value(text) == value


def test_dry_run_prints_the_commands_and_runs_none():
    sched = Scheduler({"gpu01": IDLE})
    lines = []
    mark.mark(report(("gpu01", False, [])), "slurm", 7, dry_run=True, now=NOW, run=sched, echo=lines.append)
    assert sched.ran == [] and lines == [
        "scontrol update NodeName=gpu01 AvailableFeatures=gpu,nvlink ActiveFeatures=gpu,nvlink",
        "scontrol update NodeName=gpu01 State=DRAIN 'Reason=aibench nvidia-h200-sxm: gemm-bf16 fail'"]


@pytest.mark.parametrize("days", [0, -1, float("nan"), 366])
def test_valid_for_is_range_checked(days):
    with pytest.raises(UsageError, match="--valid-for"):
        mark.valid_days(days)


def test_the_cli_dry_run_for_k8s_needs_no_kubectl_and_slurm_without_scontrol_is_one_line(tmp_path):
    """End to end through `aibench accept`: a judged run document, --mark k8s --dry-run
    prints the kubectl commands (exit: the verdict); --mark slurm with no scontrol on PATH
    is one line, exit 2."""
    from aibench.results import CaseResult, Metric, RunDocument, Validation, write_atomic
    from result_helpers import interval_stats

    case = CaseResult(suite="gemm", case_id="m512", params={"dtype": "fp32"}, target="cpu", impl="aibench",
                      status="passed", metrics={"tflops": Metric(0.9, "TFLOP/s", True)},
                      stats=interval_stats(1.0, 0.99, 1.01), validation=Validation("passed", 0.0, 1.0, None))
    run_path = tmp_path / "run.json"
    write_atomic(run_path, RunDocument(command=["aibench", "run"], machine="node07", tier="quick", targets=["cpu"],
                                       system={"hostname": "node07"}, aibench={"version": "0", "commit": None},
                                       cases=[case]).to_dict())
    spec = tmp_path / "tiny.toml"
    spec.write_text('spec_version = 1\nname = "tiny"\ntarget = "cpu"\n[[check]]\nid = "c"\nsuite = "gemm"\n'
                    'params = { dtype = "fp32" }\nmetric = "tflops"\nmin = 0.5\nunit = "TFLOP/s"\nselect = "best"\n'
                    'source = "test"\n')
    env = {"PATH": "/nonexistent", "HOME": str(tmp_path)}
    k8s = subprocess.run([sys.executable, "-m", "aibench.cli", "accept", "--spec", str(spec), str(run_path),
                          "--mark", "k8s", "--dry-run", "--json"], capture_output=True, text=True, env=env, timeout=120)
    lines = k8s.stdout.strip().splitlines()
    assert k8s.returncode == 0, k8s.stderr
    assert json.loads("\n".join(lines[:-2]))["accepted"] is True
    assert lines[-2].startswith("kubectl label node node07 --overwrite aibench.io/spec=tiny "
                                "aibench.io/verdict=accepted aibench.io/valid-until=")
    assert lines[-1] == "kubectl taint node node07 aibench.io/verdict:NoSchedule-"
    slurm = subprocess.run([sys.executable, "-m", "aibench.cli", "accept", "--spec", str(spec), str(run_path),
                            "--mark", "slurm"], capture_output=True, text=True, env=env, timeout=120)
    assert slurm.returncode == 2 and slurm.stderr.strip().splitlines() == [
        "aibench: error: --mark slurm: scontrol is not on PATH; nothing was changed"]


def test_an_unreachable_cluster_is_not_called_a_missing_node_and_a_dry_run_looks_nothing_up():
    def unreachable(cmd):
        return subprocess.CompletedProcess(cmd, 1, "", "The connection to the server localhost:8080 was refused")

    with pytest.raises(UsageError, match="kubectl could not look up node 'gpu01' .*refused.*nothing was changed"):
        mark.mark(report(("gpu01", True, [])), "k8s", 7, False, NOW, unreachable, lambda _: None)
    lines = []
    assert mark.mark(report(("gpu01", True, [])), "k8s", 7, True, NOW, unreachable, lines.append) == 0
    assert lines[0].startswith("kubectl label node gpu01 --overwrite")
