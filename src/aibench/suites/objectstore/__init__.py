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
The headline is held to the kernel's count of the bytes received on the network
interfaces over the window's requests (bounds.py).
"""

from __future__ import annotations

import os
import random
import threading
from typing import Any, Callable

import numpy as np

from ...errors import SkipCase, UsageError
from ...fit import fits
from ...results import ContextKey, Metric, Samples
from ...targets import Target
from ...units import choice, parse_size, size_label
from ..base import AsvTrack, Option, Param, RunContext, Suite, case_table_asv_spec
from ..charts import PercentileChart
from ...registry import register_suite
from .bounds import bound_source
from .clients import IMPLS, Client, Workload
from .local_s3 import EndpointUnavailable
from .options import validate_options
from .store import RUN_STORE, Dataset, StoreContext, StoreError

WORKLOADS = ("whole", "ranged", "small")
RANGED_OBJECT_SIZE = 16 << 20


def _case(workload: str, size: int, concurrency: int) -> dict[str, Any]:
    return {"workload": workload, "size": size, "concurrency": concurrency}


def dataset_shape(workload: str, size: int) -> tuple[str, int, int]:
    """(label, object size, object count) of the objects a case reads."""
    if workload == "ranged":
        obj = max(RANGED_OBJECT_SIZE, 4 * size)
        return f"ranged-{size_label(obj)}", obj, 4
    if workload == "small" or size <= (1 << 20):
        return f"{workload}-{size_label(size)}", size, 256 if size <= (64 << 10) else 64
    return f"{workload}-{size_label(size)}", size, max(4, min(16, (256 << 20) // size))


@register_suite
class ObjectStoreSuite(Suite):
    name = "objectstore"
    description = "Object-store GETs (S3, GCS, Azure): GB/s, objects/s, TTFB; awscrt vs obstore vs boto3"
    params = {
        "workload": Param("workload", choice(WORKLOADS), "whole (large objects), ranged (random ranges), small (objects/s)"),
        "size": Param("size", parse_size, "object size (whole, small) or range length (ranged)"),
        "concurrency": Param("concurrency", parse_size, "requests in flight"),
    }
    options = (
        Option("url", "s3://bucket/prefix (or gs://, az://); default: a local S3 endpoint", "URL"),
        Option("endpoint-url", "S3 endpoint (http(s)://host:port)", "URL"),
        Option("keep", "keep the uploaded objects", None),
        Option("read-only", "read the existing objects under --url, write nothing", None),
    )
    target_kinds = ("cpu",)
    IMPLS = IMPLS
    comparisons = (("awscrt", "boto3"), ("obstore", "boto3"))
    # An embedded endpoint (moto, on this host) and a real store are different cases.
    context_keys = (ContextKey("endpoint", lambda detail, params: None if "embedded_endpoint" not in detail else
                               "endpoint=" + ("embedded" if detail["embedded_endpoint"] else "real")),)
    charts = (PercentileChart(name="objectstore-latency", title="Object store GET latency percentiles"),)
    # Tests set this to tamper with the objects right after they are uploaded.
    after_upload: Callable[[StoreContext, Dataset], None] | None = None

    def __init__(self):
        self.options_in_use: dict[str, Any] = {}
        self._lock = threading.Lock()

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

    def asv_spec(self):
        return case_table_asv_spec(self, "ObjectStore", (
            AsvTrack("track_gbps", "gbps", "GB/s"), AsvTrack("track_objects_per_s", "objects_per_s", "objects/s"),
            AsvTrack("track_ttfb_p50", "ttfb_p50_ms", "seconds", 1e-3)))

    def validate_options(self, options: dict[str, Any]) -> None:
        validate_options(options)

    # --- store and data ---------------------------------------------------------------
    def configure(self, options: dict[str, Any]) -> None:
        validate_options(options)
        self.options_in_use = dict(options)

    def _dataset(self, store: StoreContext, datasets: dict[str, Dataset], params: dict[str, Any]) -> Dataset:
        """The case's objects: uploaded once per run (`datasets`, the run's), or, read-only,
        those listed under the prefix."""
        label, obj_size, count = dataset_shape(params["workload"], params["size"])
        if store.read_only:
            listed = datasets.get("listed")
            if listed is None:
                sizes = store.list_objects()
                listed = Dataset(list(sizes), sizes, {k: None for k in sizes}, False)
                datasets["listed"] = listed
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
            ds = datasets.get(label)
            if ds is None:
                ds = store.upload(label, obj_size, count)
                datasets[label] = ds
                if self.after_upload is not None:
                    self.after_upload(store, ds)
        return ds

    # --- running ----------------------------------------------------------------------
    def prepare(self, params: dict[str, Any], impl: type[Client], ctx: RunContext) -> Client:
        options = {**self.options_in_use, **{k: v for k, v in (ctx.options or {}).items() if v is not None}}
        # The run's store (uploads deleted and a local endpoint stopped when the run ends)
        # and the datasets uploaded to it; a store that failed to open fails every case.
        store = ctx.resource(RUN_STORE, lambda: _open_store(options), StoreContext.close)
        datasets = ctx.resource(RUN_DATASETS, dict)
        if store.scheme not in impl.schemes:
            raise SkipCase(f"{impl.name} does not read {store.scheme}:// stores")
        if store.embedded is not None:
            if store.embedded.proc.poll() is not None:
                raise StoreError(f"the local S3 endpoint (moto) exited with code {store.embedded.proc.returncode}"
                                 " (-9: killed, e.g. for memory); no objectstore case can run after it")
            _check_embedded_memory(params)
        ds = self._dataset(store, datasets, params)
        rngs = [random.Random(ctx.seed * 1000003 + w) for w in range(params["concurrency"])]
        client = impl(params, ctx)
        client.workload = Workload(ds, _request_maker(params, ds, rngs), ctx.policy.budget_s,
                                   max(1, int(os.environ.get("AIBENCH_OBJ_VERIFY_EVERY", "4"))))
        return client

    def bound(self, params: dict[str, Any], op: Client, metrics: dict[str, Metric],
              fresh: bool = False) -> dict | None:
        """The kernel's count of the bytes received on every network interface over the
        requests of the figure's window, per second of window (bounds.py), on the headline:
        GB/s, or for small objects objects/s (the rate / the smallest object's size). A
        count, not a measurement that a busy machine makes low: `fresh` gives the same.
        None (the reason in the case's kernel_rx) where the counters cannot be read."""
        rx, _ = op.kernel_rx()
        if rx is None:
            return None
        rate, source = rx["rate_bytes_per_s"], bound_source(rx)
        if params["workload"] == "small":
            sizes = op.workload.dataset.sizes
            smallest = min(sizes[k] for k in op.workload.dataset.keys)
            return {"metric": "objects_per_s", "value": rate / smallest, "unit": "objects/s",
                    "source": f"{source} / {smallest} bytes per object"}
        return {"metric": "gbps", "value": rate / 1e9, "unit": "GB/s", "source": source}

    def metrics(self, params: dict[str, Any], samples: Samples, op: Client) -> dict[str, Metric]:
        """Figures over the window where every worker is busy (warp's), each request
        counting for the part of it inside the window."""
        recs = op.log.records
        ok = [r for r in recs if r.error is None]
        w = op.window()
        span, nbytes, objs = w["window_s"], w["window_bytes"], w["window_objects"]
        lat = np.array([r.end - r.start for r in ok])
        ttfb = np.array([(r.ttfb or r.end) - r.start for r in ok])
        head = [("gbps", Metric(nbytes / span / 1e9, "GB/s", True)),
                ("objects_per_s", Metric(objs / span, "objects/s", True))]
        m = dict(head[::-1] if params["workload"] == "small" else head)
        for p, key in ((50, "p50"), (90, "p90"), (99, "p99")):
            m[f"ttfb_{key}_ms"] = Metric(float(np.percentile(ttfb, p)) * 1e3, "ms", False)
        for p, key in ((50, "p50"), (90, "p90"), (99, "p99")):
            m[f"lat_{key}_ms"] = Metric(float(np.percentile(lat, p)) * 1e3, "ms", False)
        m["lat_max_ms"] = Metric(float(lat.max()) * 1e3, "ms", False)
        m["errors"] = Metric(float(len(recs) - len(ok)), "requests", False)
        if op.log.retries_known:
            m["retries"] = Metric(float(sum(r.retries for r in recs)), "retries", False)
        return m


RUN_DATASETS = "objectstore.datasets"  # the run's uploaded datasets by label (a RunContext resource)


def _open_store(options: dict[str, Any]) -> StoreContext:
    """The store of these options; why not, in one line: SkipCase where it cannot exist
    here (the embedded endpoint's packages missing), else StoreError."""
    try:
        return StoreContext.open(validate_options(options))
    except EndpointUnavailable as e:
        raise SkipCase(str(e)) from None
    except StoreError:
        raise
    except Exception as e:  # noqa: BLE001 - one line
        raise StoreError(f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}") from None


def _check_embedded_memory(params: dict[str, Any]) -> None:
    """The embedded endpoint (moto) holds each object it serves in memory, whole even for a
    ranged GET: skip a case whose objects in flight would take more than an eighth of the
    available memory (a standard run's 64 GETs of 256 MiB objects had the kernel kill it)."""
    import psutil

    _, obj_size, _ = dataset_shape(params["workload"], params["size"])
    reason = fits(obj_size * params["concurrency"], psutil.virtual_memory().available,
                  f"{params['concurrency']} x {size_label(obj_size)} in flight", share=1 / 8)
    if reason:
        raise SkipCase(f"the local S3 endpoint keeps every object it serves in memory: {reason}; "
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
