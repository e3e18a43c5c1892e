"""Redfish: the whole node's power from the BMC over HTTPS (`--redfish URL`).

Reads Chassis/<id>/Power PowerControl[].PowerConsumedWatts, or the newer
Chassis/<id>/PowerSubsystem -> EnvironmentMetrics PowerWatts.Reading. Credentials from
AIBENCH_REDFISH_USER / AIBENCH_REDFISH_PASSWORD (basic auth), or from the URL's
user:password@, which is taken out of the URL before any request (only the host name is
resolved) and never stored or shown."""

from __future__ import annotations

import base64
import functools
import json
import os
import ssl
import urllib.error
import urllib.request

from ..safety import redact_url, split_credentials
from . import SampledPowerMeter


def _get(url: str, timeout: float = 5.0, credentials: tuple[str | None, str | None] = (None, None)) -> dict:
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    user = os.environ.get("AIBENCH_REDFISH_USER", credentials[0])
    password = os.environ.get("AIBENCH_REDFISH_PASSWORD", credentials[1])
    if user is not None:
        token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    # BMCs mostly carry self-signed certificates; verification is opt-in.
    ctx = None if os.environ.get("AIBENCH_REDFISH_VERIFY") == "1" else ssl._create_unverified_context()
    with urllib.request.urlopen(req, timeout=timeout, context=ctx) as r:
        return json.load(r)


def chassis_power_watts(url: str) -> float:
    """Current node power from the first chassis that reports it."""
    base, user, password = split_credentials(url)
    base = base.rstrip("/")
    get = functools.partial(_get, credentials=(user, password))
    root = base if base.endswith("/redfish/v1") else base + "/redfish/v1"
    origin = root[: -len("/redfish/v1")]
    chassis = get(root + "/Chassis")
    for member in chassis.get("Members", []):
        c = get(origin + member["@odata.id"])
        if "Power" in c:
            power = get(origin + c["Power"]["@odata.id"])
            for control in power.get("PowerControl", []):
                if control.get("PowerConsumedWatts") is not None:
                    return float(control["PowerConsumedWatts"])
        if "EnvironmentMetrics" in c:
            env = get(origin + c["EnvironmentMetrics"]["@odata.id"])
            reading = (env.get("PowerWatts") or {}).get("Reading")
            if reading is not None:
                return float(reading)
    raise ValueError("no chassis reports PowerConsumedWatts or EnvironmentMetrics PowerWatts")


class RedfishPower(SampledPowerMeter):
    source = "redfish"
    scope = "whole node"
    update_period_s = 1.0

    def __init__(self, url: str):
        self.url = url  # may hold credentials: used for requests only
        self.name = redact_url(url)

    def read_watts(self) -> float:
        return chassis_power_watts(self.url)


def discover(url: str | None) -> tuple[list, list[str]]:
    if not url:
        return [], []
    try:
        chassis_power_watts(url)
    except (urllib.error.URLError, OSError, ValueError, KeyError, json.JSONDecodeError) as e:
        return [], [redact_url(f"Redfish {url}: {e}")]
    return [RedfishPower(url)], []
