"""Units: the one parser of sizes and counts, of booleans, and the one size label.

Every --param value and every option goes through these, so `4k` means 4096 and `yes`
means true in every suite.
"""

from __future__ import annotations

import re
from typing import Callable, Iterable

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30

_SIZE = re.compile(r"\s*(\d+)\s*(?:([kKmMgG])(?:i?[bB])?|[bB])?\s*")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def parse_size(text: str) -> int:
    """A positive count or byte size: 8, 4096, 4k, 4KiB, 1M, 1MiB, 2G (binary multiples:
    k = 1024). ValueError, with what was expected, for anything else."""
    m = _SIZE.fullmatch(text)
    if not m:
        raise ValueError("expected a positive integer such as 8, 4k, 1M or 256MiB")
    value = int(m.group(1)) * {"": 1, "k": KiB, "m": MiB, "g": GiB}[(m.group(2) or "").lower()]
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def parse_bool(text: str) -> bool:
    """true/false, 1/0, yes/no, on/off (any case)."""
    t = text.strip().lower()
    if t in _TRUE:
        return True
    if t in _FALSE:
        return False
    raise ValueError("expected true or false (or 1/0, yes/no, on/off)")


def size_label(nbytes: float, iec: bool = False, exact: bool = True) -> str:
    """A size in the largest binary unit it is a whole multiple of: 512, 4K, 1M, 2G; with
    iec, 8B, 4KiB, 1MiB, 2GiB. Case ids are built from it: changing it renames cases.
    exact=False (axis labels): the largest unit it reaches, with a fraction (1.5G)."""
    for unit, scale in (("G", GiB), ("M", MiB), ("K", KiB)):
        if exact and nbytes >= scale and nbytes % scale == 0:
            return f"{int(nbytes) // scale}{unit}{'iB' if iec else ''}"
        if not exact and nbytes >= scale:
            return f"{nbytes / scale:g}{unit}{'iB' if iec else ''}"
    return f"{int(nbytes) if exact else format(nbytes, 'g')}{'B' if iec else ''}"


def choice(options: Iterable[str]) -> Callable[[str], str]:
    """A parser accepting one of `options` exactly."""
    opts = tuple(options)

    def parse(text: str) -> str:
        if text not in opts:
            raise ValueError(f"expected one of {', '.join(opts)}")
        return text

    return parse
