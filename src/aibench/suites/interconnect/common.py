"""What every all-reduce implementation shares: element formats, message sizes, the
seeded exact-integer inputs and the count of wrong elements after a checked run."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

DTYPES = ("fp32", "fp64", "bf16", "fp16")
MIN_SIZE = 8
KiB, MiB, GiB = 1024, 1024**2, 1024**3


@dataclass(frozen=True)
class Format:
    name: str
    itemsize: int
    storage: np.dtype  # how the host holds it (bf16: raw bits in uint16)
    exact_int: int  # every integer of magnitude <= exact_int is representable


FORMATS = {
    "fp32": Format("fp32", 4, np.dtype(np.float32), 2**24),
    "fp64": Format("fp64", 8, np.dtype(np.float64), 2**53),
    "bf16": Format("bf16", 2, np.dtype(np.uint16), 2**8),
    "fp16": Format("fp16", 2, np.dtype(np.float16), 2**11),
}
_NAN_BITS16 = {"bf16": 0x7FC0, "fp16": 0x7E00}


def parse_size(text: str) -> int:
    """Bytes: 8, 4k, 4K, 4KiB, 1M, 1MiB, 1G (binary multiples: k = 1024)."""
    m = re.fullmatch(r"\s*(\d+)\s*(?:([kKmMgG])(?:i?[bB])?|[bB])?\s*", text)
    if not m:
        raise ValueError("expected a size in bytes such as 8, 4k, 1M or 256MiB")
    value = int(m.group(1)) * {None: 1, "k": KiB, "m": MiB, "g": GiB}[(m.group(2) or "").lower() or None]
    if value < 1:
        raise ValueError("must be at least 1 byte")
    return value


def parse_bool(text: str) -> bool:
    t = text.strip().lower()
    if t in ("true", "1", "yes", "on"):
        return True
    if t in ("false", "0", "no", "off"):
        return False
    raise ValueError("expected true or false")


def fmt_size(nbytes: int) -> str:
    for unit, scale in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if nbytes >= scale and nbytes % scale == 0:
            return f"{nbytes // scale}{unit}"
    return f"{nbytes}B"


def sweep_sizes(max_bytes: int, min_bytes: int = MIN_SIZE) -> list[int]:
    """x2 from min_bytes to max_bytes, as nccl-tests -b 8 -e MAX -f 2."""
    sizes, s = [], min_bytes
    while s <= max_bytes:
        sizes.append(s)
        s *= 2
    return sizes


def encode(values: np.ndarray, dtype: str) -> np.ndarray:
    """Integer-valued float64 -> storage of `dtype` (exact for the small integers used)."""
    f = FORMATS[dtype]
    if dtype == "bf16":
        return (values.astype(np.float32).view(np.uint32) >> np.uint32(16)).astype(np.uint16)
    return values.astype(f.storage)


def decode(stored: np.ndarray, dtype: str) -> np.ndarray:
    """Storage of `dtype` -> float64."""
    if dtype == "bf16":
        return (stored.astype(np.uint32) << np.uint32(16)).view(np.float32).astype(np.float64)
    return stored.astype(np.float64)


def poison(arr: np.ndarray, dtype: str) -> None:
    """Fill with NaN: an element that an all-reduce never writes cannot pass the check."""
    if dtype in _NAN_BITS16:
        arr.view(np.uint16).fill(_NAN_BITS16[dtype])
    else:
        arr.fill(np.nan)


class ExactInputs:
    """Inputs x[rank, i] = ((i + rank) mod K) - V: small integers seeded by (rank, index),
    so that the sum over ranks is exact in every format and in every order of summation.

    V is chosen so that any partial sum (at most nranks * V in magnitude) is exactly
    representable: V = 4 for fp32/fp64 and for bf16 up to 64 ranks (bf16 holds integers up
    to 256 exactly), smaller for more ranks. The expected sum has a closed form, so the
    check never holds a second full-size array.
    """

    def __init__(self, dtype: str, nranks: int):
        self.dtype, self.nranks = dtype, nranks
        self.amp = max(1, min(4, FORMATS[dtype].exact_int // max(1, nranks)))
        self.k = 2 * self.amp + 1
        k = self.k
        # sum over ranks r < p of ((t + r) mod K), for t = i mod K: full cycles plus a partial run.
        q, m = divmod(nranks, k)
        prefix = np.concatenate([[0], np.cumsum(np.arange(2 * k) % k)])
        t = np.arange(k)
        self.expected_by_t = (q * (k * (k - 1) // 2) + prefix[t + m] - prefix[t] - nranks * self.amp).astype(np.float64)

        # Both patterns repeat every K elements: blocks of a multiple of K are copied and
        # compared block by block (memory speed, no full-size temporaries).
        self.block = k * ceil_div(1 << 18, k)
        self._expected_block = encode(self.expected_by_t[np.arange(self.block) % k], dtype)

    def values(self, rank: int, start: int, stop: int) -> np.ndarray:
        return ((np.arange(start, stop, dtype=np.int64) + rank) % self.k - self.amp).astype(np.float64)

    def fill(self, out: np.ndarray, rank: int) -> None:
        block = encode(self.values(rank, 0, min(self.block, out.size)), self.dtype)
        for start in range(0, out.size, self.block):
            stop = min(out.size, start + self.block)
            out[start:stop] = block[: stop - start]

    def count_wrong(self, result: np.ndarray) -> tuple[int, int | None]:
        """(number of elements that differ from the exact sum, index of the first)."""
        wrong, first = 0, None
        want_block = self._expected_block
        for start in range(0, result.size, self.block):
            stop = min(result.size, start + self.block)
            got, want = result[start:stop], want_block[: stop - start]
            if self.dtype == "bf16":  # bit patterns: +0 and -0 are both a right zero
                bad = (got != want) & ~(((got & 0x7FFF) == 0) & ((want & 0x7FFF) == 0))
            else:
                bad = got != want  # NaN != anything
            n = int(np.count_nonzero(bad))
            if n and first is None:
                first = start + int(np.argmax(bad))
            wrong += n
        return wrong, first


def busbw_factor(nranks: int) -> float:
    """All-reduce bus bandwidth factor 2(n-1)/n (nccl-tests)."""
    return 2.0 * (nranks - 1) / nranks if nranks > 0 else 0.0


def chunk_bounds(count: int, parts: int) -> list[tuple[int, int]]:
    """Split `count` elements into `parts` contiguous chunks whose sizes differ by at most
    one (the first count % parts chunks get the extra element)."""
    base, extra = divmod(count, parts)
    bounds, start = [], 0
    for i in range(parts):
        n = base + (1 if i < extra else 0)
        bounds.append((start, start + n))
        start += n
    return bounds


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def log2_floor(n: int) -> int:
    return int(math.floor(math.log2(n))) if n > 0 else 0
