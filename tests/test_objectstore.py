"""The objectstore suite against a real S3 endpoint on loopback (moto in a child
process): every client reads and verifies aibench's objects, a corrupted object fails
the case, the prefix is cleaned up, --read-only writes nothing, and a dead endpoint is a
failed case with one line."""

import importlib.util
import os
import subprocess
import sys

import pytest

pytest.importorskip("moto")
pytest.importorskip("boto3")

from aibench.harness import SamplingPolicy  # noqa: E402
from aibench.suites.base import RunContext  # noqa: E402
from aibench.suites.objectstore import ObjectStoreSuite  # noqa: E402
from aibench.suites.objectstore.local_s3 import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY, LocalS3  # noqa: E402
from aibench.suites.objectstore.store import RUN_STORE  # noqa: E402
from aibench.targets import Target  # noqa: E402

BUCKET = "aibench-test"


@pytest.fixture(scope="module")
def endpoint():
    server = LocalS3()
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ACCESS_KEY_ID=DUMMY_ACCESS_KEY, AWS_SECRET_ACCESS_KEY=DUMMY_SECRET_KEY,
                      AWS_DEFAULT_REGION="us-east-1")
    client = _client(server.endpoint)
    client.create_bucket(Bucket=BUCKET)
    yield server.endpoint
    server.close()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _client(endpoint):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=DUMMY_ACCESS_KEY,
                        aws_secret_access_key=DUMMY_SECRET_KEY)


def _keys(endpoint, prefix):
    resp = _client(endpoint).list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return [o["Key"] for o in resp.get("Contents", [])]


def _ctx(**options):
    return RunContext(target=Target("cpu"), policy=SamplingPolicy(budget_s=0.3), options=options)


def _impl(suite, name):
    return next(i for i in suite.impls() if i.name == name)


@pytest.fixture(scope="module")
def shared_run(endpoint):
    """One run (its context owns the store) for the three clients: the objects are
    uploaded once."""
    ctx = _ctx(url=f"s3://{BUCKET}/shared", endpoint_url=endpoint)
    yield ctx
    ctx.close()


@pytest.mark.parametrize("impl", ["awscrt", "obstore", "boto3"])
def test_each_client_reads_and_verifies(endpoint, shared_run, impl):
    pytest.importorskip(impl)
    suite, ctx = ObjectStoreSuite(), shared_run
    for w, s in (("whole", 1 << 20), ("ranged", 64 << 10)):
        r, = suite.run_case({"workload": w, "size": s, "concurrency": 4}, _impl(suite, impl), ctx)
        assert r.status == "passed", r.error
        d = r.impl_detail
        assert "compared with the uploaded content" in d["verification"] and d["errors"] == 0
        m = r.metrics
        assert m["gbps"].value > 0 and m["objects_per_s"].value > 0
        assert 0 < m["ttfb_p50_ms"].value <= m["lat_p99_ms"].value
    assert ctx.resource(RUN_STORE).run_prefix.startswith("shared/aibench-")


def test_closing_the_run_deletes_the_uploaded_prefix(endpoint, shared_run):
    prefix = shared_run.resource(RUN_STORE).run_prefix
    from aibench.suites.objectstore import dataset_shape

    expected = dataset_shape("whole", 1 << 20)[2] + dataset_shape("ranged", 64 << 10)[2]
    assert len(_keys(endpoint, prefix)) == expected
    shared_run.close()
    assert _keys(endpoint, prefix) == []


def test_corrupted_object_fails_the_case(endpoint, monkeypatch):
    monkeypatch.setenv("AIBENCH_OBJ_VERIFY_EVERY", "1")
    suite = ObjectStoreSuite()

    def corrupt(store, ds):
        c = _client(endpoint)
        for key in ds.keys:  # every object: whichever is read first is caught
            body = bytearray(c.get_object(Bucket=BUCKET, Key=key)["Body"].read())
            body[1000] ^= 0x01
            c.put_object(Bucket=BUCKET, Key=key, Body=bytes(body))

    suite.after_upload = corrupt
    ctx = _ctx(url=f"s3://{BUCKET}/corrupt", endpoint_url=endpoint)
    r, = suite.run_case({"workload": "whole", "size": 2 << 20, "concurrency": 2}, _impl(suite, "boto3"), ctx)
    prefix = ctx.resource(RUN_STORE).run_prefix
    ctx.close()
    assert r.status == "failed" and "differs from what aibench uploaded" in r.error and "offset 1000" in r.error
    assert _keys(endpoint, prefix) == []


def test_read_only_reads_existing_objects_and_writes_nothing(endpoint):
    c = _client(endpoint)
    for i in range(3):
        c.put_object(Bucket=BUCKET, Key=f"existing/obj{i}", Body=os.urandom(256 << 10))
    before = sorted(_keys(endpoint, ""))
    suite = ObjectStoreSuite()
    r, = suite.run_case({"workload": "whole", "size": 1 << 20, "concurrency": 2}, _impl(suite, "obstore"),
                       _ctx(url=f"s3://{BUCKET}/existing", endpoint_url=endpoint, read_only=True))
    assert r.status == "passed", r.error
    assert r.impl_detail["upload_prefix"] is None and "--read-only" in r.validation.reason
    assert sorted(_keys(endpoint, "")) == before


def test_unreachable_endpoint_is_one_line_failure():
    suite = ObjectStoreSuite()
    r, = suite.run_case({"workload": "small", "size": 4096, "concurrency": 1}, _impl(suite, "boto3"),
                       _ctx(url="s3://nobucket/x", endpoint_url="http://127.0.0.1:9"))
    assert r.status == "failed" and "cannot list" in r.error and "\n" not in r.error


def test_embedded_endpoint_by_default_with_a_note():
    suite = ObjectStoreSuite()
    ctx = _ctx()
    r, = suite.run_case({"workload": "whole", "size": 2 << 20, "concurrency": 4}, _impl(suite, "obstore"), ctx)
    server = ctx.resource(RUN_STORE).embedded
    ctx.close()
    assert r.status == "passed", r.error
    assert "means nothing as a storage figure" in r.impl_detail["endpoint_note"]
    assert r.metrics["objects_per_s"].value > 0
    assert server.proc.poll() is not None  # the local endpoint is stopped


def test_embedded_endpoint_that_cannot_start_fails_every_case_with_its_last_words(monkeypatch):
    """The endpoint's own error, in one line, on every case (once: 'seek of closed file')."""
    from aibench.suites.objectstore import local_s3

    monkeypatch.setattr(local_s3, "server_command",
                        lambda: [sys.executable, "-c", "import sys; sys.exit('ImportError: moto exploded')"])
    suite, ctx = ObjectStoreSuite(), _ctx()
    results = [r for name in ("awscrt", "obstore", "boto3")
               for r in suite.run_case({"workload": "small", "size": 4096, "concurrency": 1}, _impl(suite, name), ctx)]
    ctx.close()
    for r in results:
        assert r.status == "failed" and "\n" not in r.error
        assert "local S3 endpoint (moto) did not start" in r.error and "moto exploded" in r.error, r.error


def test_embedded_endpoint_without_its_packages_skips_with_the_install_line(monkeypatch):
    from aibench.suites.objectstore import local_s3

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(local_s3.importlib.util, "find_spec",
                        lambda name, *a: None if name == "flask_cors" else real_find_spec(name, *a))
    suite, ctx = ObjectStoreSuite(), _ctx()
    results = [r for name in ("awscrt", "boto3")
               for r in suite.run_case({"workload": "small", "size": 4096, "concurrency": 1}, _impl(suite, name), ctx)]
    ctx.close()
    for r in results:
        assert r.status == "skipped", r.error
        assert r.validation.reason == ("the embedded S3 endpoint needs flask-cors (pip install flask-cors), "
                                       "or give --url s3://bucket/prefix for a real store")


@pytest.mark.parametrize("args, message", [
    (["--read-only"], "--read-only needs --url"),
    (["--url", "http://bucket/x"], "expected s3://bucket/prefix"),
    (["--url", "s3://b/p", "--endpoint-url", "ftp://h"], "expected http(s)://host[:port]"),
    (["--param", "workload=everything"], "bad value 'everything'"),
])
def test_objectstore_usage_errors_are_one_line(args, message):
    p = subprocess.run([sys.executable, "-m", "aibench.cli", "run", "--suite", "objectstore", "--no-asv", *args],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in p.stderr


def test_embedded_endpoint_skips_cases_that_would_exhaust_memory(monkeypatch):
    """moto holds every object it serves in memory: 64 GETs of 256 MiB objects once had
    the kernel kill it mid-run; such a case is skipped with the reason instead."""
    import types

    import psutil

    from aibench.errors import SkipCase
    from aibench.suites.objectstore import _check_embedded_memory

    monkeypatch.setattr(psutil, "virtual_memory", lambda: types.SimpleNamespace(available=16 << 30))
    _check_embedded_memory({"workload": "whole", "size": 256 << 20, "concurrency": 8})  # 2 GiB: fits
    with pytest.raises(SkipCase, match="64 x 256M in flight does not fit: it needs 16.0 GiB, more than 12.5% of the 16.0 GiB"):
        _check_embedded_memory({"workload": "whole", "size": 256 << 20, "concurrency": 64})
    with pytest.raises(SkipCase, match="local S3 endpoint"):  # a ranged GET makes moto load the whole object
        _check_embedded_memory({"workload": "ranged", "size": 64 << 10, "concurrency": 1024})
