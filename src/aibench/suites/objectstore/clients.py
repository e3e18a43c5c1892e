"""The three object-store clients measured, each driving `concurrency` GETs in flight
for a fixed time and logging every request (start, first byte, end, bytes, error).

  awscrt   the AWS CRT S3 client (aws-c-s3): native event loop, a GET is split into
           parallel ranged parts of 8 MiB, throughput target; S3 only.
  obstore  Rust object_store through obstore's asyncio API: S3, GCS, Azure.
  boto3    the baseline: one thread per request in flight; S3 only.

Each completed body is checked against the content aibench uploaded (one request in
`verify_every` per worker) by the C++ content check (aibench._core.io_verify).
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlparse

from ...faults import corrupts_output
from ...results import FAILED, PASSED, Samples, Validation
from ...stats import summarize
from ..base import Impl, RunContext
from .bounds import RxSampler, kernel_rx
from .store import RUN_STORE, Dataset, StoreContext, StoreError

# A case fails when more than this fraction of its requests failed.
MAX_ERROR_FRACTION = 0.01

# A request to make: (key, object id for the content check or None, range start, length or None).
Request = tuple[str, "int | None", int, "int | None"]
NextRequest = Callable[[int], Request]  # worker index -> request

PART_SIZE = 8 << 20
THROUGHPUT_TARGET_GBPS = 10.0


@dataclass
class Record:
    worker: int
    start: float
    ttfb: float | None = None
    end: float | None = None
    nbytes: int = 0
    error: str | None = None
    retries: int = 0


@dataclass
class RunLog:
    records: list[Record] = field(default_factory=list)
    verified: int = 0
    mismatches: int = 0
    first_mismatch: str | None = None
    retries_known: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)
    corrupt_next: bool = False  # tests (faults.py): the next body checked arrives with a wrong byte

    def check(self, data, req: Request, counter: int, verify_every: int) -> None:
        key, obj_id, start, _ = req
        if obj_id is None or counter % verify_every:
            return
        from ... import _core

        usable = len(data) - len(data) % 8
        if self.corrupt_next and usable and start % 8 == 0:
            with self.lock:
                corrupt, self.corrupt_next = self.corrupt_next, False
            if corrupt:
                data = bytearray(data)
                data[0] ^= 0xFF
        msg = _core.io_verify(memoryview(data)[:usable], start, obj_id) if start % 8 == 0 else None
        with self.lock:
            self.verified += 1
            if msg:
                self.mismatches += 1
                if self.first_mismatch is None:
                    self.first_mismatch = f"object {key}: {msg}"


def _expected_len(req: Request, sizes: dict[str, int]) -> int:
    key, _, start, length = req
    return length if length is not None else sizes[key] - start


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".strip()


class Client(Impl):
    """An object-store client (an impl of the objectstore suite): `run` keeps
    `concurrency` requests in flight for `runtime_s` and logs each one. The suite's
    prepare() gives it the case's `workload` before it is measured."""

    module = ""  # the Python package the client needs
    schemes: tuple[str, ...] = ("s3",)  # the stores it reads
    workload: "Workload"

    def __init__(self, params: dict[str, Any], ctx: RunContext):
        self.store: StoreContext = ctx.resource(RUN_STORE)  # the run's (the suite's prepare opens it)
        self.concurrency = params["concurrency"]
        self.log: RunLog | None = None
        self.rx: RxSampler | None = None  # the kernel's rx counters through the measured run (bounds.py)

    @classmethod
    def unavailable(cls, target) -> str | None:
        try:
            __import__(cls.module)
        except ImportError:
            return f"{cls.module} is not installed (pip install {cls.module})"
        return None

    def run(self, next_request: NextRequest, sizes: dict[str, int], runtime_s: float, verify_every: int) -> RunLog:
        raise NotImplementedError

    def new_log(self) -> RunLog:
        return RunLog(corrupt_next=corrupts_output(self.name))

    def measure(self, policy) -> Samples:
        """A short warm-up (connections, DNS, credentials) that is not measured, then the
        window, with the kernel's rx byte counters sampled through it (bounds.RxSampler:
        the bound); the samples are each request's seconds (start to last byte)."""
        w = self.workload
        self.run(w.next_request, w.dataset.sizes, min(0.2, w.runtime_s / 5), w.verify_every)
        self.rx = RxSampler().start()
        try:
            self.log = self.run(w.next_request, w.dataset.sizes, w.runtime_s, w.verify_every)
        finally:
            self.rx.stop()
        ok = [r.end - r.start for r in self.log.records if r.error is None]
        if not ok:
            raise StoreError(f"every request failed: {self.log.records[0].error}" if self.log.records
                             else "no request completed")
        return Samples(samples_s=ok[:5000], stopped_by="time", what="seconds per request (start to last byte)",
                       summary=summarize(ok))

    def check(self) -> Validation:
        """Every body checked is what aibench uploaded; at most 1% of requests failed."""
        recs = self.log.records
        errors = [r for r in recs if r.error is not None]
        if self.log.mismatches:
            return Validation(status=FAILED, reason=f"an object read back differs from what aibench uploaded: "
                                                    f"{self.log.first_mismatch}")
        if len(errors) > MAX_ERROR_FRACTION * len(recs):
            raise StoreError(f"{len(errors)} of {len(recs)} requests failed: {errors[0].error}")
        if self.workload.dataset.uploaded:
            return Validation(status=PASSED, max_rel_error=0.0, tolerance=0.0, reason=self.store.note)
        return Validation(status=PASSED, reason="none: --read-only objects are not aibench's; body lengths checked")

    def detail(self) -> dict[str, Any]:
        w, d = self.workload, self.client_detail()
        d.update({**self.store.describe(), "objects": len(w.dataset.keys),
                  "object_size": w.dataset.sizes[w.dataset.keys[0]] if not self.store.read_only else "as listed",
                  "runtime_s": w.runtime_s, "verify_every": w.verify_every})
        if self.store.note:
            d["endpoint_note"] = self.store.note
        if self.log is not None:
            errors = [r for r in self.log.records if r.error is not None]
            d.update({"requests": len(self.log.records), "errors": len(errors),
                      "first_error": errors[0].error if errors else None,
                      "verification": (f"{self.log.verified} bodies (one in {w.verify_every} per worker) compared "
                                       "with the uploaded content") if w.dataset.uploaded
                      else "none: --read-only objects are not aibench's; body lengths checked"})
            if len(errors) < len(self.log.records):
                d.update(self.window())
                rx, why_not = self.kernel_rx()
                d["kernel_rx"] = rx if rx is not None else f"no bound: {why_not}"
        return d

    def kernel_rx(self) -> tuple[dict | None, str | None]:
        """(the kernel's count of bytes received for the figure's window: bounds.kernel_rx,
        None), or (None, why there is none)."""
        if self.rx is None:
            return None, "the rx counters were not sampled"
        if self.rx.unreadable is not None:
            return None, f"the kernel's rx counters ({self.rx.path}) cannot be read: {self.rx.unreadable}"
        ok = [r for r in self.log.records if r.error is None]
        t_a, t_b, _ = window(ok)
        rx = kernel_rx(self.rx.samples, ok, t_a, t_b, self.rx.every_s)
        if rx is None:
            return None, "the rx counter samples do not cover the requests of the window"
        return rx, None

    def window(self) -> dict[str, Any]:
        """The bytes and objects read inside warp's window, each request counting for
        the part of it inside the window."""
        ok = [r for r in self.log.records if r.error is None]
        t_a, t_b, warp = window(ok)
        nbytes = objs = 0.0
        for r in ok:
            frac = max(0.0, min(r.end, t_b) - max(r.start, t_a)) / max(r.end - r.start, 1e-9)
            nbytes += r.nbytes * frac
            objs += frac
        return {"window_s": t_b - t_a, "window": "warp (every worker busy)" if warp else "whole run (too few requests)",
                "window_bytes": nbytes, "window_objects": objs, "gib_per_s": nbytes / (t_b - t_a) / 2**30}

    def client_detail(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        pass


def window(records) -> tuple[float, float, bool]:
    """warp's analysis window: from the moment every worker has finished one request
    to the moment the first worker finished its last one. (start, end, warp_window)."""
    first: dict[int, float] = {}
    last: dict[int, float] = {}
    for r in records:
        first[r.worker] = min(first.get(r.worker, r.end), r.end)
        last[r.worker] = max(last.get(r.worker, r.end), r.end)
    t_a, t_b = max(first.values()), min(last.values())
    whole_a = min(r.start for r in records)
    whole_b = max(r.end for r in records)
    if t_b - t_a >= 0.25 * (whole_b - whole_a) and t_b > t_a:
        return t_a, t_b, True
    return whole_a, whole_b, False


@dataclass
class Workload:
    """What one case reads: the objects, how requests are drawn, for how long."""

    dataset: Dataset
    next_request: NextRequest
    runtime_s: float
    verify_every: int


# ------------------------------------------------------------------------------------
class Boto3Client(Client):
    name = module = "boto3"
    description = "boto3 get_object, one thread per request in flight"

    def __init__(self, params: dict[str, Any], ctx: RunContext):
        super().__init__(params, ctx)
        self.client = self.store.boto3_client(max_pool=self.concurrency)

    def client_detail(self) -> dict[str, Any]:
        import boto3

        return {"boto3_version": boto3.__version__, "threads": self.concurrency,
                "retries": "botocore standard mode, up to 5 attempts; RetryAttempts counted"}

    def run(self, next_request, sizes, runtime_s, verify_every) -> RunLog:
        log = self.new_log()
        stop_at = time.perf_counter() + runtime_s

        def worker(w: int) -> None:
            n = 0
            while time.perf_counter() < stop_at:
                req = next_request(w)
                key, _, start, length = req
                rec = Record(w, time.perf_counter())
                try:
                    kw = {"Range": f"bytes={start}-{start + length - 1}"} if length is not None else {}
                    resp = self.client.get_object(Bucket=self.store.bucket, Key=key, **kw)
                    rec.ttfb = time.perf_counter()
                    data = resp["Body"].read()
                    rec.end = time.perf_counter()
                    rec.retries = resp.get("ResponseMetadata", {}).get("RetryAttempts", 0)
                    rec.nbytes = len(data)
                    if rec.nbytes != _expected_len(req, sizes):
                        rec.error = f"short body: {rec.nbytes} of {_expected_len(req, sizes)} bytes"
                    else:
                        log.check(data, req, n, verify_every)
                except Exception as e:  # noqa: BLE001 - recorded, counted as an error
                    rec.end = time.perf_counter()
                    rec.error = _one_line(e)
                n += 1
                with log.lock:
                    log.records.append(rec)

        threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(self.concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return log


# ------------------------------------------------------------------------------------
class ObstoreClient(Client):
    name = module = "obstore"
    description = "obstore (Rust object_store), asyncio tasks"
    schemes = ("s3", "gs", "az")

    def __init__(self, params: dict[str, Any], ctx: RunContext):
        super().__init__(params, ctx)
        self.obs_store = self.store.obstore_store()

    def client_detail(self) -> dict[str, Any]:
        import obstore

        return {"obstore_version": obstore.__version__, "tasks": self.concurrency,
                "retries": "object_store retries internally (not counted)"}

    def run(self, next_request, sizes, runtime_s, verify_every) -> RunLog:
        import obstore as obs

        log = self.new_log()
        log.retries_known = False
        store = self.obs_store

        async def worker(w: int) -> None:
            n = 0
            while time.perf_counter() < stop_at:
                req = next_request(w)
                key, _, start, length = req
                rec = Record(w, time.perf_counter())
                try:
                    opts = {"range": (start, start + length)} if length is not None else None
                    res = await obs.get_async(store, key, options=opts)
                    rec.ttfb = time.perf_counter()
                    data = await res.bytes_async()
                    rec.end = time.perf_counter()
                    rec.nbytes = len(data)
                    if rec.nbytes != _expected_len(req, sizes):
                        rec.error = f"short body: {rec.nbytes} of {_expected_len(req, sizes)} bytes"
                    else:
                        log.check(data, req, n, verify_every)
                except Exception as e:  # noqa: BLE001
                    rec.end = time.perf_counter()
                    rec.error = _one_line(e)
                n += 1
                log.records.append(rec)

        async def main() -> None:
            await asyncio.gather(*(worker(w) for w in range(self.concurrency)))

        stop_at = time.perf_counter() + runtime_s
        asyncio.run(main())
        return log


# ------------------------------------------------------------------------------------
class AwsCrtClient(Client):
    """awscrt's S3Client. Against a custom endpoint: the Host header carries host:port,
    paths are path-style /bucket/key, TLS off for http; one S3Client per endpoint."""

    name = module = "awscrt"
    description = "AWS CRT S3 client: parallel ranged parts (8 MiB), throughput target"

    def __init__(self, params: dict[str, Any], ctx: RunContext):
        super().__init__(params, ctx)
        from awscrt import auth, io, s3

        store = self.store
        self._s3 = s3
        creds = store.credentials()
        self.elg = io.EventLoopGroup()
        self.resolver = io.DefaultHostResolver(self.elg)
        self.bootstrap = io.ClientBootstrap(self.elg, self.resolver)
        provider = auth.AwsCredentialsProvider.new_static(creds["access_key_id"], creds["secret_access_key"],
                                                          creds.get("token"))
        if store.endpoint_url:
            e = urlparse(store.endpoint_url)
            self.host = e.netloc
            self.tls = e.scheme == "https"
            self.path_prefix = f"/{store.bucket}/"
        else:
            self.host = f"{store.bucket}.s3.{store.region}.amazonaws.com"
            self.tls = True
            self.path_prefix = "/"
        self.client = s3.S3Client(
            bootstrap=self.bootstrap, region=store.region, credential_provider=provider,
            tls_mode=s3.S3RequestTlsMode.ENABLED if self.tls else s3.S3RequestTlsMode.DISABLED,
            part_size=PART_SIZE, throughput_target_gbps=THROUGHPUT_TARGET_GBPS)

    def client_detail(self) -> dict[str, Any]:
        import awscrt

        return {"awscrt_version": getattr(awscrt, "__version__", None), "requests_in_flight": self.concurrency,
                "part_size": PART_SIZE, "throughput_target_gbps": THROUGHPUT_TARGET_GBPS, "tls": self.tls,
                "retries": "aws-c-s3 retries internally (not counted)"}

    def run(self, next_request, sizes, runtime_s, verify_every) -> RunLog:
        from awscrt.http import HttpHeaders, HttpRequest

        s3 = self._s3
        log = self.new_log()
        log.retries_known = False
        free: queue.Queue[int] = queue.Queue()
        for w in range(self.concurrency):
            free.put(w)
        counters = [0] * self.concurrency
        inflight: dict[int, Any] = {}

        def issue(w: int) -> None:
            req = next_request(w)
            key, _, start, length = req
            want = _expected_len(req, sizes)
            buf = bytearray(want)
            rec = Record(w, time.perf_counter())
            headers = HttpHeaders([("Host", self.host)])
            if length is not None:
                headers.add("Range", f"bytes={start}-{start + length - 1}")
            http_req = HttpRequest("GET", self.path_prefix + key, headers)
            got = [0]

            def on_headers(status_code, headers, **kwargs):
                if rec.ttfb is None:
                    rec.ttfb = time.perf_counter()

            def on_body(chunk, offset, **kwargs):
                pos = offset - start  # on_body offsets are absolute object offsets
                if 0 <= pos and pos + len(chunk) <= want:
                    buf[pos:pos + len(chunk)] = chunk
                got[0] += len(chunk)

            def on_done(error=None, status_code=None, error_body=None, **kwargs):
                rec.end = time.perf_counter()
                rec.nbytes = got[0]
                if error is not None:
                    body = (error_body or b"")[:160].decode(errors="replace").replace("\n", " ")
                    rec.error = f"{getattr(error, 'name', type(error).__name__)} (HTTP {status_code}) {body}".strip()
                elif got[0] != want:
                    rec.error = f"short body: {got[0]} of {want} bytes"
                else:
                    log.check(buf, req, counters[w], verify_every)
                counters[w] += 1
                with log.lock:
                    log.records.append(rec)
                    inflight.pop(w, None)
                free.put(w)

            meta = self.client.make_request(type=s3.S3RequestType.GET_OBJECT, request=http_req,
                                            on_headers=on_headers, on_body=on_body, on_done=on_done)
            with log.lock:
                inflight[w] = meta

        stop_at = time.perf_counter() + runtime_s
        while True:
            left = stop_at - time.perf_counter()
            if left <= 0:
                break
            try:
                w = free.get(timeout=left)
            except queue.Empty:
                break
            if time.perf_counter() >= stop_at:
                free.put(w)
                break
            issue(w)
        # Drain: every slot back means every request finished.
        deadline = time.perf_counter() + 300
        for _ in range(self.concurrency):
            free.get(timeout=max(1.0, deadline - time.perf_counter()))
        return log

    def close(self) -> None:
        self.client = None


IMPLS = (AwsCrtClient, ObstoreClient, Boto3Client)
