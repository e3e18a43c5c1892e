"""One way to write a file (docs/security.md, "What it writes, and where").

Every command that writes (the run document, preflight's report, accept's report and
spec, publish's results tree and pages, plot's charts) goes through `write_file`, and
every directory it writes into through `prepare_directory`:

- a file is written to a temporary file in the target's directory and renamed over the
  target, so nothing is ever written through an existing symbolic link or hard link, and
  a reader (or a crash) sees the old file or the new one, never half of one;
- an existing target is replaced only when it is a regular file of the same user, not
  read-only, and of aibench's own kind (a run document where a run document goes; an
  empty file too). `--force` lifts the last two rules, never the others: a link, a
  device (/dev/null), a directory, a pipe or socket, or another user's file is refused
  with one line (exit 2);
- a replaced file keeps its mode and group; a new one gets the mode `open()` would give
  it (0666 less the umask).

`check_target` applies the same rules without writing, so that a command refuses a bad
target before it spends time measuring.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import UsageError

# A file larger than this is not read to recognise it (it is not one of aibench's).
_RECOGNISE_MAX_BYTES = 256 << 20


@dataclass(frozen=True)
class Kind:
    """What aibench writes at a target, and how to recognise a file it wrote there before."""
    what: str  # "an aibench run document": said in the refusal
    recognise: Callable[[bytes], bool]  # the file's bytes -> True when it is of this kind


def _json_object_with(key: str, value: object = None) -> Callable[[bytes], bool]:
    """A JSON object whose `key` is `value` (or, with value None, is present)."""
    def recognise(data: bytes) -> bool:
        try:
            obj = json.loads(data)
        except (ValueError, RecursionError):
            return False
        return isinstance(obj, dict) and key in obj and (value is None or obj[key] == value)
    return recognise


def _starts_with(prefix: bytes, contains: bytes = b"") -> Callable[[bytes], bool]:
    return lambda data: data.startswith(prefix) and contains in data[:4096]


RUN_DOCUMENT = Kind("an aibench run document", _json_object_with("schema", "aibench.run"))
PREFLIGHT_REPORT = Kind("an aibench preflight report", _json_object_with("schema", "aibench.preflight"))
ACCEPT_REPORT_JSON = Kind("an aibench acceptance report", _json_object_with("schema", "aibench.acceptance"))
ACCEPT_REPORT_MD = Kind("an aibench acceptance report", _starts_with(b"# Acceptance report: "))
ACCEPT_REPORT_HTML = Kind("an aibench acceptance report", _starts_with(b"<!DOCTYPE html>", b"<title>aibench acceptance"))
MADE_SPEC = Kind("a spec written by aibench accept --make-spec",
                 _starts_with(b"# Written by `aibench accept --make-spec`"))
# asv's results tree: benchmarks.json, <machine>/machine.json, <machine>/<commit>-*.json
ASV_RESULTS_JSON = Kind("a file of asv's results tree", _json_object_with("version"))
PLOT_PNG = Kind("an aibench chart", _starts_with(b"\x89PNG\r\n\x1a\n", b"aibench"))
PLOTS_PAGE = Kind("aibench's plots page", _starts_with(b"<!DOCTYPE html>", b"<title>aibench plots</title>"))
# Published pages are built in a directory publish has just made (replace_directory), so
# every file written there is new: any content is "its own".
PUBLISHED_PAGE = Kind("a file of pages aibench publishes", lambda data: True)
# A copy of a judged input in an acceptance report's inputs/ (a run document or a spec).
REPORT_INPUT = Kind("an input copied into an aibench report",
                    lambda data: RUN_DOCUMENT.recognise(data) or b"spec_version" in data[:65536])


def _read_regular(path: Path) -> bytes | None:
    """The bytes of `path` when it is (still) a regular file of sane size; never follows a
    link and never blocks on a pipe that was put in its place."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_size > _RECOGNISE_MAX_BYTES:
            return None
        return f.read()


def _refuse(flag: str, path: Path, why: str) -> UsageError:
    return UsageError(f"{flag} {path} {why}".strip())


def _lstat(path: Path, flag: str) -> os.stat_result | None:
    """The target's own status (a link's, not what it points at); None when it is missing."""
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise _refuse(flag, path, f"cannot be written: {e.strerror}") from None


def check_target(path: Path, kind: Kind, force: bool = False, flag: str = "") -> os.stat_result | None:
    """UsageError unless aibench may write `path` (see the module docstring). Returns the
    target's lstat (None: it does not exist yet, and will be created)."""
    path = Path(path)
    st = _lstat(path, flag)
    if st is None:
        return None
    if stat.S_ISDIR(st.st_mode):
        raise _refuse(flag, path, "is a directory: give a file name")
    if stat.S_ISLNK(st.st_mode):
        raise _refuse(flag, path, "exists and is a symbolic link: aibench will not write through it")
    if not stat.S_ISREG(st.st_mode):
        raise _refuse(flag, path, "exists and is not a regular file (a device, a pipe, a socket): "
                                  "aibench will not replace it")
    if st.st_uid != os.geteuid():
        raise _refuse(flag, path, f"belongs to another user (uid {st.st_uid}): aibench will not replace it")
    if force:
        return st
    if not st.st_mode & stat.S_IWUSR:
        raise _refuse(flag, path, "is read-only: aibench will not replace it (--force to replace it anyway)")
    if st.st_size == 0:
        return st  # an empty file of ours (a self-launch reserves the document's name so)
    data = _read_regular(path)
    if data is None or not kind.recognise(data):
        raise _refuse(flag, path, f"exists and is not {kind.what}: aibench will not replace it "
                                  "(--force to replace it anyway)")
    return st


def write_file(path: Path, data: bytes | str, kind: Kind, force: bool = False, flag: str = "") -> None:
    """Write `data` at `path` by the rules above: checked, then a temporary file in the
    same directory, fsync'ed and renamed over `path`."""
    path = Path(path)
    old = check_target(path, kind, force, flag)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    # The name `.<name>.<random>.tmp` is what a cleanup after a killed writer looks for.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if old is None:
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(fd, 0o666 & ~umask)  # as open() would create it (mkstemp makes it private)
        else:
            os.fchmod(fd, stat.S_IMODE(old.st_mode))
            if old.st_gid != os.getegid():
                try:
                    os.fchown(fd, -1, old.st_gid)
                except PermissionError:
                    pass  # not a member of that group: the file gets ours
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # rename() replaces the directory entry itself: a link put there since the check
        # is replaced, never written through.
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def prepare_directory(path: Path, flag: str = "") -> Path:
    """A directory aibench writes files into: created (with its parents) when missing;
    an existing one must be a real directory (not a link to one) of the same user."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        st = os.lstat(path)
    except FileExistsError:
        st = os.lstat(path)  # a dangling link, or a file where the directory should be
    except OSError as e:
        raise _refuse(flag, path, f"cannot be created: {e.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        raise _refuse(flag, path, "is a symbolic link: aibench will not write through it")
    if not stat.S_ISDIR(st.st_mode):
        raise _refuse(flag, path, "exists and is not a directory")
    if st.st_uid != os.geteuid():
        raise _refuse(flag, path, f"belongs to another user (uid {st.st_uid}): aibench will not write in it")
    return path


def check_directory_to_replace(path: Path, recognise: Callable[[Path], bool], what: str, force: bool = False,
                               flag: str = "") -> bool:
    """A directory aibench replaces whole (publish's pages): UsageError unless it is
    missing, or a real directory of the same user that is empty or `recognise`d (with
    --force: any such directory). Returns whether it exists."""
    path = Path(path)
    st = _lstat(path, flag)
    if st is None:
        return False
    if stat.S_ISLNK(st.st_mode):
        raise _refuse(flag, path, "is a symbolic link: aibench will not write through it")
    if not stat.S_ISDIR(st.st_mode):
        raise _refuse(flag, path, "exists and is not a directory")
    if st.st_uid != os.geteuid():
        raise _refuse(flag, path, f"belongs to another user (uid {st.st_uid}): aibench will not replace it")
    if not force and any(path.iterdir()) and not recognise(path):
        raise _refuse(flag, path, f"exists and is not {what}: aibench will not replace it "
                                  "(--force to replace it anyway)")
    return True


def replace_directory(staged: Path, path: Path, recognise: Callable[[Path], bool], what: str, force: bool = False,
                      flag: str = "") -> None:
    """Put the directory `staged` (made by aibench beside `path`) in place of `path`,
    which is checked again first; the old directory is removed after the swap."""
    path = Path(path)
    exists = check_directory_to_replace(path, recognise, what, force, flag)
    if not exists:
        os.rename(staged, path)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
    os.rename(path, old / path.name)
    os.rename(staged, path)
    shutil.rmtree(old)  # rmtree never follows links: it removes them
