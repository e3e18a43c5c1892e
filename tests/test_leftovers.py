"""What a killed process of a run leaves behind, and who removes it (leftovers.py; #27
fault 3): a real self-launched 2-rank run whose rank 1 is SIGKILLed leaves no MPICH
segment, hydra file or partial document; a killed parent's job files go with the next
self-launch; owned scratch directories of dead processes go with the next run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from aibench import leftovers
from mpi_helpers import clean_env, needs_mpi


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _cases(doc: Path) -> int:
    try:
        return len(json.loads(doc.read_text())["cases"])
    except (OSError, ValueError, KeyError):
        return 0


def _job_processes(marker: str) -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] and marker in " ".join(p.info["cmdline"])]


def _rank_pid(marker: str, rank: int) -> int | None:
    for p in _job_processes(marker):
        try:
            if p.environ().get("PMI_RANK") == str(rank):
                return p.pid
        except psutil.Error:
            pass
    return None


def _run_until_a_case_is_saved(doc: Path, stdout) -> subprocess.Popen:
    """A quick self-launched 2-rank interconnect run writing `doc` (in its directory),
    returned once its first case is saved (or it ended, or 180 s passed)."""
    proc = subprocess.Popen([sys.executable, "-m", "aibench.cli", "run", "--suite", "interconnect", "--impl", "mpi",
                             "--ranks", "2", "--param", "pattern=allreduce", "--param", "dtype=fp32",
                             "--param", "inplace=false", "--time-budget", "0.3", "--no-asv", "--output", str(doc)],
                            cwd=doc.parent, env=clean_env(), stdout=stdout, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while _cases(doc) < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    return proc


def killed_rank_run(directory: Path) -> tuple[set[str], set[str], subprocess.CompletedProcess]:
    """A quick self-launched interconnect run whose rank 1 is SIGKILLed once a case is saved:
    (the MPICH/hydra files the job held, those still there after it, the finished parent)."""
    doc = directory / "run.json"
    proc = _run_until_a_case_is_saved(doc, stdout=subprocess.PIPE)
    rank1 = _rank_pid(str(doc), 1)
    assert rank1 is not None and proc.poll() is None, "the run ended before a case was saved"
    held = set(leftovers.mpi_files_held_under(proc.pid))  # of mpiexec, hydra's proxy, the ranks
    # As if rank 0 had died writing the document: a partial temp file beside it.
    (directory / ".run.json.k3j9x2.tmp").write_text('{"schema": "aibench.run", "cas')
    os.kill(rank1, signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    left = {f for f in held if os.path.exists(f)}
    return held, left, subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@needs_mpi
def test_a_killed_rank_leaves_no_mpich_segment_hydra_file_or_partial_document(tmp_path):
    held, left, proc = killed_rank_run(tmp_path)
    assert any(f.startswith("/dev/shm/mpich_") for f in held), f"the job held no MPICH segment: {held}"
    assert not left, f"left behind: {left}\n{proc.stderr[-2000:]}"
    assert not list(tmp_path.glob(".run.json.*.tmp")), "the partial document was not removed"
    doc = json.loads((tmp_path / "run.json").read_text())
    assert doc["status"] == "failed" and proc.returncode != 0
    assert not _job_processes(str(tmp_path / "run.json")), "processes of the run are left"


def test_partial_writes_of_that_document_alone_are_removed(tmp_path):
    doc = tmp_path / "run.json"
    ours, other, final = tmp_path / ".run.json.ab12cd.tmp", tmp_path / ".other.json.ab12cd.tmp", tmp_path / "run.json"
    for f in (ours, other, final):
        f.write_text("{")
    assert leftovers.remove_partial_writes(doc) == [str(ours)]
    assert not ours.exists() and other.exists() and final.exists()


def _fake_segment() -> Path:
    fd, name = tempfile.mkstemp(prefix="mpich_aibench_test_", dir="/dev/shm")
    os.close(fd)
    return Path(name)


def _record_of_a_killed_parent(owner_pid: int, segment: Path, job_pids: list[int]) -> Path:
    """The directory a self-launching parent keeps (owner file, manifest), as it is after
    a SIGKILL of that parent."""
    run_dir = Path(tempfile.mkdtemp(prefix=leftovers.MPI_DIR_PREFIX))
    (run_dir / leftovers.OWNER_FILE).write_text(f"{owner_pid} {leftovers.boot_id()}\n")
    st = segment.stat()
    (run_dir / "files.jsonl").write_text(json.dumps({"path": str(segment), "dev": st.st_dev, "ino": st.st_ino,
                                                     "pids": job_pids}) + "\n")
    return run_dir


def test_the_next_self_launch_removes_what_a_killed_parents_job_left():
    segment, dead = _fake_segment(), _dead_pid()
    run_dir = _record_of_a_killed_parent(dead, segment, [dead])
    try:
        files = leftovers.MpiJobFiles()  # what a self-launch makes first
        files.remove()
        assert not segment.exists() and not run_dir.exists()
        assert not Path(files.dir).exists()
    finally:
        segment.unlink(missing_ok=True)


def test_a_killed_parents_job_files_stay_while_a_process_of_that_job_lives():
    segment = _fake_segment()
    run_dir = _record_of_a_killed_parent(_dead_pid(), segment, [os.getppid()])  # a rank still running
    try:
        leftovers.MpiJobFiles().remove()
        assert segment.exists() and run_dir.exists()
    finally:
        segment.unlink(missing_ok=True)
        leftovers.shutil.rmtree(run_dir, ignore_errors=True)


def test_a_replaced_segment_of_the_same_name_is_not_removed():
    """Only the file the job held (same inode) goes, never another one given its name since."""
    segment = _fake_segment()
    run_dir = _record_of_a_killed_parent(_dead_pid(), segment, [_dead_pid()])
    segment.unlink()
    segment.write_text("another run's segment")
    try:
        leftovers.MpiJobFiles().remove()
        assert segment.exists() and not run_dir.exists()
    finally:
        segment.unlink(missing_ok=True)


def test_stale_owned_directories_of_dead_processes_go_and_live_ones_stay(tmp_path):
    stale = Path(leftovers.owned_temp_dir("aibench-x-", str(tmp_path)))
    (stale / leftovers.OWNER_FILE).write_text(f"{_dead_pid()} {leftovers.boot_id()}\n")
    live = Path(leftovers.owned_temp_dir("aibench-x-", str(tmp_path)))
    (live / leftovers.OWNER_FILE).write_text(f"{os.getppid()} {leftovers.boot_id()}\n")
    mine = Path(leftovers.owned_temp_dir("aibench-x-", str(tmp_path)))
    other_prefix = Path(leftovers.owned_temp_dir("somebody-", str(tmp_path)))
    (other_prefix / leftovers.OWNER_FILE).write_text(f"{_dead_pid()} {leftovers.boot_id()}\n")
    assert leftovers.remove_stale_dirs(str(tmp_path), "aibench-x-") == [str(stale)]
    assert live.exists() and mine.exists() and other_prefix.exists()


@needs_mpi
def test_a_self_launched_run_ended_by_sighup_says_sighup(tmp_path):
    """hydra passes only SIGINT/SIGTERM on, so the parent forwards SIGHUP as SIGINT; the
    document must still name the signal that came (#27: it said SIGINT)."""
    doc = tmp_path / "run.json"
    proc = _run_until_a_case_is_saved(doc, stdout=subprocess.DEVNULL)
    assert proc.poll() is None, "the run ended before a case was saved"
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=120)
    saved = json.loads(doc.read_text())
    assert (saved["status"], saved["ended_by"]) == ("interrupted", "signal SIGHUP"), err[-2000:]
    assert proc.returncode == 128 + signal.SIGHUP


def test_a_child_whose_parent_died_before_the_parent_death_signal_was_set_ends_at_once():
    """No parent-death signal comes to a child whose parent died between the fork and the
    prctl: terminate_with_parent sees the parent it was forked by is gone and ends it."""
    from aibench import safety

    def child_exit_code(recorded_parent_gone: bool) -> int:
        pid = os.fork()
        if pid == 0:  # the child: as if the process that forked it were gone (reparented)
            if recorded_parent_gone:
                safety._FORKING_PID[0] = os.getppid() + 1
            safety.terminate_with_parent()
            os._exit(0)
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

    assert child_exit_code(recorded_parent_gone=False) == 0
    assert child_exit_code(recorded_parent_gone=True) == 1
