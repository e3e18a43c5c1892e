"""Objectstore suite: GET throughput, objects/s and time to first byte from an object
store, with three clients (impls): `awscrt`, `obstore`, `boto3`.

Workloads (param `workload`): `whole` large objects read entirely (throughput), `ranged`
GETs of `size` bytes at random offsets of 16 MiB objects (4x the range if larger), `small` objects (objects/s).
`concurrency` requests are kept in flight for the tier's time budget; as warp does, the
figures come from the window where every worker is busy (from the moment each has
finished one request until the first one stops). aibench uploads its own objects under
a unique prefix, checks their content on read, and deletes them afterwards (unless
--keep); --read-only reads an existing prefix and writes nothing. With no --url, it
starts a local S3 endpoint (moto) whose throughput means nothing as a storage figure.
"""

from __future__ import annotations

import os
import random
import threading
import time
import weakref
from typing import Any, Callable

import numpy as np

from ...errors import SkipCase, UsageError
from ...results import FAILED, PASSED, SKIPPED, CaseResult, Metric, Validation, now_iso
from ...stats import summarize
from ...targets import Target
from ..base import TIERS, AsvSpec, AsvTrack, Impl, Param, RunContext, Suite, choice, positive_int
from ..storage import size_label
from .clients import CLIENTS, SCHEMES, Client, RunLog
from .local_s3 import EndpointUnavailable
from .options import validate_options
from .store import Dataset, StoreContext, StoreError

WORKLOADS = ("whole", "ranged", "small")
RANGED_OBJECT_SIZE = 16 << 20
MAX_ERROR_FRACTION = 0.01


def _case(workload: str, size: int, concurrency: int) -> dict[str, Any]:
    return {"workload": workload, "size": size, "concurrency": concurrency}


def _unavailable(module: str) -> Callable[[Target], str | None]:
    def reason(target: Target) -> str | None:
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed (pip install {module})"
        return None
    return reason


def dataset_shape(workload: str, size: int) -> tuple[str, int, int]:
    """(label, object size, object count) of the objects a case reads."""
    if workload == "ranged":
        obj = max(RANGED_OBJECT_SIZE, 4 * size)
        return f"ranged-{size_label(obj)}", obj, 4
    if workload == "small" or size <= (1 << 20):
        return f"{workload}-{size_label(size)}", size, 256 if size <= (64 << 10) else 64
    return f"{workload}-{size_label(size)}", size, max(4, min(16, (256 << 20) // size))


class ObjectStoreSuite(Suite):
    name = "objectstore"
    description = "Object-store GETs (S3, GCS, Azure): GB/s, objects/s, TTFB; awscrt vs obstore vs boto3"
    params = {
        "workload": Param("workload", choice(WORKLOADS), "whole (large objects), ranged (random ranges), small (objects/s)"),
        "size": Param("size", positive_int, "object size (whole, small) or range length (ranged)"),
        "concurrency": Param("concurrency", positive_int, "requests in flight"),
    }
    target_kinds = ("cpu",)
    comparisons = (("awscrt", "boto3"), ("obstore", "boto3"))
    # Tests set this to tamper with the objects right after they are uploaded.
    after_upload: Callable[[StoreContext, Dataset], None] | None = None

    def __init__(self):
        self.options: dict[str, Any] = {}
        self._store: StoreContext | None = None
        self._store_error: str | None = None  # why the store failed (every later case fails with it)
        self._store_skip: str | None = None  # why the store cannot exist here (every case skips with it)
        self._datasets: dict[str, Dataset] = {}
        self._lock = threading.Lock()
        self._finalizer = None

    def impls(self) -> list[Impl]:
        return [
            Impl("awscrt", "AWS CRT S3 client: parallel ranged parts (8 MiB), throughput target", ("cpu",),
                 _unavailable("awscrt")),
            Impl("obstore", "obstore (Rust object_store), asyncio tasks", ("cpu",), _unavailable("obstore")),
            Impl("boto3", "boto3 get_object, one thread per request in flight", ("cpu",), _unavailable("boto3")),
        ]

    def default_cases(self, tier: str, target: Target) -> list[dict[str, Any]]:
        if tier == "quick":
            return [_case("whole", 16 << 20, 16), _case("ranged", 1 << 20, 16), _case("small", 4 << 10, 16)]
        conc = (1, 16, 64)
        whole = [1 << 20, 16 << 20, 256 << 20] if tier == "standard" else [64 << 10, 1 << 20, 16 << 20, 64 << 20, 256 << 20]
        small = [4 << 10, 64 << 10] if tier == "standard" else [4 << 10, 16 << 10, 64 << 10]
        return ([_case("whole", s, c) for s in whole for c in conc]
                + [_case("ranged", s, c) for s in (64 << 10, 1 << 20, 8 << 20) for c in conc]
                + [_case("small", s, c) for s in small for c in conc])

    def check_case(self, params: dict[str, Any], target: Target) -> None:
        if params["concurrency"] > 1024:
            raise UsageError(f"objectstore concurrency {params['concurrency']} is too high (at most 1024)")
        if params["size"] > (4 << 30):
            raise UsageError(f"objectstore size {size_label(params['size'])} is too large (at most 4G)")
        if params["workload"] == "small" and params["size"] > (1 << 20):
            raise UsageError("objectstore small objects are at most 1M (use workload=whole for larger ones)")

    def case_id(self, params: dict[str, Any]) -> str:
        return f"{params['workload']}-{size_label(params['size'])}-c{params['concurrency']}"

    def asv_spec(self) -> AsvSpec:
        cases = tuple(dict.fromkeys(self.case_id(c) for t in TIERS for c in self.default_cases(t, Target("cpu"))))
        return AsvSpec(
            class_name="ObjectStore",
            param_names=("case", "impl", "target"),
            param_values=(cases, tuple(self.impl_names()), ("cpu",)),
            tracks=(AsvTrack("track_gbps", "gbps", "GB/s"),
                    AsvTrack("track_objects_per_s", "objects_per_s", "objects/s"),
                    AsvTrack("track_ttfb_p50", "ttfb_p50_ms", "seconds", 1e-3)),
            version="1",
            key=lambda p, target, impl: (self.case_id(p), impl, target.split(":")[0]),
        )

    # --- store and data ---------------------------------------------------------------
    def configure(self, options: dict[str, Any]) -> None:
        validate_options(options)
        self.options = dict(options)

    def _store_for(self, options: dict[str, Any]) -> StoreContext:
        if self._store is not None:
            return self._store
        if self._store_skip is not None:
            raise SkipCase(self._store_skip)
        if self._store_error is not None:
            raise StoreError(self._store_error)
        opts = validate_options(options)
        try:
            self._store = StoreContext.open(opts)
        except EndpointUnavailable as e:
            self._store_skip = str(e)
            raise SkipCase(self._store_skip) from None
        except StoreError as e:
            self._store_error = str(e)
            raise
        except Exception as e:  # noqa: BLE001 - one line, remembered for later cases
            self._store_error = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
            raise StoreError(self._store_error) from None
        self._finalizer = weakref.finalize(self, StoreContext.close, self._store)
        return self._store

    def close(self) -> None:
        """Delete the uploaded objects (unless --keep) and stop the local endpoint."""
        if self._finalizer is not None:
            self._finalizer()
        self._store = None
        self._datasets.clear()

    def _dataset(self, store: StoreContext, params: dict[str, Any]) -> Dataset:
        label, obj_size, count = dataset_shape(params["workload"], params["size"])
        if store.read_only:
            listed = self._datasets.get("listed")
            if listed is None:
                sizes = store.list_objects()
                listed = Dataset(list(sizes), sizes, {k: None for k in sizes}, False)
                self._datasets["listed"] = listed
            if params["workload"] == "ranged":
                keys = [k for k in listed.keys if listed.sizes[k] >= params["size"]]
            elif params["workload"] == "small":
                keys = [k for k in listed.keys if 0 < listed.sizes[k] <= (1 << 20)]
            else:
                keys = [k for k in listed.keys if listed.sizes[k] > 0]
            if not keys:
                raise SkipCase(f"no object under {store.scheme}://{store.bucket}/{store.prefix} fits the "
                               f"{params['workload']} workload (--read-only reads only what is there)")
            return Dataset(keys, listed.sizes, listed.ids, False)
        with self._lock:
            ds = self._datasets.get(label)
            if ds is None:
                ds = store.upload(label, obj_size, count)
                self._datasets[label] = ds
                if self.after_upload is not None:
                    self.after_upload(store, ds)
        return ds

    # --- running ----------------------------------------------------------------------
    def run_case(self, params: dict[str, Any], impl: Impl, ctx: RunContext) -> CaseResult:
        result = CaseResult(suite=self.name, case_id=self.case_id(params), params=dict(params), target=str(ctx.target),
                            impl=impl.name, status=SKIPPED, started_at=now_iso())
        started = time.perf_counter()
        client: Client | None = None
        try:
            reason = impl.unavailable_reason(ctx.target)
            if reason is not None:
                raise SkipCase(reason)
            options = {**self.options, **{k: v for k, v in (ctx.options or {}).items() if v is not None}}
            store = self._store_for(options)
            if store.scheme not in SCHEMES[impl.name]:
                raise SkipCase(f"{impl.name} does not read {store.scheme}:// stores")
            if store.embedded is not None:
                if store.embedded.proc.poll() is not None:
                    raise StoreError(f"the local S3 endpoint (moto) exited with code {store.embedded.proc.returncode}"
                                     " (-9: killed, e.g. for memory); no objectstore case can run after it")
                _check_embedded_memory(params)
            ds = self._dataset(store, params)
            verify_every = max(1, int(os.environ.get("AIBENCH_OBJ_VERIFY_EVERY", "4")))
            runtime_s = ctx.policy.budget_s
            client = CLIENTS[impl.name](store, params["concurrency"])
            rngs = [random.Random(ctx.seed * 1000003 + w) for w in range(params["concurrency"])]
            next_request = _request_maker(params, ds, rngs)
            # A short warm-up (connections, DNS, credentials) that is not measured.
            client.run(next_request, ds.sizes, min(0.2, runtime_s / 5), verify_every)
            log = client.run(next_request, ds.sizes, runtime_s, verify_every)
            result.impl_detail = {**client.detail(), **store.describe(), "objects": len(ds.keys),
                                  "object_size": ds.sizes[ds.keys[0]] if not store.read_only else "as listed",
                                  "runtime_s": runtime_s, "verify_every": verify_every}
            if store.note:
                result.impl_detail["endpoint_note"] = store.note
            _evaluate(result, params, log, ds, store)
        except SkipCase as e:
            result.status = SKIPPED
            result.validation = Validation(status=SKIPPED, reason=str(e))
        except (StoreError, UsageError) as e:
            result.status = FAILED
            result.error = str(e)
            result.validation = Validation(status=FAILED, reason=str(e))
        except Exception as e:  # noqa: BLE001 - one clear line, the run goes on
            result.status = FAILED
            text = str(e).strip().splitlines()
            result.error = f"{type(e).__name__}: {text[0] if text else ''}"
            result.validation = Validation(status=FAILED, reason="the case could not complete")
        finally:
            if client is not None:
                client.close()
            result.duration_s = time.perf_counter() - started
        return result


def _check_embedded_memory(params: dict[str, Any]) -> None:
    """The embedded endpoint (moto) holds each object it serves in memory, whole even for a
    ranged GET: skip a case whose objects in flight would take more than an eighth of the
    available memory (a standard run's 64 GETs of 256 MiB objects had the kernel kill it)."""
    import psutil

    _, obj_size, _ = dataset_shape(params["workload"], params["size"])
    in_flight = obj_size * params["concurrency"]
    budget = psutil.virtual_memory().available // 8
    if in_flight > budget:
        raise SkipCase(f"the local S3 endpoint keeps every object it serves in memory: {params['concurrency']} "
                       f"x {size_label(obj_size)} in flight is over {budget >> 20} MiB (1/8 of the available memory); "
                       "give --url for a real store")


def _request_maker(params: dict[str, Any], ds: Dataset, rngs: list[random.Random]):
    keys = ds.keys
    if params["workload"] == "ranged":
        length = params["size"]

        def nxt(w: int):
            rng = rngs[w]
            key = keys[rng.randrange(len(keys))]
            span = ds.sizes[key] - length
            start = (rng.randrange(span + 1) // 4096 * 4096) if span > 0 else 0
            return key, ds.ids[key], start, min(length, ds.sizes[key])
        return nxt

    def nxt_whole(w: int):
        key = keys[rngs[w].randrange(len(keys))]
        return key, ds.ids[key], 0, None
    return nxt_whole


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


def _evaluate(result: CaseResult, params: dict[str, Any], log: RunLog, ds: Dataset, store: StoreContext) -> None:
    recs = log.records
    if not recs:
        raise RuntimeError("no request completed")
    ok = [r for r in recs if r.error is None]
    errors = [r for r in recs if r.error is not None]
    detail = result.impl_detail
    detail.update({"requests": len(recs), "errors": len(errors), "first_error": errors[0].error if errors else None})
    if not ok:
        raise StoreError(f"every request failed: {errors[0].error}")
    if log.mismatches:
        msg = f"an object read back differs from what aibench uploaded: {log.first_mismatch}"
        result.status = FAILED
        result.error = msg
        result.validation = Validation(status=FAILED, reason=msg)
        return
    if len(errors) > MAX_ERROR_FRACTION * len(recs):
        raise StoreError(f"{len(errors)} of {len(recs)} requests failed: {errors[0].error}")
    t_a, t_b, warp = window(ok)
    span = t_b - t_a
    nbytes = objs = 0.0
    for r in ok:  # each request counts for the part of it inside the window
        dur = max(r.end - r.start, 1e-9)
        frac = max(0.0, min(r.end, t_b) - max(r.start, t_a)) / dur
        nbytes += r.nbytes * frac
        objs += frac
    lat = np.array([r.end - r.start for r in ok])
    ttfb = np.array([(r.ttfb or r.end) - r.start for r in ok])
    gbps = nbytes / span / 1e9
    per_s = objs / span
    m = result.metrics
    head = [("gbps", Metric(gbps, "GB/s", True)), ("objects_per_s", Metric(per_s, "objects/s", True))]
    for name, metric in (head[::-1] if params["workload"] == "small" else head):
        m[name] = metric
    for p, key in ((50, "p50"), (90, "p90"), (99, "p99")):
        m[f"ttfb_{key}_ms"] = Metric(float(np.percentile(ttfb, p)) * 1e3, "ms", False)
    for p, key in ((50, "p50"), (90, "p90"), (99, "p99")):
        m[f"lat_{key}_ms"] = Metric(float(np.percentile(lat, p)) * 1e3, "ms", False)
    m["lat_max_ms"] = Metric(float(lat.max()) * 1e3, "ms", False)
    m["errors"] = Metric(float(len(errors)), "requests", False)
    if log.retries_known:
        m["retries"] = Metric(float(sum(r.retries for r in recs)), "retries", False)
    samples = lat.tolist()
    result.stats = {**summarize(samples).to_dict(), "samples_s": samples[:5000], "stopped_by": "time",
                    "sample": "seconds per request (start to last byte)"}
    detail.update({"window_s": span, "window": "warp (every worker busy)" if warp else "whole run (too few requests)",
                   "gib_per_s": nbytes / span / 2**30})
    if ds.uploaded:
        detail["verification"] = (f"{log.verified} bodies (one in {detail.get('verify_every')} per worker) compared "
                                  "with the uploaded content")
        result.validation = Validation(status=PASSED, max_rel_error=0.0, tolerance=0.0, reason=store.note)
    else:
        detail["verification"] = "none: --read-only objects are not aibench's; body lengths checked"
        result.validation = Validation(status=PASSED, reason=detail["verification"])
    result.status = PASSED
