"""The rules that keep aibench safe on shared machines (docs/security.md):

- names that become paths (the machine name) stay inside their directory;
- credentials in URLs are never stored, printed or resolved: `redact_url` before any
  URL is recorded or shown, `split_credentials` before one is used;
- aibench overwrites only its own run documents (`check_overwrite`);
- what aibench starts dies with it (`terminate_with_parent`).
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .errors import UsageError

MACHINE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,99}$")
_URL_WITH_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s]*@)")


def check_machine_name(name: str) -> str:
    """A machine name is a path component of results/ and asv's tree: letters, digits
    and . _ : @ + -, at most 100, not starting with a dot (no `..`, no `/`)."""
    if not isinstance(name, str) or not MACHINE_NAME.match(name):
        shown = name if not isinstance(name, str) or len(name) <= 60 else name[:57] + "..."
        raise UsageError(f"machine name {shown!r} is not allowed: use at most 100 letters, digits and . _ : @ + - "
                         "(not starting with a dot or a symbol)")
    return name


def machine_name_of(hostname: str) -> str:
    """The default machine name: the host name, made a valid machine name if it is not."""
    name = re.sub(r"[^A-Za-z0-9._:@+-]", "-", hostname).lstrip("._:@+-")[:100]
    return name or "localhost"


def redact_url(text: str) -> str:
    """Every `scheme://user:password@` in a text becomes `scheme://***@`."""
    return _URL_WITH_USERINFO.sub(lambda m: f"{m.group('scheme')}***@", text)


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """(the URL without user info, user, password): the host name alone goes to DNS."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None, None
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)), parts.username, parts.password


def is_own_run_document(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f).get("schema") == "aibench.run"
    except (OSError, ValueError, AttributeError, UnicodeDecodeError):
        return False


def check_overwrite(path: Path, force: bool = False) -> None:
    """aibench writes a run document where --output says, but replaces only a regular file
    that is an aibench run document (with --force: any regular file), never a device,
    a directory, a link or somebody's other file."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise UsageError(f"--output {path}: {e.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise UsageError(f"--output {path} is a directory: give a file name")
    if not stat.S_ISREG(st.st_mode):
        kind = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a regular file (a device, a pipe, a socket)"
        raise UsageError(f"--output {path} exists and is {kind}: aibench will not replace it")
    if st.st_size == 0 and st.st_uid == os.getuid():
        return  # an empty file of ours (a self-launch reserves the document's name so)
    if not force and not is_own_run_document(path):
        raise UsageError(f"--output {path} exists and is not an aibench run document: aibench will not replace it "
                         "(--force to replace it anyway)")


def terminate_with_parent() -> None:
    """preexec_fn of a child aibench starts (mpiexec, fio): on Linux it gets SIGTERM when
    aibench dies, even by SIGKILL, so that nothing keeps running or measuring after it."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
