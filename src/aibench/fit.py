"""The one guard of whether what a case will hold fits where it goes (host memory, GPU
memory, a filesystem): every check refuses or skips a case with the same reason shape."""

from __future__ import annotations

from .units import GiB, MiB


def amount(nbytes: float) -> str:
    """Bytes as a reason shows them: 16.0 GiB, 300.0 MiB."""
    return f"{nbytes / GiB:.1f} GiB" if nbytes >= GiB else f"{nbytes / MiB:.1f} MiB"


def fits(need: float, available: float, what: str, *, held: str = "", share: float = 0.8,
         of: str = "of memory available") -> str | None:
    """None when `need` bytes are at most `share` of `available`; else why not, as
    "<what> does not fit: it needs N GiB[ for <held>], more than 80% of the A GiB <of>".
    The share below 1 leaves room for the rest of the system and for what an estimate of
    a case's memory cannot see (the allocator, libraries' own buffers)."""
    if need <= share * available:
        return None
    limit = "the" if share == 1 else f"{share * 100:g}% of the"
    return f"{what} does not fit: it needs {amount(need)}{f' for {held}' if held else ''}, more than {limit} " \
           f"{amount(available)} {of}"
