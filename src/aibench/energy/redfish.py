"""Redfish: the whole node's power from the BMC over HTTPS (`--redfish URL`).

Reads Chassis/<id>/Power PowerControl[].PowerConsumedWatts, or the newer
Chassis/<id>/PowerSubsystem -> EnvironmentMetrics PowerWatts.Reading. Credentials from
AIBENCH_REDFISH_USER / AIBENCH_REDFISH_PASSWORD (basic auth)."""

from __future__ import annotations

import base64
import json
import os
import ssl
import urllib.error
import urllib.request

from . import SampledPowerMeter


def _get(url: str, timeout: float = 5.0) -> dict:
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    user, password = os.environ.get("AIBENCH_REDFISH_USER"), os.environ.get("AIBENCH_REDFISH_PASSWORD")
    if user is not None:
        token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    # BMCs mostly carry self-signed certificates; verification is opt-in.
    ctx = None if os.environ.get("AIBENCH_REDFISH_VERIFY") == "1" else ssl._create_unverified_context()
    with urllib.request.urlopen(req, timeout=timeout, context=ctx) as r:
        return json.load(r)


def chassis_power_watts(base: str) -> float:
    """Current node power from the first chassis that reports it."""
    base = base.rstrip("/")
    root = base if base.endswith("/redfish/v1") else base + "/redfish/v1"
    origin = root[: -len("/redfish/v1")]
    chassis = _get(root + "/Chassis")
    for member in chassis.get("Members", []):
        c = _get(origin + member["@odata.id"])
        if "Power" in c:
            power = _get(origin + c["Power"]["@odata.id"])
            for control in power.get("PowerControl", []):
                if control.get("PowerConsumedWatts") is not None:
                    return float(control["PowerConsumedWatts"])
        if "EnvironmentMetrics" in c:
            env = _get(origin + c["EnvironmentMetrics"]["@odata.id"])
            reading = (env.get("PowerWatts") or {}).get("Reading")
            if reading is not None:
                return float(reading)
    raise ValueError("no chassis reports PowerConsumedWatts or EnvironmentMetrics PowerWatts")


class RedfishPower(SampledPowerMeter):
    source = "redfish"
    scope = "whole node"
    update_period_s = 1.0

    def __init__(self, url: str):
        self.url = url
        self.name = url

    def read_watts(self) -> float:
        return chassis_power_watts(self.url)


def discover(url: str | None) -> tuple[list, list[str]]:
    if not url:
        return [], []
    try:
        chassis_power_watts(url)
    except (urllib.error.URLError, OSError, ValueError, KeyError, json.JSONDecodeError) as e:
        return [], [f"Redfish {url}: {e}"]
    return [RedfishPower(url)], []
