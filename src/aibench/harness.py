"""The measurement loop: warm-up, choice of `number`, then samples until the median is known.

A *timer* is any function ``timer(number) -> seconds`` that runs ``number`` back-to-back
repetitions of one operation and returns the elapsed time of all of them. Kernels of
aibench's own time themselves in C++ (steady clock) or with CUDA events; a library peer
without a loop API (numpy's BLAS, torch on CPU) is timed around a Python loop whose cost
per call is measured and recorded (suites/kernel.py). Python only decides how many
samples to take, and is never inside a timed region of a native kernel. The impls of one
case are measured together in interleaved windows (measure_interleaved).
"""

from __future__ import annotations

import math
import string
import time
from dataclasses import dataclass, field
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
    """The samples of one operation measured alone."""
    result = measure_interleaved({"": timer}, policy)[""]
    if isinstance(result, Exception):
        raise result
    return result


def interleaved_order(names: list[str]) -> list[str]:
    """One round of windows: the impls forward, then backward (A B B A; A B C C B A), so
    that a drift which is linear in time weighs on every impl alike. One impl: a round is
    one window."""
    return list(names) if len(names) == 1 else [*names, *reversed(names)]


@dataclass
class _Sampled:
    """One impl's state in an interleaved measurement."""

    timer: Timer
    number: int  # operations per sample
    warmup_reps: int
    per_window: int  # samples per window
    samples: list[float] = field(default_factory=list)
    done: bool = False  # enough samples and a tight enough CI (or max_samples)


def measure_interleaved(timers: dict[str, Timer], policy: SamplingPolicy) -> dict[str, Samples | Exception]:
    """The samples of several impls of one case, taken in interleaved windows.

    Each impl is warmed up and its `number` chosen first (a call too slow for the budget
    is sampled then, alone, and leaves the rotation). Then rounds of windows in the order
    of interleaved_order (A B B A), each window `per_window` samples of one impl, after
    `settle_s` of idle time and one untimed call whenever the impl changes (the previous
    library's threads still spin; the caches hold the other impl's data). Rounds go on
    until every impl has its min_samples and a CI of the median within rel_ci, or the
    budget (budget_s per impl) is spent: every impl stays in the rotation until then, so
    its windows stay paired with the others'. An impl's samples are its windows in order.

    Each result maps to its Samples, or to the exception its timer raised (that impl
    alone leaves the rotation). With several impls, each Samples.extra["interleave"]
    says how: {impls, order (the windows as run, one letter per impl of `impls`),
    window_samples}, or {impls, alone: why} for an impl sampled alone."""
    out: dict[str, Samples | Exception] = {}
    live: dict[str, _Sampled] = {}
    for name, timer in timers.items():
        time.sleep(policy.settle_s)
        try:
            warmed = _warm_up(timer, policy)
        except Exception as e:  # noqa: BLE001 - this impl's failure (or CallTooSlow) only
            out[name] = e
            continue
        if isinstance(warmed, Samples):  # too slow for windows: sampled already, alone
            out[name] = warmed
            if len(timers) > 1:
                warmed.extra["interleave"] = {"impls": list(timers), "alone": "one call is longer than the budget"}
            continue
        if len(timers) == 1:
            warmed.per_window = 1  # alone: the stopping rule is checked after every sample
        live[name] = warmed

    letters = {name: string.ascii_uppercase[i] for i, name in enumerate(timers)}
    order: list[str] = []
    previous: str | None = None
    budget_s = policy.budget_s * max(1, len(live))
    started = time.perf_counter()
    stopped_by = "max_samples"
    while live:
        for name in (n for n in interleaved_order(list(live)) if n in live):
            s = live[name]
            try:
                if name != previous and len(timers) > 1:
                    time.sleep(policy.settle_s)
                    if s.number > 1:  # a short call: wake the library's threads first
                        s.timer(1)
                for _ in range(s.per_window):
                    s.samples.append(s.timer(s.number) / s.number)
            except Exception as e:  # noqa: BLE001
                out[name] = e
                del live[name]
                continue
            previous = name
            order.append(letters[name])
            # The interval the result will carry (windows count once there are enough).
            window = s.per_window if len(timers) > 1 else 1
            s.done = len(s.samples) >= policy.max_samples or (
                len(s.samples) >= policy.min_samples
                and summarize(s.samples, window).ci95_rel_halfwidth <= policy.rel_ci)
        if not live:
            break
        if all(s.done for s in live.values()):
            stopped_by = "ci"
            break
        enough = all(len(s.samples) >= policy.min_samples for s in live.values())
        if enough and time.perf_counter() - started >= budget_s:
            stopped_by = "budget"
            break
    for name, s in live.items():
        how = stopped_by
        if len(s.samples) >= policy.max_samples:
            how = "max_samples"
        elif s.done:
            how = "ci"
        extra = {"interleave": {"impls": list(timers), "order": "".join(order), "window_samples": s.per_window}
                 } if len(timers) > 1 else {}
        out[name] = Samples(samples_s=s.samples, number=s.number, warmup_reps=s.warmup_reps, stopped_by=how,
                            extra=extra)  # the interval then counts windows (stats.summarize)
    return {name: out[name] for name in timers}


def _warm_up(timer: Timer, policy: SamplingPolicy) -> _Sampled | Samples:
    """Warm-up and the choice of `number`, or the finished Samples of a call longer than
    the whole budget (a few samples, low confidence)."""
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
    # Windows of about half of min_samples (a round A B B A gives each impl min_samples),
    # fewer when that many samples would spend more than a quarter of the budget.
    sample_s = number * first
    per_window = max(1, min(math.ceil(policy.min_samples / 2), int(policy.budget_s / (4 * sample_s))))
    return _Sampled(timer=timer, number=number, warmup_reps=warmup_reps, per_window=per_window)
