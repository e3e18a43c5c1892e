"""The launcher examples of examples/cluster/ (docs/clusters.md): their structure, their
rank counts, and that every aibench command line in them parses with aibench's own
argparse. The Kubeflow Trainer v2 CRDs ship in no installable package, so the TrainJob
example is checked here by structure; it was validated by hand against the CRDs'
openAPIV3Schema of kubeflow/trainer (docs/clusters.md says which commit)."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from aibench.cli import build_parser
from aibench.errors import UsageError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "cluster"


def aibench_commands(text: str) -> list[list[str]]:
    """Every `aibench ...` command in a shell text, as argv (up to the next shell operator);
    comment lines are not commands."""
    code = "\n".join(line for line in text.replace("\\\n", " ").splitlines() if not line.lstrip().startswith("#"))
    commands = []
    for match in re.finditer(r"(?<![\w/.-])aibench\s+(\w[^;&|\n]*)", code):
        argv = shlex.split(match.group(1))
        commands.append([a for a in argv if a])
    return commands


def parses(argv: list[str]) -> bool:
    try:
        build_parser().parse_args(argv)
    except (SystemExit, UsageError):
        return False
    return True


def test_the_command_finder_sees_the_commands_and_the_parser_refuses_a_wrong_one():
    text = 'srun x aibench run --fleet --output "/r/f.json"; aibench diagnose /r/f.json && echo'
    assert aibench_commands(text) == [["run", "--fleet", "--output", "/r/f.json"], ["diagnose", "/r/f.json"]]
    assert parses(["run", "--fleet"]) and not parses(["run", "--no-such-flag"])


def test_the_trainjob_example_is_an_mpi_runtime_and_a_trainjob_that_uses_it():
    yaml = pytest.importorskip("yaml")
    runtime, job = yaml.safe_load_all((EXAMPLES / "trainjob.yaml").read_text())
    assert runtime["apiVersion"] == job["apiVersion"] == "trainer.kubeflow.org/v1alpha1"
    assert (runtime["kind"], job["kind"]) == ("ClusterTrainingRuntime", "TrainJob")
    ref = job["spec"]["runtimeRef"]
    assert ref["name"] == runtime["metadata"]["name"] and ref["kind"] == "ClusterTrainingRuntime"
    mpi = runtime["spec"]["mlPolicy"]["mpi"]
    assert mpi["mpiImplementation"] == "OpenMPI"  # the only hostfile format Trainer writes
    assert mpi["runLauncherAsNode"] is False
    jobs = {j["name"]: j for j in runtime["spec"]["template"]["spec"]["replicatedJobs"]}
    assert set(jobs) == {"node", "launcher"}
    assert jobs["launcher"]["dependsOn"] == [{"name": "node", "status": "Ready"}]
    # The trainer container is the launcher's (the ancestor label marks it).
    labels = jobs["launcher"]["template"]["metadata"]["labels"]
    assert labels["trainer.kubeflow.org/trainjob-ancestor-step"] == "trainer"

    trainer = job["spec"]["trainer"]
    nodes, per_node = trainer["numNodes"], trainer["numProcPerNode"]
    assert trainer["resourcesPerNode"]["limits"]["nvidia.com/gpu"] == per_node  # one rank per GPU
    script = " ".join(trainer["args"])
    runs = re.findall(r"mpirun --hostfile /etc/mpi/hostfile -n (\d+) --map-by ppr:(\d+):node aibench (\w+)", script)
    assert [(int(n), int(p), cmd) for n, p, cmd in runs] == [(nodes, 1, "preflight"), (nodes * per_node, per_node, "run")]
    commands = aibench_commands(script)
    assert [c[0] for c in commands] == ["preflight", "run", "diagnose"]
    assert all(parses(c) for c in commands), commands
    assert {"--fleet", "--per-gpu"} <= set(commands[1])


def sbatch_options(text: str) -> dict[str, str]:
    return dict(m.groups() for m in re.finditer(r"^#SBATCH --([\w-]+)=(\S+)", text, re.M))


def test_the_pyxis_sbatch_runs_every_step_in_the_container_with_one_rank_per_gpu():
    path = EXAMPLES / "aibench-pyxis.sbatch"
    assert subprocess.run(["bash", "-n", str(path)]).returncode == 0
    text = path.read_text()
    opts = sbatch_options(text)
    assert opts["ntasks-per-node"] == opts["gpus-per-node"]  # --per-gpu: a rank per GPU
    sruns = [line for line in text.replace("\\\n", " ").splitlines() if line.startswith("srun ")]
    assert len(sruns) == 3 and all('"${container[@]}"' in s for s in sruns)
    assert "--container-image=" in text and "--container-mounts=" in text
    assert "--ntasks-per-node=1" in sruns[0] and "--mpi=pmix" in sruns[0] and "--mpi=pmix" in sruns[1]
    commands = aibench_commands(text)
    assert [c[0] for c in commands] == ["preflight", "run", "diagnose"]
    assert all(parses(c) for c in commands), commands
    assert {"--fleet", "--per-gpu"} <= set(commands[1])


@pytest.mark.parametrize("name", ["aibench.sbatch", "mpijob.yaml"])
def test_the_older_launcher_examples_parse_too(name):
    commands = aibench_commands((EXAMPLES / name).read_text())
    assert commands and all(parses(c) for c in commands), commands
