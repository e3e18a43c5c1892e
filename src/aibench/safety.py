"""The rules that keep aibench safe on shared machines (docs/security.md):

- names that become paths (the machine name) stay inside their directory;
- credentials in URLs are never stored, printed or resolved: `redact_url` before any
  URL is recorded or shown, `split_credentials` before one is used;
- aibench replaces only its own files (safe_write);
- what aibench starts dies with it (`terminate_with_parent`).
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit, urlunsplit

from .errors import UsageError

MACHINE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,99}$")
# The user info of a URL is everything up to the LAST `@` of its authority (which ends at
# the first / ? # or line end), as urlsplit reads it: `http://a:b@c@host` has user info
# `a:b@c`, and a password may hold spaces. In free text this may redact a little more
# than the URL (up to a later `@` on the same line), never less.
_URL_WITH_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#\r\n]*@)")


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


# The pid of this process, recorded just before each fork, so that a child can tell that
# its parent has already gone (os.register_at_fork runs it for subprocess's preexec_fn too).
_FORKING_PID = [0]


def _remember_forking_pid() -> None:
    _FORKING_PID[0] = os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_remember_forking_pid)


def terminate_with_parent() -> None:
    """preexec_fn of a child aibench starts (mpiexec, fio, pytest): on Linux it gets SIGTERM
    when aibench dies, even by SIGKILL, so that nothing keeps running or measuring after it.
    A parent that died between the fork and the prctl sends no signal: the child then
    ends at once."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if _FORKING_PID[0] and os.getppid() != _FORKING_PID[0]:
        os._exit(1)
