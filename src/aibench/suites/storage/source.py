"""What the storage suite reads: a test file it creates (and deletes), an existing file
(`--file`, read-only, never modified) or a block device (`--device`, read-only).

aibench never writes to anything it did not create: its own test file lives in a fresh
directory (mkdtemp) under `--path` (default: the current directory, so a real filesystem
rather than a tmpfs /tmp), is created with O_EXCL, filled with content derived from a
random file id (every 8-byte word is a hash of the id and its offset, so a read of the
wrong block or of stale memory is caught), fsynced, and removed when the suite is done,
at interpreter exit, or on Ctrl-C.
"""

from __future__ import annotations

import mmap
import os
import secrets
import shutil
import stat
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable

from ...errors import UsageError
from ...fit import amount, fits
from ...leftovers import owned_temp_dir, remove_stale_dirs
from ...units import parse_size

MIN_FILE_SIZE = 16 << 20
# The preconditioning pass (ReadSource.precondition): at most this much, at most this long.
PRECONDITION_MAX_BYTES = 16 << 30
PRECONDITION_MAX_S = 30.0
PRECONDITION_CHUNK = 4 << 20
_FILE_NAME = "aibench-read-test.bin"


def _core():
    from ... import _core

    return _core


def validate_options(options: dict[str, Any]) -> dict[str, Any]:
    """The storage options (path, file, device, file_size), checked: UsageError if bad."""
    path, file, device, size = (options.get(k) for k in ("path", "file", "device", "file_size"))
    given = [n for n, v in (("--path", path), ("--file", file), ("--device", device)) if v]
    if len(given) > 1:
        raise UsageError(f"{' and '.join(given)} cannot be combined: give one place to read")
    if path is not None:
        path = str(path)
        if not os.path.isdir(path):
            raise UsageError(f"--path {path}: not a directory")
        if not os.access(path, os.W_OK | os.X_OK):
            raise UsageError(f"--path {path}: not writable (aibench creates its test file there)")
    if file is not None:
        file = str(file)
        try:
            st = os.stat(file)
        except OSError as e:
            raise UsageError(f"--file {file}: {e.strerror}") from None
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"--file {file}: not a regular file (a block device is read with --device)")
        if not os.access(file, os.R_OK):
            raise UsageError(f"--file {file}: not readable")
        if st.st_size < 4096:
            raise UsageError(f"--file {file}: only {st.st_size} bytes; at least 4096 are needed")
    if device is not None:
        device = str(device)
        try:
            st = os.stat(device)
        except OSError as e:
            raise UsageError(f"--device {device}: {e.strerror}") from None
        if not stat.S_ISBLK(st.st_mode):
            raise UsageError(f"--device {device}: not a block device (a file is read with --file)")
        if not os.access(device, os.R_OK):
            raise UsageError(f"--device {device}: not readable (permission denied)")
    if size is not None:
        if file or device:
            raise UsageError("--file-size only applies to the test file aibench creates (not with --file/--device)")
        if isinstance(size, str):
            try:
                size = parse_size(size)
            except ValueError as e:
                raise UsageError(f"bad --file-size {size!r}: {e} (e.g. 4G, 512M)") from None
        size = int(size) // (1 << 20) * (1 << 20)
        if size < MIN_FILE_SIZE:
            raise UsageError(f"--file-size must be at least {MIN_FILE_SIZE >> 20} MiB")
        check_free_space(path or os.getcwd(), size, shutil.disk_usage(path or os.getcwd()).free)
    return {"path": path, "file": file, "device": device, "file_size": size}


@dataclass
class ReadSource:
    """One thing to read: its path, size, and what aibench knows of its content."""

    kind: str  # created | file | device
    path: str
    size: int
    file_id: int | None  # content id of a file aibench created (None: content unknown)
    fs: dict[str, Any]
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def verifiable(self) -> bool:
        return self.file_id is not None

    def drop_cache(self) -> bool:
        """posix_fadvise(DONTNEED) on the whole file: evicts its clean pages from the page
        cache (what root's drop_caches would do, for this file only). Read-only."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            return True
        except OSError:
            return False
        finally:
            os.close(fd)

    def precondition(self, max_bytes: int = PRECONDITION_MAX_BYTES, max_s: float = PRECONDITION_MAX_S) -> dict[str, Any]:
        """One untimed sequential pass over the source before its first case, so that aibench
        and fio (whichever is measured first) start from the same state: a freshly written
        file's first read pays what later reads do not (the device's or the VM host's caches
        and mappings warming up; measured with scripts/storage_first_run.py). O_DIRECT where
        the filesystem has it, else through the page cache (dropped again before each window).
        Bounded by bytes and time so a large --device is not read whole; what was read is
        recorded in the case."""
        flags = os.O_RDONLY | os.O_CLOEXEC
        try:
            fd = os.open(self.path, flags | getattr(os, "O_DIRECT", 0))
            direct = True
        except OSError:
            fd, direct = os.open(self.path, flags), False
        chunk = PRECONDITION_CHUNK
        buf = mmap.mmap(-1, chunk)  # page aligned, as O_DIRECT needs
        done, start = 0, time.perf_counter()
        try:
            limit = min(self.size, max_bytes) // 4096 * 4096
            while done < limit and time.perf_counter() - start < max_s:
                n = os.preadv(fd, [memoryview(buf)[:min(chunk, limit - done)]], done)
                if n <= 0:
                    break
                done += n
        except OSError as e:
            return {"bytes": done, "direct": direct, "stopped": f"read error: {e.strerror}"}
        finally:
            os.close(fd)
            buf.close()
        seconds = time.perf_counter() - start
        return {"bytes": done, "of_bytes": self.size, "seconds": round(seconds, 3), "direct": direct,
                "gbps": round(done / seconds / 1e9, 3) if seconds > 0 else None}

    def describe(self) -> dict[str, Any]:
        d = {"kind": self.kind, "path": self.path, "size_bytes": self.size, "filesystem": self.fs.get("name"),
             "fs_magic": hex(self.fs.get("magic", 0)) if self.fs.get("magic") is not None else None}
        if self.kind == "created":
            d["content"] = "written by aibench: every 8-byte word a hash of (file id, offset); fsynced"
        else:
            d["content"] = "not aibench's: opened O_RDONLY and never modified; its content cannot be checked"
        return {**d, **self.detail}


_DIR_PREFIX = ".aibench-storage-"


def remove_stale_test_dirs(directory: str) -> list[str]:
    """Remove the test directories that aibench runs killed by SIGKILL (or a crash of the
    machine) left in `directory` (leftovers.remove_stale_dirs). Returns what was removed."""
    return remove_stale_dirs(directory, _DIR_PREFIX)


class CreatedFile:
    """The suite's own test file: created once per run, deleted when done or at exit."""

    def __init__(self, directory: str, size: int, after_create: Callable[[str], None] | None = None):
        core = _core()
        remove_stale_test_dirs(directory)
        self.dir = owned_temp_dir(_DIR_PREFIX, directory)
        # Deleted with the object, at interpreter exit (Ctrl-C, SIGTERM included), or by
        # close(); after a SIGKILL, by the next run in the same directory (the owner file).
        self._finalizer = weakref.finalize(self, shutil.rmtree, self.dir, True)
        self.path = os.path.join(self.dir, _FILE_NAME)
        self.size = size
        self.file_id = secrets.randbits(62)
        try:
            core.io_create_file(self.path, size, self.file_id)
            if after_create is not None:
                after_create(self.path)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._finalizer()

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive


def check_free_space(directory: str, size: int, free_bytes: int) -> None:
    """The test file must leave a tenth of the filesystem's free space free (fit.fits); a
    size under MIN_FILE_SIZE (the default is a quarter of the free space) means too little."""
    reason = fits(size, free_bytes, f"a {amount(size)} test file", share=0.9, of="free")
    if reason is None and size < MIN_FILE_SIZE:
        reason = f"a test file needs at least {amount(MIN_FILE_SIZE)}, {amount(free_bytes)} is free"
    if reason:
        raise UsageError(f"not enough free space in {directory}: {reason}; give --path elsewhere or a smaller "
                         "--file-size")


def default_file_size(budget_s: float, free_bytes: int) -> int:
    """1 GiB for quick runs, 4 GiB standard, 16 GiB full, at most a quarter of the free
    space. Not larger than RAM: buffered (direct=0) cases evict the file from the page
    cache before each run with posix_fadvise(DONTNEED) instead."""
    size = (1 << 30) if budget_s <= 1.5 else (4 << 30) if budget_s <= 5 else (16 << 30)
    size = min(size, free_bytes // 4)
    return size // (1 << 20) * (1 << 20)


def open_source(options: dict[str, Any], budget_s: float, cache: dict[str, Any],
                after_create: Callable[[str], None] | None = None) -> ReadSource:
    """The ReadSource of these options; a created file is made once and kept in `cache`."""
    core = _core()
    opts = validate_options(options)
    if opts["file"]:
        path = os.path.abspath(opts["file"])
        return _preconditioned(ReadSource("file", path, os.path.getsize(path), None, core.io_fs_type(path)), cache)
    if opts["device"]:
        path = opts["device"]
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)  # read-only, always
        except OSError as e:
            raise RuntimeError(f"--device {path}: cannot open it read-only: {e.strerror}") from None
        try:
            size = os.lseek(fd, 0, os.SEEK_END)
        finally:
            os.close(fd)
        return _preconditioned(
            ReadSource("device", path, size, None, {"name": "block device", "magic": None, "is_tmpfs": False}), cache)
    directory = os.path.abspath(opts["path"] or os.getcwd())
    fs = core.io_fs_type(directory)
    made: CreatedFile | None = cache.get("file")
    if made is None or made.closed or os.path.dirname(made.dir) != directory:
        if made is not None:
            made.close()
        size = opts["file_size"] or default_file_size(budget_s, fs["free_bytes"])
        check_free_space(directory, size, fs["free_bytes"])
        made = CreatedFile(directory, size, after_create)
        cache["file"] = made
    return _preconditioned(ReadSource("created", made.path, made.size, made.file_id, fs,
                                      {"directory": directory, "deleted_after_run": True}), cache)


def _preconditioned(source: ReadSource, cache: dict[str, Any]) -> ReadSource:
    """The source, read once (ReadSource.precondition) the first time this run opens it;
    what that pass read is in source.detail["preconditioned"] of every case on it."""
    done = cache.setdefault("preconditioned", {})
    key = (source.path, source.size)
    if key not in done:
        done[key] = source.precondition()
    source.detail["preconditioned"] = done[key]
    return source
