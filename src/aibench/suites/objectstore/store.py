"""Where the objectstore suite reads: a bucket and prefix on a store (S3, or GCS/Azure
through obstore), with credentials from the standard places, or the embedded local S3
endpoint. Uploads the suite's objects under a unique prefix (content: every 8-byte word a
hash of the object id and its offset), lists an existing prefix for --read-only, and
deletes what it uploaded."""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..base import CaseFailed
from .local_s3 import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY, NOTE, REGION, LocalS3
from .options import StoreUrl

EMBEDDED_BUCKET = "aibench-local"



class StoreError(CaseFailed):
    """The store cannot be used (unreachable, no permission, no credentials): one line."""


@dataclass
class Dataset:
    keys: list[str]
    sizes: dict[str, int]
    ids: dict[str, int | None]  # object id for the content check (None: not ours)
    uploaded: bool


# The run's StoreContext (a RunContext resource: the objectstore suite opens it, clients read it).
RUN_STORE = "objectstore.store"


@dataclass
class StoreContext:
    scheme: str
    bucket: str
    prefix: str  # the prefix read (and, unless read_only, where aibench uploads)
    endpoint_url: str | None
    region: str
    embedded: LocalS3 | None = None
    read_only: bool = False
    keep: bool = False
    run_prefix: str | None = None  # the unique prefix of this run's uploads
    uploaded: list[str] = field(default_factory=list)
    _creds: dict[str, Any] | None = None
    _boto3: Any = None

    # --- construction ---------------------------------------------------------------
    @classmethod
    def open(cls, opts: dict[str, Any]) -> "StoreContext":
        url: StoreUrl | None = opts["url"]
        if url is None:
            server = LocalS3()
            ctx = cls("s3", EMBEDDED_BUCKET, "", server.endpoint, REGION, embedded=server,
                      _creds={"access_key_id": DUMMY_ACCESS_KEY, "secret_access_key": DUMMY_SECRET_KEY, "token": None})
            try:
                ctx.boto3_client().create_bucket(Bucket=EMBEDDED_BUCKET)
            except Exception:
                server.close()
                raise
        else:
            region = REGION
            if url.scheme == "s3":
                import boto3

                region = boto3.session.Session().region_name or REGION
            ctx = cls(url.scheme, url.bucket, url.prefix, opts["endpoint_url"], region,
                      read_only=opts["read_only"], keep=opts["keep"])
            ctx.preflight()
        ctx.keep = opts["keep"]
        if not ctx.read_only:
            ctx.run_prefix = "/".join(p for p in (ctx.prefix, f"aibench-{secrets.token_hex(6)}") if p)
        return ctx

    @property
    def note(self) -> str | None:
        return NOTE if self.embedded is not None else None

    def describe(self) -> dict[str, Any]:
        return {"store": f"{self.scheme}://{self.bucket}/{self.prefix}".rstrip("/"),
                "endpoint_url": self.endpoint_url, "region": self.region,
                "embedded_endpoint": self.embedded is not None, "read_only": self.read_only,
                "upload_prefix": self.run_prefix, "keep": self.keep}

    # --- credentials and clients ------------------------------------------------------
    def credentials(self) -> dict[str, Any]:
        """S3 credentials from the standard chain (environment, ~/.aws config files, profile)."""
        if self._creds is None:
            import boto3

            c = boto3.session.Session().get_credentials()
            if c is None:
                raise StoreError("no AWS credentials found (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE "
                                 "or ~/.aws/credentials)")
            f = c.get_frozen_credentials()
            self._creds = {"access_key_id": f.access_key, "secret_access_key": f.secret_key, "token": f.token}
        return self._creds

    def boto3_client(self, max_pool: int = 10):
        import boto3
        from botocore.config import Config

        creds = self.credentials()
        cfg = Config(max_pool_connections=max(10, max_pool), retries={"max_attempts": 5, "mode": "standard"},
                     connect_timeout=5, read_timeout=120,
                     s3={"addressing_style": "path"} if self.endpoint_url else None)
        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint_url, region_name=self.region, config=cfg,
            aws_access_key_id=creds["access_key_id"], aws_secret_access_key=creds["secret_access_key"],
            aws_session_token=creds.get("token"))

    def obstore_store(self):
        from obstore.store import S3Store, from_url

        client_options = {"connect_timeout": "5s", "timeout": "120s", "allow_http": True}
        if self.scheme != "s3":
            # GCS and Azure: obstore reads their standard environment variables.
            return from_url(f"{self.scheme}://{self.bucket}", client_options=client_options)
        creds = self.credentials()
        kw = {"access_key_id": creds["access_key_id"], "secret_access_key": creds["secret_access_key"],
              "region": self.region}
        if creds.get("token"):
            kw["token"] = creds["token"]
        if self.endpoint_url:
            kw["endpoint"] = self.endpoint_url
        return S3Store(self.bucket, client_options=client_options, **kw)

    def _s3(self):
        if self._boto3 is None:
            self._boto3 = self.boto3_client(max_pool=16)
        return self._boto3

    # --- checks, listing, upload, delete ------------------------------------------------
    def preflight(self) -> None:
        """One listing request: an unreachable endpoint, a missing bucket or a missing
        permission becomes one StoreError line here, before any case is measured."""
        where = self.endpoint_url or f"{self.scheme}://{self.bucket}"
        try:
            self.list_objects(limit=1)
        except StoreError:
            raise
        except Exception as e:  # noqa: BLE001 - reduced to one line
            raise StoreError(f"cannot list {self.scheme}://{self.bucket}/{self.prefix} at {where}: "
                             f"{_short(e)}") from None

    def list_objects(self, limit: int = 10000) -> dict[str, int]:
        """key -> size of the objects under the prefix (at most `limit`)."""
        out: dict[str, int] = {}
        prefix = (self.prefix + "/") if self.prefix else ""
        if self.scheme == "s3":
            from botocore.config import Config

            creds = self.credentials()
            import boto3

            quick = boto3.session.Session().client(
                "s3", endpoint_url=self.endpoint_url, region_name=self.region,
                config=Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 2},
                              s3={"addressing_style": "path"} if self.endpoint_url else None),
                aws_access_key_id=creds["access_key_id"], aws_secret_access_key=creds["secret_access_key"],
                aws_session_token=creds.get("token"))
            for page in quick.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    out[obj["Key"]] = int(obj["Size"])
                    if len(out) >= limit:
                        return out
            return out
        import obstore as obs

        for batch in obs.list(self.obstore_store(), prefix=prefix or None, chunk_size=1000):
            for meta in batch:
                out[meta["path"]] = int(meta["size"])
                if len(out) >= limit:
                    return out
        return out

    def upload(self, label: str, size: int, count: int) -> Dataset:
        from ... import _core

        keys = [f"{self.run_prefix}/{label}/obj-{i:05d}" for i in range(count)]
        ids = {k: secrets.randbits(62) for k in keys}

        def put(key: str) -> None:
            data = bytearray(size)
            _core.io_fill(memoryview(data)[: size - size % 8], 0, ids[key])
            self.put_bytes(key, bytes(data))

        self.uploaded.extend(keys)  # before: a failed upload is still cleaned up
        with ThreadPoolExecutor(max_workers=min(8, count)) as pool:
            for f in [pool.submit(put, k) for k in keys]:
                f.result()
        return Dataset(keys, {k: size for k in keys}, ids, True)

    def put_bytes(self, key: str, data: bytes) -> None:
        if self.scheme == "s3":
            self._s3().put_object(Bucket=self.bucket, Key=key, Body=data)
        else:
            import obstore as obs

            obs.put(self.obstore_store(), key, data)

    def delete_uploaded(self) -> int:
        keys, self.uploaded = self.uploaded, []
        if not keys:
            return 0
        if self.scheme == "s3":
            s3 = self._s3()
            for i in range(0, len(keys), 1000):
                s3.delete_objects(Bucket=self.bucket,
                                  Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]], "Quiet": True})
        else:
            import obstore as obs

            obs.delete(self.obstore_store(), keys)
        return len(keys)

    def close(self) -> None:
        try:
            if not self.keep:
                self.delete_uploaded()
        finally:
            if self.embedded is not None:
                self.embedded.close()
                self.embedded = None


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
