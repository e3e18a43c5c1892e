"""What a killed aibench process leaves behind, and the survivor that removes it
(docs/security.md, "Signals and dead processes").

- Scratch directories (the storage suite's test directory, the pytest-benchmark runner's
  reports) are made by `owned_temp_dir`, with an owner file naming the process and the
  boot. The process removes its directory when done (pytest's plugin also when aibench
  dies); after a SIGKILL the next run removes every such directory of this user whose
  owner is gone (`remove_stale_dirs`).
- A self-launched MPI job: when a rank is killed or the watchdog aborts the job, MPICH
  leaves its shared-memory segment (/dev/shm/mpich_shm_*, 2-3 MiB) and hydra may leave its
  topology file (/tmp/hydra_hwloc_xmlfile_*). `MpiJobFiles` finds them while the job runs
  as the files its own processes (mpiexec and its descendants) hold open or mapped, created
  since the launch, and removes exactly those (same inode) once the job has ended. What it
  found is also written to its owned directory, so that if the parent itself is killed the
  next self-launch removes them, once no process of that job is left.
- A document that rank 0 was writing when it died: the temporary file that
  safe_write.write_file leaves beside it (`remove_partial_writes`).

Nothing here removes a file by a broad pattern: each is one the run's own processes
created or held.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

OWNER_FILE = "owner"  # "<pid> <boot id>" of the process that made the directory


def boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return "unknown"


def pid_alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie, killed and not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True  # no /proc: os.kill said it exists


def owned_temp_dir(prefix: str, directory: str | None = None) -> str:
    """A new private directory (mkdtemp) holding an owner file: this process and boot."""
    path = tempfile.mkdtemp(prefix=prefix, dir=directory)
    with open(os.path.join(path, OWNER_FILE), "w") as f:
        f.write(f"{os.getpid()} {boot_id()}\n")
    return path


def _owner(path: str) -> tuple[int, str] | None:
    try:
        with open(os.path.join(path, OWNER_FILE)) as f:
            pid_text, _, owner_boot = f.read().strip().partition(" ")
        return int(pid_text), owner_boot
    except (OSError, ValueError):
        return None


def remove_stale_dirs(directory: str, prefix: str,
                      before_removal: Callable[[str], bool] | None = None) -> list[str]:
    """Remove the directories named `prefix`* in `directory` that killed aibench processes
    left: owned by this user, with an owner file whose process is gone (another pid, or
    another boot). `before_removal(path)` may clean what the directory lists first, and
    return False to keep it for a later run. Returns what was removed."""
    removed = []
    boot = boot_id()
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(prefix) or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            if entry.stat(follow_symlinks=False).st_uid != os.getuid():
                continue
        except OSError:
            continue
        owner = _owner(entry.path)
        if owner is None:
            continue  # not one of ours, or still being created
        pid, owner_boot = owner
        if pid == os.getpid() or (owner_boot == boot and pid_alive(pid)):
            continue
        if before_removal is not None and not before_removal(entry.path):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(entry.path)
    return removed


def remove_partial_writes(path: Path) -> list[str]:
    """The temporary files aibench's writer (safe_write.write_file) names
    `.<name>.<random>.tmp` beside `path`, left when the process writing `path` died
    mid-write: regular files of this user."""
    removed = []
    for tmp in Path(path).parent.glob(f".{Path(path).name}.*.tmp"):
        try:
            st = tmp.lstat()
            if stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid():
                tmp.unlink()
                removed.append(str(tmp))
        except OSError:
            pass
    return removed


# ---- the files of a self-launched MPI job ---------------------------------------------------

MPI_DIR_PREFIX = "aibench-mpi-"
_MANIFEST = "files.jsonl"  # one line per file found: {"path", "dev", "ino", "pids"}
_SCAN_INTERVAL_S = 0.25


def _is_mpi_leftover_name(path: str) -> bool:
    """The names MPICH and hydra give the files they leave: /dev/shm/mpich_* (the node's
    shared-memory segments) and /tmp/hydra_hwloc_xmlfile_* (the topology a hydra proxy
    exports; hydra fixes /tmp whatever TMPDIR says)."""
    p = Path(path)
    return ((str(p.parent) == "/dev/shm" and p.name.startswith("mpich_"))
            or (str(p.parent) == "/tmp" and p.name.startswith("hydra_hwloc_xmlfile_")))


def _held_files(pid: int) -> set[str]:
    """The paths process `pid` holds open (fd links) or mapped (/proc/<pid>/maps)."""
    held = set()
    try:
        fd_dir = f"/proc/{pid}/fd"
        for fd in os.listdir(fd_dir):
            try:
                held.add(os.readlink(os.path.join(fd_dir, fd)))
            except OSError:
                pass
        with open(f"/proc/{pid}/maps") as f:
            for line in f:
                fields = line.split(maxsplit=5)
                if len(fields) == 6:
                    held.add(fields[5].strip())
    except OSError:
        pass
    return held


def _descendants(pid: int) -> list[int]:
    import psutil

    try:
        return [pid, *(p.pid for p in psutil.Process(pid).children(recursive=True))]
    except psutil.Error:
        return []


def mpi_files_held_under(root_pid: int) -> dict[str, int]:
    """The MPICH and hydra files (by name) that process root_pid and its descendants hold
    open or mapped now: {path: a pid holding it}."""
    held = {}
    for pid in _descendants(root_pid):
        held.update({path: pid for path in _held_files(pid) if _is_mpi_leftover_name(path)})
    return held


class MpiJobFiles:
    """The shared-memory segments and hydra files of one self-launched MPI job: watch(pid of
    mpiexec) records each file of those names that the job's processes hold, created since
    the launch and owned by this user; remove() (the job has ended) unlinks exactly those
    still there with the same inode, and the record."""

    def __init__(self):
        remove_killed_jobs_files()
        try:
            self.dir: str | None = owned_temp_dir(MPI_DIR_PREFIX)
        except OSError:  # no writable temporary directory: cleaned after the job all the same
            self.dir = None
        self.started = time.time()
        self.found: dict[str, tuple[int, int]] = {}  # path: (st_dev, st_ino)
        self._pids: set[int] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, root_pid: int) -> None:
        self._thread = threading.Thread(target=self._scan_until_stopped, args=(root_pid,), daemon=True,
                                        name="aibench-mpi-files")
        self._thread.start()

    def _scan_until_stopped(self, root_pid: int) -> None:
        while True:
            self.scan(root_pid)
            if self._stop.wait(_SCAN_INTERVAL_S):
                return

    def scan(self, root_pid: int) -> None:
        for path, pid in mpi_files_held_under(root_pid).items():
            if path in self.found:
                continue
            try:
                st = os.lstat(path)
            except OSError:
                continue  # already removed (a "(deleted)" link names no file)
            # ctime: a second of slack for coarse filesystem timestamps
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid() or st.st_ctime < self.started - 1:
                continue
            self.found[path] = (st.st_dev, st.st_ino)
            self._pids.add(pid)
            if self.dir is None:
                continue
            try:
                with open(os.path.join(self.dir, _MANIFEST), "a") as f:
                    f.write(json.dumps({"path": path, "dev": st.st_dev, "ino": st.st_ino,
                                        "pids": sorted(self._pids | {root_pid})}) + "\n")
            except OSError:
                pass  # the record is for the next run if this one is killed; this one removes them

    def remove(self, wait_s: float = 10.0) -> list[str]:
        """After mpiexec ended: wait (at most wait_s) for the job's processes that held the
        files to end too, then unlink what they left; returns the paths removed."""
        import psutil

        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        procs = []
        for pid in self._pids:
            try:
                procs.append(psutil.Process(pid))
            except psutil.Error:
                pass
        psutil.wait_procs(procs, timeout=wait_s)
        removed = [path for path, ids in self.found.items() if _unlink_if_same(path, *ids)]
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
        return removed


def remove_killed_jobs_files() -> list[str]:
    """What the MPI jobs of killed self-launching parents left (their records in the
    temporary directory), once no process of such a job lives. Returns the records removed."""
    return remove_stale_dirs(tempfile.gettempdir(), MPI_DIR_PREFIX, before_removal=_remove_listed_files)


def _unlink_if_same(path: str, dev: int, ino: int) -> bool:
    try:
        st = os.lstat(path)
        if (st.st_dev, st.st_ino) == (dev, ino) and st.st_uid == os.getuid():
            os.unlink(path)
            return True
    except OSError:
        pass
    return False


def _remove_listed_files(run_dir: str) -> bool:
    """The files a killed parent's job left (its manifest), once no process of that job is
    alive; False (keep the record for a later run) while one is."""
    try:
        with open(os.path.join(run_dir, _MANIFEST)) as f:
            records = [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return True
    except (OSError, ValueError):
        return True  # unreadable: nothing to go by, and nothing is removed but the record
    owner = _owner(run_dir)
    same_boot = owner is not None and owner[1] == boot_id()  # after a reboot its pids mean nothing
    if same_boot and any(isinstance(pid, int) and pid_alive(pid) for r in records for pid in r.get("pids", [])):
        return False
    for r in records:
        if isinstance(r.get("path"), str) and _is_mpi_leftover_name(r["path"]):
            _unlink_if_same(r["path"], r.get("dev"), r.get("ino"))
    return True
