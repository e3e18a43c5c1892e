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

from .store import StoreContext

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

    def check(self, data, req: Request, counter: int, verify_every: int) -> None:
        key, obj_id, start, _ = req
        if obj_id is None or counter % verify_every:
            return
        from ... import _core

        usable = len(data) - len(data) % 8
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


class Client:
    name = ""

    def __init__(self, store: StoreContext, concurrency: int):
        self.store = store
        self.concurrency = concurrency

    def run(self, next_request: NextRequest, sizes: dict[str, int], runtime_s: float, verify_every: int) -> RunLog:
        raise NotImplementedError

    def detail(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        pass


# ------------------------------------------------------------------------------------
class Boto3Client(Client):
    name = "boto3"

    def __init__(self, store: StoreContext, concurrency: int):
        super().__init__(store, concurrency)
        self.client = store.boto3_client(max_pool=concurrency)

    def detail(self) -> dict[str, Any]:
        import boto3

        return {"boto3_version": boto3.__version__, "threads": self.concurrency,
                "retries": "botocore standard mode, up to 5 attempts; RetryAttempts counted"}

    def run(self, next_request, sizes, runtime_s, verify_every) -> RunLog:
        log = RunLog()
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
    name = "obstore"

    def __init__(self, store: StoreContext, concurrency: int):
        super().__init__(store, concurrency)
        self.obs_store = store.obstore_store()

    def detail(self) -> dict[str, Any]:
        import obstore

        return {"obstore_version": obstore.__version__, "tasks": self.concurrency,
                "retries": "object_store retries internally (not counted)"}

    def run(self, next_request, sizes, runtime_s, verify_every) -> RunLog:
        import obstore as obs

        log = RunLog(retries_known=False)
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

    name = "awscrt"

    def __init__(self, store: StoreContext, concurrency: int):
        super().__init__(store, concurrency)
        from awscrt import auth, io, s3

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

    def detail(self) -> dict[str, Any]:
        import awscrt

        return {"awscrt_version": getattr(awscrt, "__version__", None), "requests_in_flight": self.concurrency,
                "part_size": PART_SIZE, "throughput_target_gbps": THROUGHPUT_TARGET_GBPS, "tls": self.tls,
                "retries": "aws-c-s3 retries internally (not counted)"}

    def run(self, next_request, sizes, runtime_s, verify_every) -> RunLog:
        from awscrt.http import HttpHeaders, HttpRequest

        s3 = self._s3
        log = RunLog(retries_known=False)
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


CLIENTS: dict[str, type[Client]] = {"awscrt": AwsCrtClient, "obstore": ObstoreClient, "boto3": Boto3Client}
SCHEMES: dict[str, tuple[str, ...]] = {"awscrt": ("s3",), "obstore": ("s3", "gs", "az"), "boto3": ("s3",)}
