"""The objectstore suite's run options: --url, --endpoint-url, --keep, --read-only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from ...errors import UsageError
from ...safety import redact_url

SCHEMES = {"s3": "s3", "gs": "gs", "az": "az", "azure": "az", "abfs": "az"}


@dataclass(frozen=True)
class StoreUrl:
    scheme: str  # s3 | gs | az
    bucket: str
    prefix: str  # without leading or trailing '/'; may be empty

    def __str__(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.prefix}".rstrip("/")


_CREDENTIALS_IN_URL = ("credentials in {flag} are not used and not stored: the clients sign requests with the "
                       "store's own credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, or the GCS/Azure "
                       "environment); remove user:password@ from the URL")


def parse_url(text: str) -> StoreUrl:
    u = urlparse(text)
    if "@" in u.netloc:
        raise UsageError(_CREDENTIALS_IN_URL.format(flag="--url"))
    scheme = SCHEMES.get(u.scheme.lower())
    if scheme is None or not u.netloc:
        raise UsageError(f"--url {redact_url(text)!r}: expected s3://bucket/prefix (or gs://, az://)")
    return StoreUrl(scheme, u.netloc, u.path.strip("/"))


def validate_options(options: dict[str, Any]) -> dict[str, Any]:
    url = options.get("url")
    endpoint = options.get("endpoint_url")
    read_only = bool(options.get("read_only"))
    keep = bool(options.get("keep"))
    parsed = parse_url(url) if url else None
    if endpoint:
        e = urlparse(endpoint)
        if "@" in e.netloc:
            raise UsageError(_CREDENTIALS_IN_URL.format(flag="--endpoint-url"))
        if e.scheme not in ("http", "https") or not e.hostname:
            raise UsageError(f"--endpoint-url {endpoint!r}: expected http(s)://host[:port]")
        try:
            e.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise UsageError(f"--endpoint-url {endpoint!r}: bad port") from None
        if parsed is None:
            raise UsageError("--endpoint-url needs --url s3://bucket/prefix")
        if parsed.scheme != "s3":
            raise UsageError("--endpoint-url applies to s3:// URLs only")
    if read_only and parsed is None:
        raise UsageError("--read-only needs --url: the prefix of existing objects to read")
    if read_only and keep:
        raise UsageError("--keep and --read-only cannot be combined (--read-only writes nothing)")
    return {"url": parsed, "endpoint_url": endpoint or None, "read_only": read_only, "keep": keep}
