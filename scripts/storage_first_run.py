#!/usr/bin/env python3
"""What the first read of a freshly written test file pays, and whether the storage
suite's preconditioning pass (ReadSource.precondition) removes it.

For each trial: a new test file is created exactly as the storage suite creates it
(written, fsynced), then fio reads it alone --runs times in a row with the command the
suite gives fio (same pattern, block size, queue depth, O_DIRECT, ramp). Once without
the preconditioning pass, once with it (a new file each time). The table gives each
run's GB/s and the first run over the median of the others: a first run below the
others that the pass removes is a warm-up the two tools must not split between them.

  python scripts/storage_first_run.py --path /data --file-size 1G --runs 4 --trials 2

Read-only on everything but its own test files (removed at the end).
"""

from __future__ import annotations

import argparse
import statistics

from aibench.suites.storage import fio as fio_mod
from aibench.suites.storage.source import CreatedFile, ReadSource
from aibench.units import parse_size

CASES = (("seq", 1 << 20, 8), ("rand", 4096, 64))  # (pattern, bs, qd): the quick tier's two kinds


def fio_once(path: str, size: int, pattern: str, bs: int, qd: int, runtime_s: float, ramp_s: float) -> float:
    region = size // bs * bs
    cmd = fio_mod.fio_command(path, pattern=pattern, bs=bs, qd=qd, threads=1, direct=True, region=region,
                              runtime_s=runtime_s, ramp_s=ramp_s, engine="io_uring")
    return fio_mod.run_fio(cmd, timeout_s=runtime_s + ramp_s + 120)["bw_bytes"] / 1e9


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--path", default=".", help="directory on the filesystem to test (default: here)")
    ap.add_argument("--file-size", default="1G")
    ap.add_argument("--runs", type=int, default=4, help="fio runs in a row on each new file")
    ap.add_argument("--trials", type=int, default=2)
    ap.add_argument("--runtime-s", type=float, default=1.0)
    ap.add_argument("--ramp-s", type=float, default=0.25)
    args = ap.parse_args()
    if fio_mod.fio_binary() is None:
        print("fio is not installed")
        return 2
    size = parse_size(args.file_size) // (1 << 20) * (1 << 20)
    print(f"{'case':>5} {'precondition':>12} {'trial':>5}  runs (GB/s)                        first/median(rest)")
    for pattern, bs, qd in CASES:
        for preconditioned in (False, True):
            for trial in range(args.trials):
                made = CreatedFile(args.path, size)
                try:
                    note = ""
                    if preconditioned:
                        pass_ = ReadSource("created", made.path, size, made.file_id, {}).precondition()
                        note = f"  (pass: {pass_['gbps']} GB/s)"
                    runs = [fio_once(made.path, size, pattern, bs, qd, args.runtime_s, args.ramp_s)
                            for _ in range(args.runs)]
                finally:
                    made.close()
                ratio = runs[0] / statistics.median(runs[1:])
                print(f"{pattern:>5} {'yes' if preconditioned else 'no':>12} {trial:>5}  "
                      f"{' '.join(f'{r:7.3f}' for r in runs):34} {ratio:.3f}{note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
