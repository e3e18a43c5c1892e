"""The fingerprint's settings that change a figure's meaning (fingerprint.py), read from
simulated /sys trees and a fake NVML; and the case key's meaning-changing parts."""

from pathlib import Path

from aibench.fingerprint import (
    cpu_settings,
    nvml_settings,
    storage_devices,
    threading_env,
)
from aibench.results import CaseResult


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        _write(root, rel, text)


def test_cpu_settings_from_sysfs(tmp_path):
    cpu = "sys/devices/system/cpu/"
    _tree(tmp_path, {cpu + "cpu0/cpufreq/scaling_governor": "performance\n",
                     cpu + "cpu0/cpufreq/scaling_driver": "acpi-cpufreq\n", cpu + "cpufreq/boost": "0\n",
                     cpu + "smt/control": "on\n", cpu + "smt/active": "1\n",
                     "sys/kernel/mm/transparent_hugepage/enabled": "always [madvise] never\n",
                     "sys/kernel/mm/transparent_hugepage/defrag": "[always] defer madvise never\n"})
    assert cpu_settings(str(tmp_path)) == {
        "cpufreq_driver": "acpi-cpufreq", "governor": "performance", "boost": "off", "smt": "on",
        "smt_active": True, "transparent_hugepages": "madvise", "transparent_hugepages_defrag": "always"}


def test_intel_pstate_no_turbo_is_boost_off(tmp_path):
    _write(tmp_path, "sys/devices/system/cpu/intel_pstate/no_turbo", "1\n")
    assert cpu_settings(str(tmp_path))["boost"] == "off"
    (tmp_path / "sys/devices/system/cpu/intel_pstate/no_turbo").write_text("0\n")
    assert cpu_settings(str(tmp_path))["boost"] == "on"


def test_missing_files_are_none(tmp_path):
    assert set(cpu_settings(str(tmp_path)).values()) == {None}
    assert storage_devices(str(tmp_path)) == []


def test_threading_env_keeps_only_threading_and_blas_variables():
    env = {"OMP_NUM_THREADS": "4", "MKL_DEBUG_CPU_TYPE": "5", "OPENBLAS_NUM_THREADS": "1", "PATH": "/bin",
           "KMP_AFFINITY": "compact", "HOME": "/root"}
    assert threading_env(env) == {"KMP_AFFINITY": "compact", "MKL_DEBUG_CPU_TYPE": "5", "OMP_NUM_THREADS": "4",
                                  "OPENBLAS_NUM_THREADS": "1"}


def test_storage_devices_model_firmware_scheduler(tmp_path):
    # An NVMe namespace (its controller's model and firmware_rev), a SATA disk (rev), and a
    # loop device (no `device` link: not hardware, left out).
    _tree(tmp_path, {"sys/block/nvme0n1/device/model": "SAMSUNG MZQL21T9HCJR-00A07  \n",
                     "sys/block/nvme0n1/device/firmware_rev": "GDC5902Q\n",
                     "sys/block/nvme0n1/queue/scheduler": "[none] mq-deadline\n",
                     "sys/block/nvme0n1/queue/rotational": "0\n",
                     "sys/block/sda/device/model": "ST4000NM0035\n", "sys/block/sda/device/rev": "TN05\n",
                     "sys/block/sda/queue/scheduler": "none [mq-deadline] bfq\n",
                     "sys/block/sda/queue/rotational": "1\n", "sys/block/loop0/queue/scheduler": "[none]\n"})
    assert storage_devices(str(tmp_path)) == [
        {"name": "nvme0n1", "model": "SAMSUNG MZQL21T9HCJR-00A07", "firmware": "GDC5902Q", "scheduler": "none",
         "rotational": False},
        {"name": "sda", "model": "ST4000NM0035", "firmware": "TN05", "scheduler": "mq-deadline", "rotational": True},
    ]


class FakeNvml:
    NVML_CLOCK_SM, NVML_CLOCK_MEM = 1, 2

    def __init__(self, unsupported=()):
        self.unsupported = set(unsupported)

    def _answer(self, name, value):
        if name in self.unsupported:
            raise RuntimeError("NVMLError_NotSupported")
        return value

    def nvmlDeviceGetEnforcedPowerLimit(self, h):
        return self._answer("power", 700000)

    def nvmlDeviceGetApplicationsClock(self, h, clock):
        return self._answer("clocks", {1: 1980, 2: 2619}[clock])

    def nvmlDeviceGetEccMode(self, h):
        return self._answer("ecc", (1, 1))

    def nvmlDeviceGetMigMode(self, h):
        return self._answer("mig", (0, 0))

    def nvmlDeviceGetPersistenceMode(self, h):
        return self._answer("persistence", 1)


def test_nvml_settings():
    assert nvml_settings(FakeNvml(), object()) == {
        "power_limit_w": 700.0, "applications_sm_clock_mhz": 1980, "applications_mem_clock_mhz": 2619,
        "ecc": "enabled", "mig": "disabled", "persistence": "enabled"}


def test_nvml_settings_a_gpu_does_not_support_are_none():
    got = nvml_settings(FakeNvml(unsupported={"mig", "ecc", "clocks"}), object())
    assert got["mig"] is None and got["ecc"] is None and got["applications_sm_clock_mhz"] is None
    assert got["power_limit_w"] == 700.0


# ---- the case key -------------------------------------------------------------------------

def _case(suite="storage", params=None, detail=None, case_id="read-1M-qd32-t1"):
    return CaseResult(suite=suite, case_id=case_id, params=params or {}, target="cpu", impl="aibench",
                      status="passed", impl_detail=detail or {})


def test_storage_source_is_in_the_key():
    tmp = _case(params={"threads": 1}, detail={"source": {"kind": "created", "filesystem": "tmpfs"}})
    nvme = _case(params={"threads": 1}, detail={"source": {"kind": "created", "filesystem": "xfs"}})
    device = _case(params={"threads": 1}, detail={"source": {"kind": "existing", "filesystem": "xfs"}})
    assert len({tmp.key(), nvme.key(), device.key()}) == 3
    assert "source=created:xfs" in nvme.key()[1]


def test_an_embedded_object_store_endpoint_is_not_a_real_one():
    embedded = _case("objectstore", {"concurrency": 16}, {"embedded_endpoint": True, "threads": 16}, "whole-1M-c16")
    real = _case("objectstore", {"concurrency": 16}, {"embedded_endpoint": False, "threads": 16}, "whole-1M-c16")
    assert embedded.key() != real.key() and "endpoint=embedded" in embedded.key()[1]
    assert "threads" not in embedded.key()[1]  # the concurrency is already a parameter


def test_a_thread_count_the_user_set_is_in_the_key():
    user = {"threads_rule": "OMP_NUM_THREADS"}
    two = _case("gemm", {"m": 512}, {"threads": 2, **user}, "512x512x512-fp32")
    one = _case("gemm", {"m": 512}, {"threads": 1, **user}, "512x512x512-fp32")
    assert two.key() != one.key() and two.key()[1] == "512x512x512-fp32 [threads=2]"
    assert _case("gemm", {"m": 512}, {}, "512x512x512-fp32").key()[1] == "512x512x512-fp32"


def test_every_core_of_two_different_nodes_is_the_same_case():
    """The default (one thread per core the node gives) is what comparing nodes compares."""
    rule = "one per core: 64 physical core(s) of the 128 CPU(s) in the affinity mask"
    big = _case("gemm", {"m": 512}, {"threads": 64, "threads_rule": rule}, "512x512x512-fp32")
    small = _case("gemm", {"m": 512}, {"threads": 2, "threads_rule": "one per core: 2 physical core(s)"},
                  "512x512x512-fp32")
    assert big.key() == small.key()
