"""MPI for aibench: launcher detection, self-launch, and the rank-0 gathering helpers.

Under `mpirun`/`mpiexec`/`srun` every rank runs `aibench run`; rank 0 gathers, writes the
run document and the asv results and prints; the other ranks print only errors. Started
without a launcher, a run that includes an MPI suite (interconnect) launches itself:

    mpiexec -n N python -m aibench.cli run ...     (N = --ranks, default 2)

with AIBENCH_MPI_CHILD=1 in the environment, and returns the child's exit code. Every
rank ends the same way however it was started: an orderly exit (some case failed: code 1)
finalises MPI and exits with rank 0's code, and only an uncaught exception aborts the job
(abort_on_crash) so that no rank is left hanging in a collective. (`python -m mpi4py`
is not used: it turns every non-zero exit, an orderly exit 1 included, into MPI_Abort.) The mpiexec is the one the MPI wheels bring (next to
sys.executable, or found through the installed `mpich` distribution), else the first on
PATH; AIBENCH_MPIEXEC names another. docs/interconnect.md: using a cluster's own MPI.

Nothing here imports mpi4py.MPI (which initialises MPI) except start_session(), so the
parent of a self-launch never becomes an MPI process itself.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .leftovers import MpiJobFiles
from .safety import terminate_with_parent
from .stop_signals import StopSignals

CHILD_MARKER = "AIBENCH_MPI_CHILD"  # set in the environment of self-launched ranks
LAUNCH_DESCRIPTION = "AIBENCH_MPI_LAUNCH"  # how the parent launched them (recorded)
DEFAULT_RANKS = 2

# The thread support an MPI run asks for (--mpi-thread-level). The default, single, is
# what IMB-MPI1 and osu_allreduce get: they call plain MPI_Init, and so does aibench for
# it (MPICH and Open MPI then provide MPI_THREAD_SINGLE). The others call
# MPI_Init_thread. The level changes the figures: MPICH 5 takes another all-reduce path
# under MPI_THREAD_MULTIPLE (mpi4py's own default), 2x faster at 1-16 MiB on 2 ranks
# (docs/interconnect.md). No aibench thread other than the main one calls MPI, except
# the watchdog's MPI_Abort when a run is already hung (watchdog.py).
THREAD_LEVELS = ("single", "funneled", "serialized", "multiple")
DEFAULT_THREAD_LEVEL = "single"
_THREAD_RC_ENV = ("MPI4PY_RC_THREADS", "MPI4PY_RC_THREAD_LEVEL")  # would override mpi4py.rc

# Environment variables that change how an MPI library or NCCL behaves; recorded with
# every MPI run so that two runs with different tuning are never compared unknowingly.
BEHAVIOUR_ENV_PREFIXES = ("MPIR_CVAR_", "MPICH_", "OMPI_MCA_", "UCX_", "NCCL_", "FI_", "I_MPI_", "PSM2_",
                          "HCOLL_", "MV2_")
# ...minus per-process bookkeeping that launchers set (they differ by rank and mean nothing).
_ENV_NOISE = ("OMPI_MCA_orte_ess_", "OMPI_MCA_ess_base_jobid", "OMPI_MCA_ess_base_vpid", "OMPI_MCA_pmix",
              "OMPI_MCA_initial_wdir", "OMPI_MCA_orte_launch", "OMPI_MCA_orte_precondition",
              "OMPI_MCA_orte_app_num", "OMPI_MCA_orte_num_nodes", "OMPI_MCA_orte_top_session_dir",
              "OMPI_MCA_orte_jobfam_session_dir", "OMPI_MCA_orte_local_daemon_uri", "OMPI_MCA_orte_hnp_uri")

# Slurm step ids of the batch script, extern and interactive steps: not an srun task.
_SLURM_NON_TASK_STEPS = {"4294967291", "4294967292", "4294967290", "batch", "extern", "interactive"}


def launcher() -> str | None:
    """Which launcher started this process, from its environment, or None."""
    env = os.environ
    if env.get(CHILD_MARKER):
        return "aibench self-launch"
    if "OMPI_COMM_WORLD_SIZE" in env or "OMPI_COMM_WORLD_RANK" in env:
        return "Open MPI mpirun"
    if "PMIX_RANK" in env:
        return "PMIx"
    if "PMI_RANK" in env or "PMI_SIZE" in env or "MPI_LOCALNRANKS" in env or "PMI_FD" in env:
        return "PMI (MPICH hydra, Intel MPI or compatible)"
    if "SLURM_PROCID" in env and "SLURM_NTASKS" in env and env.get("SLURM_STEP_ID", "batch") not in _SLURM_NON_TASK_STEPS:
        return "Slurm srun"
    if "MV2_COMM_WORLD_RANK" in env:
        return "MVAPICH mpirun_rsh"
    return None


def under_launcher() -> bool:
    return launcher() is not None


def find_mpiexec() -> str | None:
    """The mpiexec to self-launch with: AIBENCH_MPIEXEC, the one next to this Python (the
    mpich wheel installs it there), the one the installed `mpich` distribution lists, or
    the first mpiexec/mpirun on PATH."""
    explicit = os.environ.get("AIBENCH_MPIEXEC")
    if explicit:
        return shutil.which(explicit) or (explicit if os.access(explicit, os.X_OK) else None)
    candidates = [Path(sys.executable).parent / "mpiexec"]
    try:
        from importlib import metadata

        for dist in ("mpich", "openmpi", "impi-rt"):
            try:
                files = metadata.files(dist) or []
            except metadata.PackageNotFoundError:
                continue
            candidates += [Path(str(f.locate())) for f in files if str(f).endswith(("bin/mpiexec", "bin/mpiexec.hydra"))]
    except Exception:  # noqa: BLE001 - metadata is a convenience, PATH remains
        pass
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return shutil.which("mpiexec") or shutil.which("mpirun")


def _is_open_mpi(mpiexec: str) -> bool:
    try:
        out = subprocess.run([mpiexec, "--version"], capture_output=True, text=True, timeout=20)
        return "Open MPI" in out.stdout + out.stderr or "OpenRTE" in out.stdout + out.stderr
    except (OSError, subprocess.SubprocessError):
        return False


def self_launch_command(ranks: int, cli_args: list[str], mpiexec: str) -> list[str]:
    extra = ["--oversubscribe"] if _is_open_mpi(mpiexec) else []
    return [mpiexec, "-n", str(ranks), *extra, sys.executable, "-m", "aibench.cli", *cli_args]


def self_launch(ranks: int, cli_args: list[str], stdout: int | None = None) -> tuple[int, int | None]:
    """Run `aibench <cli_args>` on `ranks` local ranks: (its exit code, the signal that
    stopped it or None). The children inherit stderr, and stdout unless `stdout` names
    another file descriptor: only their rank 0 prints, so nothing shows twice."""
    from .errors import UsageError

    mpiexec = find_mpiexec()
    if mpiexec is None:
        raise UsageError("no mpiexec found to launch the MPI ranks: install the `mpich` wheel "
                         "(pip install mpich), set AIBENCH_MPIEXEC, or run under mpirun/srun")
    cmd = self_launch_command(ranks, cli_args, mpiexec)
    env = dict(os.environ)
    env[CHILD_MARKER] = "1"
    if "--oversubscribe" in cmd and hasattr(os, "geteuid") and os.geteuid() == 0:
        # Open MPI's mpiexec refuses to start as root unless told twice (containers).
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    env[LAUNCH_DESCRIPTION] = " ".join(cmd[:cmd.index(sys.executable)])
    # Keep the children's Python from buffering stdout (rank 0 prints the progress and
    # summary) and from importing a stale aibench from the current directory.
    env.setdefault("PYTHONUNBUFFERED", "1")
    # mpiexec gets a session of its own, so that a terminal's Ctrl-C (sent to the whole
    # foreground group) reaches only this process, which passes exactly one signal on:
    # hydra forwards a first SIGINT to the ranks (they finish their case and save) and
    # aborts the job on a second. If this process dies, mpiexec gets SIGTERM.
    # What a killed rank or an aborted job leaves (MPICH's shared memory, hydra's topology
    # file), found while the job runs and removed after it (leftovers.py).
    job_files = MpiJobFiles()
    proc = subprocess.Popen(cmd, env=env, stdout=stdout, start_new_session=True,
                            preexec_fn=terminate_with_parent)
    job_files.watch(proc.pid)
    stop_signal = None

    def forward(signum, frame):
        nonlocal stop_signal
        if stop_signal is None:
            stop_signal = signum
            # hydra forwards SIGINT and SIGTERM to the ranks; a closed terminal's SIGHUP goes as SIGINT
            proc.send_signal(signal.SIGINT if signum == signal.SIGHUP else signum)
        else:  # asked twice: abort the job now
            _kill_group(proc)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        code = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if proc.poll() is None:
            _kill_group(proc)
        removed = job_files.remove()
        if removed:
            print(f"aibench: removed {len(removed)} file(s) the MPI job left: {', '.join(removed)}", file=sys.stderr)
    if stop_signal is not None:
        return 128 + stop_signal, stop_signal  # 130 for Ctrl-C: the ranks saved an `interrupted` document
    return (128 - code if code < 0 else code), None


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # mpiexec, its proxies and the ranks
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


# ---- the session of one MPI run (every rank) ---------------------------------------------


def behaviour_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    environ = os.environ if environ is None else environ
    return {k: v for k, v in sorted(environ.items())
            if k.startswith(BEHAVIOUR_ENV_PREFIXES) and not k.startswith(_ENV_NOISE)}


@dataclass
class Session:
    """This process's place in an MPI run: communicator, rank, and what rank 0 records."""

    comm: Any  # mpi4py.MPI.Intracomm (a duplicate of COMM_WORLD)
    rank: int
    size: int
    hosts: list[str]  # host of each rank
    info: dict[str, Any] = field(default_factory=dict)  # system["mpi"] of the run document
    thread_level: str = DEFAULT_THREAD_LEVEL  # the level the run asked for (THREAD_LEVELS)
    stop: StopSignals = field(default_factory=StopSignals)  # what asked this rank to stop (recorded only)

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    @property
    def host(self) -> str:
        return self.hosts[self.rank]

    def node_ranks(self) -> dict[str, list[int]]:
        nodes: dict[str, list[int]] = {}
        for r, h in enumerate(self.hosts):
            nodes.setdefault(h, []).append(r)
        return nodes

    @property
    def local_rank(self) -> int:
        return self.node_ranks()[self.host].index(self.rank)

    @property
    def local_size(self) -> int:
        return len(self.node_ranks()[self.host])

    def topology(self) -> dict[str, Any]:
        """Hosts and ranks per node, as every interconnect result records them."""
        nodes = self.node_ranks()
        per_node = sorted({len(r) for r in nodes.values()})
        return {"ranks": self.size, "nodes": len(nodes), "hosts": list(nodes),
                "ranks_per_node": per_node[0] if len(per_node) == 1 else {h: len(r) for h, r in nodes.items()},
                "rank_hosts": self.hosts}

    def idle_barrier(self) -> None:
        idle_barrier(self.comm)

    def agree_to_stop(self) -> bool:
        """True on every rank when any rank was asked to stop (SIGINT, SIGTERM). Every
        rank calls it at the same points of a run (before each case all ranks take part
        in, and once after the last case), so all stop together, between cases, and
        none is left waiting in a collective its peers abandoned. Waits asleep."""
        import numpy as np
        from mpi4py import MPI

        mine = np.array([self.stop.received[-1] if self.stop.received else 0], dtype=np.int32)  # the signal, or 0
        anyone = np.zeros(1, dtype=np.int32)
        req = self.comm.Iallreduce(mine, anyone, op=MPI.MAX)
        sleep = 50e-6
        while not req.Test():
            time.sleep(sleep)
            sleep = min(sleep * 2, 0.005)
        if anyone[0]:
            self.stop.agreed = int(anyone[0])  # the highest signal number any rank received
        return bool(anyone[0])

    def bcast(self, obj: Any) -> Any:
        return self.comm.bcast(obj, root=0)

    def exit_code(self, code: int | None) -> int:
        """Rank 0's exit code on every rank (the others wait asleep while it writes)."""
        idle_barrier(self.comm)
        return int(self.comm.bcast(code, root=0))


_SESSION: Session | None = None


def current() -> Session | None:
    """The session started in this process, if any."""
    return _SESSION


def init_call(thread_level: str) -> str:
    """The MPI call that initialises a run at this thread level (recorded in system.mpi)."""
    if thread_level == DEFAULT_THREAD_LEVEL:
        return "MPI_Init"
    return f"MPI_Init_thread(MPI_THREAD_{thread_level.upper()})"


def start_session(thread_level: str = DEFAULT_THREAD_LEVEL, stop: StopSignals | None = None) -> Session:
    """Initialise MPI (once) at `thread_level` (THREAD_LEVELS) and gather what rank 0
    records about the run. Collective: every rank of COMM_WORLD must call it, with the
    same level. From then on SIGINT, SIGTERM and SIGHUP are recorded in `stop` (a new
    StopSignals if none is given) and stop the run where all ranks agree."""
    global _SESSION
    if _SESSION is not None:
        return _SESSION
    import mpi4py

    if thread_level not in THREAD_LEVELS:
        raise ValueError(f"MPI thread level {thread_level!r}: expected one of {', '.join(THREAD_LEVELS)}")
    # Effective only if nothing has imported mpi4py.MPI yet (that initialises MPI); what
    # MPI provided is read back below with MPI_Query_thread and recorded either way.
    mpi4py.rc.threads = thread_level != DEFAULT_THREAD_LEVEL
    mpi4py.rc.thread_level = thread_level
    for name in _THREAD_RC_ENV:  # the option is the one way to choose the level
        os.environ.pop(name, None)
    from mpi4py import MPI

    comm = MPI.COMM_WORLD.Dup()
    rank, size = comm.Get_rank(), comm.Get_size()
    hosts = comm.allgather(socket.gethostname())
    envs = comm.gather(behaviour_env(), root=0)
    levels = comm.gather(provided_thread_level(), root=0)  # what MPI gave each rank
    info: dict[str, Any] = {}
    if rank == 0:
        library = MPI.Get_library_version().strip()
        differing = sorted({k for e in envs for k in e if any(e.get(k) != o.get(k) for o in envs)})
        session = Session(comm, rank, size, hosts)
        info = {
            "library": library.splitlines()[0].strip() if library else "unknown",
            "library_version": library,
            "standard": "%d.%d" % MPI.Get_version(),
            "mpi4py": mpi4py.__version__,
            "launcher": os.environ.get(LAUNCH_DESCRIPTION) or launcher() or "none (singleton)",
            "thread_level_requested": thread_level,
            "init_call": init_call(thread_level),
            # "single", or e.g. "multiple,single" if the ranks got different levels.
            "thread_level": ",".join(sorted(set(levels))),
            **session.topology(),
            "env": envs[0],
            "env_differs_across_ranks": differing,
        }
    _SESSION = Session(comm, rank, size, hosts, info, thread_level, stop or StopSignals())
    _SESSION.stop.record_signals()
    return _SESSION


def provided_thread_level() -> str:
    """The thread support MPI provides this process (MPI_Query_thread), by name."""
    from mpi4py import MPI

    provided = MPI.Query_thread()
    names = {MPI.THREAD_SINGLE: "single", MPI.THREAD_FUNNELED: "funneled",
             MPI.THREAD_SERIALIZED: "serialized", MPI.THREAD_MULTIPLE: "multiple"}
    return names.get(provided, str(provided))


def abort_on_crash() -> None:
    """Called on an uncaught exception: in a job of several ranks, print the traceback and
    abort every rank (the others would wait forever in their next collective); alone, do
    nothing and let the exception propagate."""
    if _SESSION is None or _SESSION.size < 2:
        return
    import traceback

    from mpi4py import MPI

    traceback.print_exc()
    print(f"aibench: rank {_SESSION.rank} crashed; aborting the MPI job", file=sys.stderr, flush=True)
    MPI.COMM_WORLD.Abort(1)


def idle_barrier(comm, max_sleep_s: float = 0.005) -> None:
    """A barrier that sleeps while it waits, so that ranks waiting for rank 0 (running a
    non-MPI suite, or writing) do not spin on the cores it measures with."""
    req = comm.Ibarrier()
    sleep = 50e-6
    while not req.Test():
        time.sleep(sleep)
        sleep = min(sleep * 2, max_sleep_s)


def agree(comm, ok: bool) -> bool:
    """True on every rank when `ok` is true on every rank. A rank that never arrives (it is
    stuck in a communication its peer abandoned) is the hang watchdog's to name: the wait
    is a watched section, ended after --collective-timeout with exit 3 (watchdog.py)."""
    import numpy as np
    from mpi4py import MPI

    from . import watchdog

    mine = np.array([1 if ok else 0], dtype=np.int32)
    everyone = np.zeros(1, dtype=np.int32)
    with watchdog.section("agreeing on a stage's outcome"):
        req = comm.Iallreduce(mine, everyone, op=MPI.MIN)
        sleep = 20e-6
        while not req.Test():
            time.sleep(sleep)
            sleep = min(sleep * 2, 0.002)
    return bool(everyone[0])


def mpi_unavailable_reason() -> str | None:
    """Why MPI cases cannot run from this process (None: they can), without initialising
    MPI: mpi4py must import, and a launcher must be active or an mpiexec be found."""
    import importlib.util

    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py is not installed (pip install mpi4py mpich)"
    if not under_launcher() and find_mpiexec() is None:
        return "no MPI launcher: not started by mpirun/srun and no mpiexec found (pip install mpich)"
    return None


class NullWriter:
    """The result writer of ranks other than 0: they keep no document."""

    doc = None

    def add(self, case) -> None:
        pass

    def finish(self, status: str, ended_by: str | None = None) -> None:
        pass
