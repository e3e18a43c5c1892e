"""The measurement loop: warm-up, choice of `number`, then samples until the median is known.

A *timer* is any function ``timer(number) -> seconds`` that runs ``number`` back-to-back
repetitions of one operation and returns the elapsed time of all of them. Kernels of
aibench's own time themselves in C++ (steady clock) or with CUDA events; a library peer
(numpy's BLAS, torch) is timed the same way around its call. Python only decides how many
samples to take, and is never inside a timed region of a native kernel.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

from .results import Samples
from .stats import summarize

Timer = Callable[[int], float]


@dataclass(frozen=True)
class SamplingPolicy:
    """When to stop sampling. The rule: at least 5 samples, then until the 95% CI of
    the median is within `rel_ci` of it or the case's time budget is spent."""

    budget_s: float = 5.0
    rel_ci: float = 0.01
    min_samples: int = 5
    max_samples: int = 200
    min_sample_s: float = 0.02  # one sample lasts at least this long (sets `number`)
    warmup_s: float = 0.1  # warm-up time before the first kept sample
    # Idle time before a case starts: the previous library's threads (OpenBLAS, libgomp)
    # spin for tens of ms after their last call and would steal cores from this one.
    settle_s: float = 0.15
    # A slow peer never stalls the run: one call over max_call_s stops the impl (a skip
    # that gives the time per call); one call longer than the whole budget gets at most
    # slow_call_samples samples, marked low-confidence.
    max_call_s: float = 30.0
    slow_call_samples: int = 3


class CallTooSlow(Exception):
    """One call of the operation took longer than the policy's max_call_s."""


def measure(timer: Timer, policy: SamplingPolicy) -> Samples:
    time.sleep(policy.settle_s)
    started = time.perf_counter()
    # Warm-up: the first call pays for page faults, lazy init, clock ramp-up.
    first = max(timer(1), 1e-9)
    warmup_reps = 1
    if first > policy.max_call_s:
        raise CallTooSlow(f"one call took {first:.1f} s, over the {policy.max_call_s:g} s cap per call "
                          "(--max-call-s); not measured further")
    if first > policy.budget_s:
        # Slow: no more warm-up, one call per sample, a few samples.
        samples = [first] + [timer(1) for _ in range(policy.slow_call_samples - 1)]
        return Samples(samples_s=samples, number=1, warmup_reps=0, stopped_by="slow_call", low_confidence=True)
    while time.perf_counter() - started < policy.warmup_s:
        first = max(min(first, timer(1)), 1e-9)
        warmup_reps += 1
        if warmup_reps >= 1000:
            break
    # Enough back-to-back repetitions that one sample is far above clock resolution and
    # launch overhead; never so many that five samples overrun the budget.
    number = max(1, math.ceil(policy.min_sample_s / first))
    number = min(number, max(1, int(policy.budget_s / (policy.min_samples * first))))

    samples: list[float] = []
    sampling_started = time.perf_counter()
    stopped_by = "max_samples"
    while len(samples) < policy.max_samples:
        samples.append(timer(number) / number)
        if len(samples) < policy.min_samples:
            continue
        if summarize(samples).ci95_rel_halfwidth <= policy.rel_ci:
            stopped_by = "ci"
            break
        if time.perf_counter() - sampling_started >= policy.budget_s:
            stopped_by = "budget"
            break
    return Samples(samples_s=samples, number=number, warmup_reps=warmup_reps, stopped_by=stopped_by)
