"""The hang watchdog of an MPI run: a rank that stops answering (stopped, crashed without
the launcher noticing, its link down) must not hang every other rank forever.

Every rank counts its progress (`progress()`: the interconnect suite calls it at each stage
and around each timed loop, which a healthy rank finishes within its time budget) and says
where it is (`where()`: the case and impl). A thread on each rank sends that to rank 0 as
a UDP heartbeat twice a second, over a channel of its own, so that it goes on while the
rank's main thread waits inside MPI. Rank 0 watches: when ranks are inside a collective
section and none has progressed for `timeout_s`, it names the ranks that did not arrive
(no heartbeat for a while: stopped, or their host unreachable; or behind the others'
count), calls `on_timeout` (which closes the run document with every finished case) and
aborts the job with EXIT_COLLECTIVE_TIMEOUT; MPI_Abort makes the launcher (hydra, srun)
kill every rank on every host, stopped ones included.

If rank 0 is the one that stopped, nobody can write the document: the others abort on
their own after twice the timeout (the document on disk keeps every finished case, marked
`running`; a self-launching parent marks it `failed`).

The listener authenticates before it parses: rank 0 broadcasts a random per-run key over
MPI (never sent in a datagram), and a heartbeat is a fixed-size binary record (rank,
sequence number, progress count, where) followed by its keyed BLAKE2b MAC. Anything else
that reaches the port (another size, a bad MAC, a replayed sequence number, JSON, random
bytes) is dropped and counted, and the count is named in the verdict; the listener never
dies on input. Ranks that cannot reach rank 0's port (a firewall) are listed as
unwatched, and a hang is then named from the others' side only.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import socket
import struct
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

EXIT_COLLECTIVE_TIMEOUT = 3  # documented in README.md (exit codes)
DEFAULT_TIMEOUT_S = 300.0
BEAT_INTERVAL_S = 0.5

# One heartbeat: magic, rank, sequence number (a replay is dropped), progress count, where
# (UTF-8, NUL-padded, cut to fit), then the keyed MAC of all that. Every datagram of
# another size is dropped before anything in it is read.
_WHERE_BYTES = 160
_BEAT = struct.Struct(f"!4sIQQ{_WHERE_BYTES}s")
_MAGIC = b"AIHB"
_MAC_SIZE = 32
DATAGRAM_SIZE = _BEAT.size + _MAC_SIZE
KEY_SIZE = 32


def _mac(key: bytes, payload: bytes) -> bytes:
    return hashlib.blake2b(payload, key=key, digest_size=_MAC_SIZE).digest()


def encode_beat(key: bytes, rank: int, seq: int, count: int, where: str | None) -> bytes:
    """The datagram of one heartbeat (where cut to 160 bytes of whole characters)."""
    text = (where or "").encode()[:_WHERE_BYTES].decode(errors="ignore").encode()
    payload = _BEAT.pack(_MAGIC, rank, seq, count & (2**64 - 1), text)
    return payload + _mac(key, payload)


@dataclass
class RankState:
    count: int = 0
    where: str | None = None
    heard_at: float | None = None  # rank 0's monotonic clock at the last heartbeat
    seq: int = -1  # the sequence number of that heartbeat: an older or equal one is a replay


@dataclass
class Watchdog:
    rank: int
    size: int
    hosts: list[str]
    timeout_s: float
    key: bytes  # the per-run MAC key rank 0 broadcasts over MPI
    on_timeout: Callable[[str], None] | None = None
    count: int = 0
    section_label: str | None = None
    detail: str | None = None
    ranks: list[RankState] = field(default_factory=list)
    fired: bool = False
    dropped: int = 0  # datagrams on rank 0's port that were not a valid, fresh heartbeat
    sent: int = 0  # this rank's heartbeat sequence number
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ---- what the run tells it --------------------------------------------------------------------
    def where_now(self) -> str | None:
        if self.section_label is None:
            return None
        return self.section_label + (f" [{self.detail}]" if self.detail else "")

    def beat(self) -> bytes:
        self.sent += 1
        return encode_beat(self.key, self.rank, self.sent, self.count, self.where_now())

    # ---- rank 0's side ----------------------------------------------------------------------------
    def receive(self, data: bytes, now: float) -> bool:
        """Take one datagram: a heartbeat of this run (right size, valid MAC, a rank of the
        job, newer than the last of that rank) is recorded; anything else is counted as
        dropped. Nothing in a datagram is read before its MAC is checked."""
        if len(data) != DATAGRAM_SIZE or not hmac.compare_digest(
                _mac(self.key, data[:_BEAT.size]), data[_BEAT.size:]):
            return self._drop()
        magic, r, seq, c, text = _BEAT.unpack(data[:_BEAT.size])
        try:
            w = text.rstrip(b"\0").decode() or None
        except UnicodeDecodeError:
            return self._drop()
        with self._lock:
            fresh = magic == _MAGIC and 0 < r < self.size and seq > self.ranks[r].seq  # else a replay
            if fresh:
                self.ranks[r] = RankState(count=c, where=w, heard_at=now, seq=seq)
        return fresh or self._drop()

    def _drop(self) -> bool:
        with self._lock:
            self.dropped += 1
        return False

    def verdict(self, now: float, stalled_s: float) -> str | None:
        """The message naming who did not arrive once ranks have been inside a collective
        section with no progress for timeout_s (stalled_s: how long that has been), else None."""
        if stalled_s < self.timeout_s:
            return None
        with self._lock:
            states = list(self.ranks)
        states[0] = RankState(self.count, self.where_now(), now)
        stale_after = max(4 * BEAT_INTERVAL_S, 2.0)
        watched = [r for r, s in enumerate(states) if s.heard_at is not None]
        silent = [r for r in watched if now - states[r].heard_at > stale_after]
        live = [r for r in watched if r not in silent]
        top = max((states[r].count for r in live), default=0)
        behind = [r for r in live if states[r].count < top]
        missing = sorted(set(silent) | set(behind))
        where = next((states[r].where for r in live if states[r].where), None) or "a collective"

        def named(ranks: list[int]) -> str:
            return ", ".join(f"{r} ({self.hosts[r]})" for r in ranks)

        parts = [f"collective timeout: no rank progressed for {stalled_s:.0f} s in {where}"]
        if silent:
            parts.append(f"rank(s) {named(silent)} stopped answering (no heartbeat for "
                         f"{min(now - states[r].heard_at for r in silent):.0f} s)")
        if behind:
            parts.append(f"rank(s) {named(behind)} did not arrive (behind the others)")
        if not missing:
            parts.append("every rank is waiting in the same collective (a deadlock, or a timeout shorter than "
                         "one call: --collective-timeout)")
        unwatched = [r for r in range(self.size) if r not in watched]
        if unwatched:
            parts.append(f"rank(s) {named(unwatched)} unwatched (their heartbeats never reached rank 0)")
        if self.dropped:
            parts.append(f"{self.dropped} datagram(s) on the watchdog port were not this run's heartbeats "
                         "(dropped)")
        return "; ".join(parts)

    # ---- threads ---------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()


_DOG: Watchdog | None = None


def progress() -> None:
    """This rank passed a point every rank passes (cheap: no I/O)."""
    if _DOG is not None:
        _DOG.count += 1


def where(detail: str | None) -> None:
    """What this rank is doing inside the current section (the impl, say)."""
    if _DOG is not None:
        _DOG.detail = detail
        _DOG.count += 1


@contextmanager
def section(label: str):
    """Ranks inside a section are in collectives: a stall there is a hang. A section inside
    another (mpi.agree within a case) counts its steps and keeps the outer one's label."""
    if _DOG is None:
        yield
        return
    if _DOG.section_label is not None:
        _DOG.count += 1
        try:
            yield
        finally:
            _DOG.count += 1
        return
    _DOG.section_label, _DOG.detail = label, None
    _DOG.count += 1
    try:
        yield
    finally:
        _DOG.section_label = _DOG.detail = None
        _DOG.count += 1


def _addresses() -> list[str]:
    """This host's IPv4 addresses, loopback last."""
    import psutil

    found = [a.address for addrs in psutil.net_if_addrs().values() for a in addrs
             if a.family == socket.AF_INET and not a.address.startswith("127.")]
    return found + ["127.0.0.1"]


def start(session, timeout_s: float, on_timeout: Callable[[str], None] | None = None) -> Watchdog | None:
    """Start the watchdog on every rank (collective). Nothing to watch with one rank."""
    global _DOG
    if session.size < 2 or _DOG is not None:
        return _DOG
    sock = None
    if session.rank == 0:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("0.0.0.0", 0))
        channel = (secrets.token_bytes(KEY_SIZE), sock.getsockname()[1], _addresses())
    else:
        channel = None
    # The key travels over MPI (the launch's own channel), never in a datagram.
    key, port, addresses = session.comm.bcast(channel, root=0)
    dog = Watchdog(session.rank, session.size, list(session.hosts), timeout_s, key, on_timeout,
                   ranks=[RankState() for _ in range(session.size)])
    if session.rank == 0:
        listen(dog, sock)
        threading.Thread(target=_watch_as_root, args=(dog,), daemon=True, name="aibench-watchdog").start()
    else:
        same_host = session.hosts[session.rank] == session.hosts[0]
        targets = ["127.0.0.1"] if same_host else addresses
        threading.Thread(target=_send_beats, args=(dog, [(a, port) for a in targets]), daemon=True,
                         name="aibench-watchdog-beat").start()
        threading.Thread(target=_watch_self, args=(dog,), daemon=True, name="aibench-watchdog").start()
    _DOG = dog
    return dog


def listen(dog: Watchdog, sock: socket.socket, clock: Callable[[], float] = time.monotonic) -> threading.Thread:
    """Rank 0's listener on `sock`, in a thread: records heartbeats until dog.stop()."""
    thread = threading.Thread(target=_listen, args=(dog, sock, clock), daemon=True, name="aibench-watchdog-listen")
    thread.start()
    return thread


def stop() -> None:
    global _DOG
    if _DOG is not None:
        _DOG.stop()
    _DOG = None


def _listen(dog: Watchdog, sock: socket.socket, clock: Callable[[], float]) -> None:
    sock.settimeout(BEAT_INTERVAL_S)
    while not dog._stop.is_set():
        try:
            data, _ = sock.recvfrom(DATAGRAM_SIZE + 1)  # one byte more: a longer datagram shows as too long
        except socket.timeout:
            continue
        except OSError:
            if sock.fileno() < 0:  # closed: nothing more will arrive
                return
            dog._stop.wait(0.05)  # an error of the moment (a queued ICMP error, say): go on listening
            continue
        try:
            dog.receive(data, clock())
        except Exception:  # noqa: BLE001 - no datagram may end the listener; receive() should not raise
            dog._drop()


def _send_beats(dog: Watchdog, targets: list[tuple[str, int]]) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    while not dog._stop.is_set():
        data = dog.beat()
        for target in targets:
            try:
                sock.sendto(data, target)
            except OSError:  # unreachable now; the next beat tries again
                pass
        dog._stop.wait(BEAT_INTERVAL_S)


def _stall_clock(dog: Watchdog, counts: Callable[[], tuple]) -> Callable[[float], float]:
    """A function of now: how long the progress counts have been unchanged while some rank
    was inside a section (0 outside sections)."""
    last = {"counts": None, "since": time.monotonic()}

    def stalled(now: float) -> float:
        current, inside = counts()
        if current != last["counts"] or not inside:
            last["counts"], last["since"] = current, now
            return 0.0
        return now - last["since"]
    return stalled


def _watch_as_root(dog: Watchdog) -> None:
    def counts():
        with dog._lock:
            others = tuple(s.count for s in dog.ranks[1:])
            inside = dog.section_label is not None or any(s.where for s in dog.ranks[1:])
        return (dog.count, *others), inside

    stalled = _stall_clock(dog, counts)
    while not dog._stop.wait(BEAT_INTERVAL_S):
        now = time.monotonic()
        message = dog.verdict(now, stalled(now))
        if message is not None:
            _abort(dog, message)


def _watch_self(dog: Watchdog) -> None:
    """A rank other than 0: if rank 0 has not ended a stalled run within twice the timeout
    (it may be the rank that stopped), end it from here."""
    stalled = _stall_clock(dog, lambda: ((dog.count,), dog.section_label is not None))
    while not dog._stop.wait(BEAT_INTERVAL_S):
        s = stalled(time.monotonic())
        if s >= 2 * dog.timeout_s + 5:
            _abort(dog, f"collective timeout: rank {dog.rank} ({dog.hosts[dog.rank]}) made no progress for {s:.0f} s "
                        f"in {dog.where_now()} and rank 0 did not end the run (rank 0 may be the one that stopped)")


def _abort(dog: Watchdog, message: str) -> None:
    if dog.fired:
        return
    dog.fired = True
    print(f"aibench: {message}; ending the run (exit {EXIT_COLLECTIVE_TIMEOUT})", file=sys.stderr, flush=True)
    if dog.on_timeout is not None:
        try:
            dog.on_timeout(message)
        except Exception as e:  # noqa: BLE001 - the abort below must happen whatever
            print(f"aibench: could not close the run document: {e}", file=sys.stderr, flush=True)
    from mpi4py import MPI

    MPI.COMM_WORLD.Abort(EXIT_COLLECTIVE_TIMEOUT)
    os._exit(EXIT_COLLECTIVE_TIMEOUT)  # Abort does not return; if it ever did, do not hang
