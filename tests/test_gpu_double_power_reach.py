"""Power reach (issue #30 item 7, as DCGM's targeted-power diagnostic): the power suite
records the sustained window's mean board power against NVML's enforced limit
(`pct_of_power_limit`), and the shipped NVIDIA GPU specs require 75% of it. Through the
device double (tests/gpu_double), whose board draws its told power while it computes."""

import json
import sys

import pytest

from aibench.cli import main
from test_gpu_double import gpus, run_cuda  # noqa: F401 - the device double fixture

POWER = ["--suite", "power", "--param", "m=64", "--param", "n=48", "--param", "k=32", "--param", "dtype=bf16",
         "--impl", "torch", "--power-window", "0.2"]


def _power_case(gpus, tmp_path, power_w: float, limit_w: float = 700.0):  # noqa: F811
    gpus.kernel_seconds.update(gemm=1e-3)
    gpus.specs[0].power_mw, gpus.specs[0].enforced_power_limit_mw = round(power_w * 1e3), round(limit_w * 1e3)
    code, doc = run_cuda(tmp_path, *POWER)
    (case,) = doc["cases"]
    assert code == 0 and case["status"] == "passed", case["error"]
    return case


@pytest.mark.parametrize("power_w, limit_w", [(400.0, 700.0), (400.0, 500.0), (650.0, 700.0)])
def test_the_window_mean_power_over_the_enforced_limit_is_recorded(gpus, tmp_path, power_w, limit_w):  # noqa: F811
    case = _power_case(gpus, tmp_path, power_w, limit_w)
    primary = case["power"]["primary"]
    assert primary["limit_w"] == limit_w
    assert primary["fraction_of_limit"] == pytest.approx(power_w / limit_w, rel=1e-6)
    metric = case["metrics"]["pct_of_power_limit"]
    assert metric["unit"] == "%" and metric["value"] == pytest.approx(100 * power_w / limit_w, rel=1e-6)


def test_a_board_that_does_not_tell_its_limit_has_no_figure_and_the_check_is_missing(gpus, tmp_path, monkeypatch,  # noqa: F811
                                                                                     capsys):
    nvml = sys.modules["pynvml"]

    def not_supported(handle):
        raise nvml.NVMLError_NotSupported()

    monkeypatch.setattr(nvml, "nvmlDeviceGetEnforcedPowerLimit", not_supported)
    case = _power_case(gpus, tmp_path, 600.0)
    assert case["power"]["primary"]["limit_w"] is None and case["power"]["primary"]["fraction_of_limit"] is None
    assert "pct_of_power_limit" not in case["metrics"] and "avg_watts" in case["metrics"]
    capsys.readouterr()  # the run's own tables
    assert main(["accept", "--spec", "nvidia-power-reach", "--json", str(tmp_path / "run.json")]) == 1
    [check] = json.loads(capsys.readouterr().out)["nodes"][0]["checks"]
    assert (check["check"], check["verdict"]) == ("power-reach", "missing")


@pytest.mark.parametrize("power_w, verdict", [(600.0, "pass"), (500.0, "fail")])
def test_the_shipped_power_reach_check_needs_75_percent_of_the_limit(gpus, tmp_path, capsys, power_w, verdict):  # noqa: F811
    """600 W of 700 is 85.7%: accepted; 500 W is 71.4%, below DCGM's 75%: rejected."""
    _power_case(gpus, tmp_path, power_w)
    capsys.readouterr()  # the run's own tables
    code = main(["accept", "--spec", "nvidia-power-reach", "--json", str(tmp_path / "run.json")])
    [check] = json.loads(capsys.readouterr().out)["nodes"][0]["checks"]
    assert (code, check["check"], check["verdict"]) == (0 if verdict == "pass" else 1, "power-reach", verdict)


def test_every_nvidia_board_spec_but_gh200_requires_power_reach():
    from aibench.accept.spec import load_spec, shipped_specs

    with_it = {name for name in shipped_specs() if name.startswith("nvidia-")
               and any(c.id == "power-reach" for c in load_spec(name).checks)}
    assert {"nvidia-h100-sxm", "nvidia-h200-sxm", "nvidia-h200-nvl", "nvidia-a100-sxm-80gb", "nvidia-b200",
            "nvidia-l40s", "nvidia-hgx-h100-8gpu", "nvidia-hgx-h200-8gpu", "nvidia-hgx-h200-node"} <= with_it
    assert "nvidia-gh200" not in with_it
