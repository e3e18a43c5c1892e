"""CPU clock, cores and peaks (targets/cpu.py) and GPU peaks (peaks.py), on simulated
/proc and /sys trees for CPUs and hosts this machine is not."""

from pathlib import Path

import pytest

from aibench import _core, peaks
from aibench.targets import cpu as cpu_target


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _topology(root: Path, cores: list[tuple[int, int]]) -> None:
    """cpuN -> (package, core) for N = 0, 1, ..."""
    for cpu, (package, core) in enumerate(cores):
        _write(root, f"sys/devices/system/cpu/cpu{cpu}/topology/physical_package_id", f"{package}\n")
        _write(root, f"sys/devices/system/cpu/cpu{cpu}/topology/core_id", f"{core}\n")


# ---- clock: the chain's figure against its cross-checks --------------------------------------

def _reading(ghz, perf=None, aperf=None):
    return {"ghz": ghz, "ghz_per_thread": [ghz], "chain": "test chain", "perf_cycles_ghz": perf,
            "perf_cycles_error": None if perf else "no PMU", "aperf_ghz": aperf,
            "aperf_error": None if aperf else "no msr"}


def test_a_clock_within_its_cross_checks_is_used():
    judged = cpu_target.check_clock(_reading(3.0, perf=2.98), max_ghz=3.5, mhz=2450.0)
    assert judged["refused"] is None and judged["ghz_used"] == 3.0
    assert "perf cycles 2.980 GHz" in judged["source"] and "cpufreq max 3.500 GHz" in judged["source"]


def test_a_clock_above_cpufreq_max_is_refused_and_the_maximum_used():
    # The old add chain read 17.15 GHz on a Xeon whose maximum is far lower.
    judged = cpu_target.check_clock(_reading(17.15), max_ghz=3.8, mhz=None)
    assert "above cpufreq's maximum 3.800 GHz" in judged["refused"]
    assert judged["ghz_used"] == 3.8 and "cpufreq maximum" in judged["source"]


def test_a_clock_just_within_the_tolerance_is_kept():
    assert cpu_target.check_clock(_reading(3.8 * 1.04), max_ghz=3.8, mhz=None)["refused"] is None


def test_a_clock_above_the_cycle_counter_is_refused_and_the_counter_used():
    judged = cpu_target.check_clock(_reading(4.0, aperf=3.1), max_ghz=None, mhz=None)
    assert "APERF" in judged["refused"] and judged["ghz_used"] == 3.1


def test_a_clock_nothing_can_check_is_kept_and_said_unchecked():
    judged = cpu_target.check_clock(_reading(9.0), max_ghz=None, mhz=None)
    assert judged["refused"] is None and judged["ghz_used"] == 9.0 and "no cross-check" in judged["source"]


def test_cpuinfo_mhz_is_the_cross_check_of_a_vm(tmp_path):
    _write(tmp_path, "proc/cpuinfo", "processor\t: 0\ncpu MHz\t\t: 2445.4\n\nprocessor\t: 1\ncpu MHz\t\t: 2450.0\n")
    assert cpu_target.cpuinfo_mhz(str(tmp_path)) == pytest.approx(2447.7)
    assert cpu_target.cpufreq_max_ghz([0, 1], str(tmp_path)) is None
    judged = cpu_target.check_clock(_reading(2.5), max_ghz=None, mhz=2447.7)
    assert "cpuinfo 2.448 GHz" in judged["source"]


def test_cpufreq_max_is_the_highest_of_the_allowed_cpus(tmp_path):
    _write(tmp_path, "sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", "3500000\n")
    _write(tmp_path, "sys/devices/system/cpu/cpu1/cpufreq/cpuinfo_max_freq", "3800000\n")
    assert cpu_target.cpufreq_max_ghz([0, 1], str(tmp_path)) == 3.8
    assert cpu_target.cpufreq_max_ghz([0], str(tmp_path)) == 3.5


def test_the_measured_clock_reports_its_chain_and_cross_checks():
    reading = _core.measure_clock(0.02)
    assert set(reading) == {"ghz", "ghz_per_thread", "chain", "perf_cycles_ghz", "perf_cycles_error", "aperf_ghz",
                            "aperf_error"}
    assert len(reading["ghz_per_thread"]) == _core.default_threads() and reading["ghz"] > 0
    assert ("imul" in reading["chain"]) or ("fmadd" in reading["chain"])
    for figure, error in (("perf_cycles_ghz", "perf_cycles_error"), ("aperf_ghz", "aperf_error")):
        assert (reading[figure] is None) != (reading[error] is None)  # a figure, or why not
    with pytest.raises(ValueError):
        _core.measure_clock(0.0)


# ---- cores: affinity mask and cgroup quota ------------------------------------------------

def test_cores_are_the_physical_cores_of_the_affinity_mask(tmp_path):
    # 2 packages x 2 cores x 2 threads: cpus 0-3 on package 0, 4-7 on package 1; siblings
    # are (0,1), (2,3), ...
    _topology(tmp_path, [(p, c) for p in (0, 1) for c in (0, 0, 1, 1)])
    assert cpu_target.core_budget(range(8), str(tmp_path))["cores"] == 4
    assert cpu_target.core_budget([0, 1], str(tmp_path))["cores"] == 1  # one core's two threads
    budget = cpu_target.core_budget([0, 2, 4], str(tmp_path))
    assert budget["cores"] == 3 and budget["cpus"] == 3 and budget["cgroup"] is None


def test_cgroup_v2_quota_caps_the_cores(tmp_path):
    _topology(tmp_path, [(0, c) for c in range(8)])
    _write(tmp_path, "proc/self/cgroup", "0::/job/step\n")
    _write(tmp_path, "sys/fs/cgroup/job/step/cpu.max", "max 100000\n")
    _write(tmp_path, "sys/fs/cgroup/job/cpu.max", "250000 100000\n")  # an ancestor's limit binds
    budget = cpu_target.core_budget(range(8), str(tmp_path))
    assert budget["cgroup"]["cpus"] == 2.5 and budget["cores"] == 3
    assert "cgroup CPU quota of 2.5 CPUs" in budget["source"]


def test_cgroup_v1_quota_and_no_limit(tmp_path):
    _topology(tmp_path, [(0, c) for c in range(4)])
    _write(tmp_path, "proc/self/cgroup", "5:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n")
    _write(tmp_path, "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "100000\n")
    _write(tmp_path, "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n")
    _write(tmp_path, "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n")
    _write(tmp_path, "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n")
    assert cpu_target.core_budget(range(4), str(tmp_path))["cores"] == 1
    (tmp_path / "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us").write_text("-1\n")
    budget = cpu_target.core_budget(range(4), str(tmp_path))
    assert budget["cores"] == 4 and budget["cgroup"] is None


def test_a_quota_above_the_cores_changes_nothing_and_missing_files_count_cpus(tmp_path):
    _write(tmp_path, "proc/self/cgroup", "0::/\n")
    _write(tmp_path, "sys/fs/cgroup/cpu.max", "800000 100000\n")
    budget = cpu_target.core_budget([0, 1, 2], str(tmp_path))  # no topology files: 3 CPUs
    assert budget["cores"] == 3 and budget["cgroup"]["cpus"] == 8


# ---- FMA width: aarch64 core types, one or two 512-bit units on Intel -------------------------

def _cpuinfo(root: Path, fields: dict[str, str]) -> str:
    text = "processor\t: 0\n" + "".join(f"{k}\t: {v}\n" for k, v in fields.items()) + "\n"
    _write(root, "proc/cpuinfo", text)
    return str(root)


@pytest.mark.parametrize("part, bits", [("0xd0c", 256), ("0xd49", 256), ("0xd40", 512), ("0xd4f", 512)])
def test_aarch64_fma_width_by_core_type(tmp_path, part, bits):
    root = _cpuinfo(tmp_path, {"CPU implementer": "0x41", "CPU part": part})
    width, why = cpu_target.fma_bits_per_cycle("scalar", root)
    assert width == bits and "Neoverse" in why


def test_an_unknown_aarch64_core_is_said_to_be_assumed(tmp_path):
    root = _cpuinfo(tmp_path, {"CPU implementer": "0x61", "CPU part": "0x039"})
    width, why = cpu_target.fma_bits_per_cycle("scalar", root)
    assert width == 256 and "assumed" in why


@pytest.mark.parametrize("avx512, units", [(0.95, 1), (1.25, 1), (1.45, 2), (1.9, 2)])
def test_intel_512_bit_fma_units_are_inferred_from_the_measured_peak(tmp_path, avx512, units):
    root = _cpuinfo(tmp_path, {"vendor_id": "GenuineIntel", "cpu family": "6"})
    measured = {"avx2": {"fp32": 1.0}, "avx512": {"fp32": avx512}}
    width, why = cpu_target.fma_bits_per_cycle("avx512", root, measured)
    assert width == units * 512 and f"{units} 512-bit FMA unit" in why


def test_amd_zen4_and_zen5_avx512_width(tmp_path):
    assert cpu_target.fma_bits_per_cycle("avx512", _cpuinfo(tmp_path, {"vendor_id": "AuthenticAMD", "cpu family": "25"}),
                                         {})[0] == 512
    assert cpu_target.fma_bits_per_cycle("avx512", _cpuinfo(tmp_path, {"vendor_id": "AuthenticAMD", "cpu family": "26"}),
                                         {})[0] == 1024


def test_without_both_measurements_no_unit_count_is_inferred():
    assert cpu_target.infer_fma_units_512({"avx2": {"fp32": 1.0}}) is None


# ---- AMX and int8 units -----------------------------------------------------------------------

@pytest.mark.parametrize("dtype, flag, ops, unit", [("bf16", "amx_bf16", 1024, "TFLOP/s"), ("int8", "amx_int8", 2048, "TOPS")])
def test_amx_counts_for_bf16_and_int8_where_the_cpu_has_it(monkeypatch, dtype, flag, ops, unit):
    monkeypatch.setattr(cpu_target, "cpu_flags", lambda: frozenset({"avx512f", "amx_tile", flag}))
    monkeypatch.setattr(cpu_target, "physical_cores", lambda: 56)
    monkeypatch.setattr(cpu_target, "measured_clock_ghz", lambda: 2.0)
    peak = cpu_target.cpu_peak_tflops(dtype)
    assert peak["value"] == pytest.approx(56 * ops * 2.0e9 / 1e12) and peak["unit"] == unit and "AMX" in peak["source"]


def test_without_amx_bf16_is_the_vector_peak_and_int8_is_in_tops(monkeypatch):
    monkeypatch.setattr(cpu_target, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    monkeypatch.setattr(cpu_target, "measured_clock_ghz", lambda: 2.0)
    assert "AMX" not in cpu_target.cpu_peak_tflops("bf16")["source"]
    assert cpu_target.cpu_peak_tflops("int8")["unit"] == "TOPS"


# ---- measured FMA peak --------------------------------------------------------------------------

def test_the_fma_peak_runs_every_isa_this_cpu_has():
    isas = _core.fma_peak_isas()
    assert isas and set(isas) <= {"avx2", "avx512", "neon"}
    for isa in isas:
        for dtype, lanes in (("fp32", 2), ("fp64", 1)):
            r = _core.measure_fma_peak(isa, dtype, 1)
            assert r["gflops"] > 0 and r["threads"] == _core.default_threads()
            assert r["lanes"] == lanes * {"avx2": 4, "avx512": 8, "neon": 2}[isa]


@pytest.mark.parametrize("isa, dtype, windows, threads",
                         [("sse", "fp32", 1, 0), ("avx2", "bf16", 1, 0), (None, "fp32", 0, 0), (None, "fp32", 1, -1)])
def test_the_fma_peak_refuses_what_it_cannot_run(isa, dtype, windows, threads):
    with pytest.raises(ValueError):
        _core.measure_fma_peak(isa or _core.fma_peak_isas()[0], dtype, windows, threads)


def test_the_fma_peak_runs_on_the_threads_asked_for():
    assert _core.measure_fma_peak(_core.fma_peak_isas()[0], "fp32", 1, 1)["threads"] == 1


def test_the_fma_peak_refuses_an_isa_this_cpu_lacks():
    missing = [isa for isa in ("avx2", "avx512") if isa not in _core.fma_peak_isas()]
    if not missing:
        pytest.skip("this CPU runs every x86 FMA loop")
    with pytest.raises(ValueError, match="cannot run"):
        _core.measure_fma_peak(missing[0], "fp32", 1)


# ---- GPU peaks: exact names and PCI IDs ---------------------------------------------------------

def test_h200_nvl_does_not_get_the_h200_sxm_peaks():
    assert peaks.gpu_peak("NVIDIA H200 NVL", "bf16")["value"] == 835.5
    assert peaks.gpu_peak("NVIDIA H200", "bf16")["value"] == 989
    assert peaks.gpu_row("NVIDIA H200 NVL").model == "H200 NVL"


def test_gb200_does_not_get_the_b200_peaks():
    assert peaks.gpu_peak("NVIDIA GB200", "bf16")["value"] == 2500
    assert peaks.gpu_peak("NVIDIA B200", "bf16")["value"] == 2250


def test_unknown_or_partial_names_get_no_peaks():
    for name in ("Some Future GPU", "NVIDIA H200 NVL 2", "H200", "NVIDIA H100", "NVIDIA A100"):
        assert peaks.gpu_peak(name, "bf16") is None, name
    assert peaks.gpu_peak("NVIDIA L40S", "fp64") is None  # no datasheet figure


def test_names_match_whatever_their_case_and_spacing():
    assert peaks.gpu_peak("nvidia  h100 80gb hbm3", "tf32")["value"] == 494.5


def test_the_pci_id_wins_over_the_name():
    # An H200 NVL whose driver reports a bare "NVIDIA H200" is still found by its PCI ID.
    assert peaks.gpu_peak("NVIDIA H200", "fp8", "10de:233b")["value"] == 1670.5
    assert peaks.gpu_peak("NVIDIA H200", "fp8", "10de:ffff")["value"] == 1979  # unknown ID: the name


def test_int8_peaks_are_in_tops():
    assert peaks.gpu_peak("NVIDIA A100-SXM4-80GB", "int8")["unit"] == "TOPS"
    assert peaks.gpu_peak("NVIDIA A100-SXM4-80GB", "bf16")["unit"] == "TFLOP/s"


def test_every_row_has_names_ids_and_dense_peaks_in_order():
    for row in peaks.GPU_ROWS:
        assert row.names and row.pci_ids and all(len(i) == 9 and i[4] == ":" for i in row.pci_ids)
        p = row.peaks
        assert p["bf16"] == p["fp16"] and p["tf32"] <= p["bf16"] and p.get("fp8", p["int8"]) == p["int8"]
    ids = [i for row in peaks.GPU_ROWS for i in row.pci_ids]
    names = [n.lower() for row in peaks.GPU_ROWS for n in row.names]
    assert len(ids) == len(set(ids)) and len(names) == len(set(names))


def test_pci_id_from_sysfs(tmp_path):
    _write(tmp_path, "sys/bus/pci/devices/0000:19:00.0/vendor", "0x10de\n")
    _write(tmp_path, "sys/bus/pci/devices/0000:19:00.0/device", "0x233b\n")
    assert peaks.pci_id_of("00000000:19:00.0", str(tmp_path)) == "10de:233b"  # CUDA's 8-digit domain
    assert peaks.pci_id_of("0000:19:00.0", str(tmp_path)) == "10de:233b"
    assert peaks.pci_id_of("0000:1a:00.0", str(tmp_path)) is None
    assert peaks.pci_id_of("", str(tmp_path)) is None
