"""The signals that stop a run: SIGINT (Ctrl-C), SIGTERM (a timeout, Slurm, kill) and
SIGHUP (a closed terminal). One `StopSignals` per run (session.py) holds what came.

Alone, a run stops like Ctrl-C on any of them (`raise_on_signals`): KeyboardInterrupt
between two statements, so that the case's cleanup runs (test files, shared memory) and
the document is saved as `interrupted`. A rank of an MPI run only records them
(`record_signals`) and stops where all ranks agree (mpi.Session.agree_to_stop): raising
wherever the rank happens to be would leave its peers in a collective.
"""

from __future__ import annotations

import signal

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopSignals:
    def __init__(self) -> None:
        self.received: list[int] = []  # by this process, in order
        self.agreed: int | None = None  # the one the ranks of an MPI run agreed to stop on
        self._previous: dict[int, object] = {}

    def raise_on_signals(self) -> None:
        def handler(signum, frame):
            self.received.append(signum)
            raise KeyboardInterrupt

        self._install(handler)

    def record_signals(self) -> None:
        # SIGHUP too: UCX takes it as its debug signal (a screenful of `UCX DEBUG` lines).
        self._install(lambda signum, frame: self.received.append(signum))

    def _install(self, handler) -> None:
        for sig in STOP_SIGNALS:
            previous = signal.signal(sig, handler)
            self._previous.setdefault(sig, previous)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    @property
    def requested(self) -> bool:
        return bool(self.received)

    def last(self) -> int | None:
        """The signal that stopped the run: the one the ranks agreed on, else this process's last."""
        return self.agreed if self.agreed is not None else (self.received[-1] if self.received else None)

    def stopped_by(self) -> int:
        """The signal an interrupted run is recorded as stopped by (Ctrl-C when none came:
        a KeyboardInterrupt raised by a test or a suite)."""
        return self.last() or signal.SIGINT

    def ended_by(self) -> str:
        return f"signal {signal.Signals(self.stopped_by()).name}"
