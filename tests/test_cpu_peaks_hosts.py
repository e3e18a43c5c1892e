"""CPU peaks and bounds on hosts we do not have, in process and fast: the inputs the peak
functions read (CPU flags, vendor and family, the aarch64 core, cores, measured clock, the
C++ core's ISA paths and FMA loop rates) are simulated, and every expected figure is the
datasheet arithmetic cores x GHz x FMA units x lanes x 2 written out here. These are the
tests scripts/mutation_test.py runs against aibench.targets.cpu's mutants (targets.toml).

Hosts (clock: the base clock, standing in for the measured one):
- Intel Xeon Platinum 8480+ (Sapphire Rapids): 56 cores, 2.0 GHz base, two AVX-512 FMA
  units, AMX (Intel ARK; AMX 1024 bf16 / 2048 int8 ops per cycle per core: Intel 64 and
  IA-32 Architectures Optimization Reference Manual, "Intel AMX").
- Intel Xeon Silver 4310 (Ice Lake): 12 cores, 2.1 GHz base, one AVX-512 FMA unit (Intel ARK).
- Intel Xeon E-2288G (Coffee Lake): 8 cores, 3.7 GHz base, AVX2 only (Intel ARK).
- AMD EPYC 7763 (Zen 3, Milan): 64 cores, 2.45 GHz base, AVX2 on two 256-bit FMA pipes
  (AMD Software Optimization Guide for Family 19h).
- AWS Graviton3 (Arm Neoverse V1, SVE): 64 cores, 2.6 GHz (AWS c7g), four 128-bit FMA
  pipes (two 256-bit SVE) (Arm Neoverse V1 Software Optimization Guide).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest

from aibench.targets import cpu as cpu_target


@dataclass
class FakeCore:
    """The few entry points of aibench._core the peak functions call. `rates`:
    (isa, dtype) -> (GFLOP/s of the loop on every CPU, GFLOP/s on one thread); a loop of
    more than 100 windows (a fresh measurement) runs `fresh_gain` times faster."""

    best: str
    loops: list[str]
    lowp: dict[str, list[str]]
    rates: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    threads: int = 1
    fresh_gain: float = 1.0
    calls: list[tuple] = field(default_factory=list)

    def best_isa(self):
        return self.best

    def fma_peak_isas(self):
        return list(self.loops)

    def lowp_paths(self, dtype):
        return list(self.lowp[dtype])

    def default_threads(self):
        return self.threads

    def measure_fma_peak(self, isa, dtype, windows=20, threads=0):
        self.calls.append((isa, dtype, windows, threads))
        every_cpu, one_thread = self.rates[(isa, dtype)]
        return {"gflops": (one_thread if threads == 1 else every_cpu) * (self.fresh_gain if windows > 100 else 1.0)}


@dataclass
class Host:
    flags: set[str]
    vendor: str
    family: int | None
    cores: int
    ghz: float
    core: FakeCore
    arm: tuple[int, int] | None = None
    one_core: dict = field(default_factory=dict)  # {isa: {"fp32": GFLOP/s}}, one thread


def sapphire_rapids(rates=None) -> Host:
    return Host({"avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16", "amx_int8"},
                "GenuineIntel", 6, 56, 2.0,
                FakeCore("avx512", ["avx2", "avx512"], {"bf16": ["avx512_bf16", "avx512", "avx2", "scalar"],
                                                          "int8": ["avx512_vnni", "avx512", "avx2", "scalar"]},
                         rates or {}, threads=112),
                one_core={"avx2": {"fp32": 100.0}, "avx512": {"fp32": 180.0}})


def xeon_silver_4310() -> Host:
    return Host({"avx2", "fma", "avx512f"}, "GenuineIntel", 6, 12, 2.1,
                FakeCore("avx512", ["avx2", "avx512"], {"bf16": ["avx512"], "int8": ["avx512"]}),
                one_core={"avx2": {"fp32": 100.0}, "avx512": {"fp32": 95.0}})


def xeon_e2288g(rates=None) -> Host:
    return Host({"avx2", "fma"}, "GenuineIntel", 6, 8, 3.7,
                FakeCore("avx2", ["avx2"], {"bf16": ["avx2"], "int8": ["avx2"]}, rates or {}, threads=16),
                one_core={"avx2": {"fp32": 110.0}})


def epyc_7763(rates=None) -> Host:
    return Host({"avx2", "fma"}, "AuthenticAMD", 0x19, 64, 2.45,
                FakeCore("avx2", ["avx2"], {"bf16": ["avx2", "scalar"], "int8": ["avx2", "scalar"]}, rates,
                         threads=64))


def graviton3(rates=None) -> Host:
    return Host({"fp", "asimd", "sve", "bf16", "i8mm"}, "aarch64", None, 64, 2.6,
                FakeCore("scalar", ["neon"], {"bf16": ["scalar"], "int8": ["scalar"]}, rates or {}, threads=64),
                arm=(0x41, 0xD40))


# Datasheet peaks, TFLOP/s (TOPS for int8): cores x GHz x FMA lanes per cycle x 2 / 1000.
SPR_FP32 = 56 * 2.0 * (2 * 512 // 32) * 2 / 1e3  # two 512-bit FMA units: 32 fp32 lanes per cycle
SPR_FP64 = 56 * 2.0 * (2 * 512 // 64) * 2 / 1e3
SPR_AVX2_FP32 = 56 * 2.0 * (2 * 256 // 32) * 2 / 1e3
SPR_AMX_BF16 = 56 * 2.0 * 1024 / 1e3  # 1024 bf16 FLOPs per cycle per core
SPR_AMX_INT8 = 56 * 2.0 * 2048 / 1e3
SILVER_FP32 = 12 * 2.1 * (1 * 512 // 32) * 2 / 1e3  # one 512-bit FMA unit
E2288G_FP32 = 8 * 3.7 * (2 * 256 // 32) * 2 / 1e3
ZEN3_FP32 = 64 * 2.45 * (2 * 256 // 32) * 2 / 1e3  # two 256-bit FMA pipes
ZEN3_FP64 = 64 * 2.45 * (2 * 256 // 64) * 2 / 1e3
V1_FP32 = 64 * 2.6 * (4 * 128 // 32) * 2 / 1e3  # four 128-bit FMA pipes
V1_FP64 = 64 * 2.6 * (4 * 128 // 64) * 2 / 1e3


@pytest.fixture
def on(monkeypatch):
    """on(host): this process sees `host`'s CPU until the test ends."""
    def simulate(host: Host) -> FakeCore:
        monkeypatch.setattr(cpu_target, "cpu_flags", lambda: frozenset(host.flags))
        monkeypatch.setattr(cpu_target, "cpu_vendor_family", lambda root="/": (host.vendor, host.family))
        monkeypatch.setattr(cpu_target, "arm_core", lambda root="/": host.arm)
        monkeypatch.setattr(cpu_target, "physical_cores", lambda: host.cores)
        monkeypatch.setattr(cpu_target, "measured_clock_ghz", lambda: host.ghz)
        monkeypatch.setattr(cpu_target, "one_core_fma_rates", lambda: host.one_core)
        monkeypatch.setattr(cpu_target, "_core", host.core)
        monkeypatch.setattr(cpu_target, "_LOOP_RATES", {})
        cpu_target.measured_fma_peak.cache_clear()
        return host.core

    yield simulate
    cpu_target.measured_fma_peak.cache_clear()


def _peak(dtype, isa=None):
    p = cpu_target.cpu_peak_tflops(dtype, isa)
    return p and {**p, "value": pytest.approx(p["value"], rel=1e-12)}


def _expect(value, unit, source, dtype, isa):
    return {"value": pytest.approx(value, rel=1e-12), "unit": unit, "source": source, "kind": "cpu", "dtype": dtype,
            "isa": isa}


# ---- theoretical peaks --------------------------------------------------------------------


def test_sapphire_rapids_bf16_and_int8_peaks_are_amx(on):
    on(sapphire_rapids())
    assert _peak("bf16") == _expect(SPR_AMX_BF16, "TFLOP/s", "56 cores x 1024 bf16 ops/cycle (AMX TDPBF16PS) x 2.000 GHz",
                                    "bf16", "amx_bf16")
    assert _peak("int8") == _expect(SPR_AMX_INT8, "TOPS", "56 cores x 2048 int8 ops/cycle (AMX TDPBSSD) x 2.000 GHz",
                                    "int8", "amx_int8")


def test_sapphire_rapids_vector_peaks_with_two_fma_units(on):
    on(sapphire_rapids())
    why = "Intel AVX-512: 2 512-bit FMA unit(s), inferred from the measured avx512/avx2 FMA rate 1.80"
    assert _peak("fp32") == _expect(SPR_FP32, "TFLOP/s", f"56 cores x 32 FMA lanes/cycle x 2 x 2.000 GHz ({why})",
                                    "fp32", "avx512")
    assert _peak("fp64")["value"] == pytest.approx(SPR_FP64, rel=1e-12)
    assert _peak("fp32", "avx2") == _expect(SPR_AVX2_FP32, "TFLOP/s",
                                            "56 cores x 16 FMA lanes/cycle x 2 x 2.000 GHz (AVX2: two 256-bit FMA units)",
                                            "fp32", "avx2")


def test_a_named_lowp_path_on_an_amx_host_is_that_paths_peak(on):
    on(sapphire_rapids())
    assert _peak("bf16", "avx512_bf16") == _expect(
        2 * SPR_FP32, "TFLOP/s", "2 x the fp32 peak (VDPBF16PS: 2 bf16 products per fp32 lane): 56 cores x 32 FMA "
        "lanes/cycle x 2 x 2.000 GHz (Intel AVX-512: 2 512-bit FMA unit(s), inferred from the measured avx512/avx2 "
        "FMA rate 1.80)", "bf16", "avx512_bf16")
    assert _peak("int8", "avx512_vnni")["value"] == pytest.approx(4 * SPR_FP32, rel=1e-12)
    # int8 on the avx512 level widens on the avx2 VPMADDWD kernel: twice the avx2 fp32 peak
    assert _peak("int8", "avx512")["value"] == pytest.approx(2 * SPR_AVX2_FP32, rel=1e-12)


def test_amx_for_one_dtype_only_where_the_cpu_has_its_flag(on):
    host = sapphire_rapids()
    host.flags -= {"amx_int8"}
    on(host)
    assert _peak("bf16")["isa"] == "amx_bf16"
    int8 = _peak("int8")  # the best vector path: VPDPBUSD, 4 x the fp32 peak
    assert (int8["isa"], int8["value"], int8["unit"]) == ("avx512_vnni", pytest.approx(4 * SPR_FP32, rel=1e-12), "TOPS")


def test_a_xeon_with_one_avx512_fma_unit(on):
    on(xeon_silver_4310())
    p = _peak("fp32")
    assert p["value"] == pytest.approx(SILVER_FP32, rel=1e-12)
    assert p["source"].endswith("(Intel AVX-512: 1 512-bit FMA unit(s), inferred from the measured avx512/avx2 FMA "
                                "rate 0.95)")


def test_zen3_avx2_only_peaks_and_widening_lowp_paths(on):
    on(epyc_7763())
    zen = "(AVX2: two 256-bit FMA units)"
    assert _peak("fp32") == _expect(ZEN3_FP32, "TFLOP/s", f"64 cores x 16 FMA lanes/cycle x 2 x 2.450 GHz {zen}",
                                    "fp32", "avx2")
    assert _peak("fp64")["value"] == pytest.approx(ZEN3_FP64, rel=1e-12)
    # bf16 widened to fp32 runs at the fp32 peak; no AMX flag, so no AMX peak
    assert _peak("bf16") == _expect(ZEN3_FP32, "TFLOP/s", f"64 cores x 16 FMA lanes/cycle x 2 x 2.450 GHz {zen}",
                                    "bf16", "avx2")
    assert _peak("int8") == _expect(
        2 * ZEN3_FP32, "TOPS", "2 x the fp32 peak (int8 widened to int16, VPMADDWD: 2 int16 products per int32 "
        f"lane): 64 cores x 16 FMA lanes/cycle x 2 x 2.450 GHz {zen}", "int8", "avx2")


def test_graviton3_neoverse_v1_peaks(on):
    on(graviton3())
    why = "(Arm Neoverse V1 (Graviton3): four 128-bit (two 256-bit SVE) FMA pipes)"
    assert _peak("fp32") == _expect(V1_FP32, "TFLOP/s", f"64 cores x 16 FMA lanes/cycle x 2 x 2.600 GHz {why}",
                                    "fp32", "scalar")
    assert _peak("fp64")["value"] == pytest.approx(V1_FP64, rel=1e-12)
    assert _peak("bf16")["isa"] == "scalar" and _peak("bf16")["value"] == pytest.approx(V1_FP32, rel=1e-12)


def test_a_dtype_without_an_fma_path_has_no_peak_and_no_bound(on):
    on(sapphire_rapids())
    assert cpu_target.cpu_peak_tflops("fp16") is None
    assert cpu_target.compute_bound("fp16") is None


# ---- the measured FMA peak and its report -------------------------------------------------


def test_the_measured_fma_peak_is_every_loop_in_tflops(on):
    on(epyc_7763({("avx2", "fp32"): (4800.0, 80.0), ("avx2", "fp64"): (2400.0, 40.0)}))
    assert cpu_target.measured_fma_peak() == {"avx2": {"fp32": 4.8, "fp64": 2.4}}


def test_the_fma_peak_report_of_an_intel_avx512_host(on):
    on(sapphire_rapids({("avx2", "fp32"): (3400.0, 0), ("avx2", "fp64"): (1700.0, 0),
                          ("avx512", "fp32"): (6800.0, 0), ("avx512", "fp64"): (3400.0, 0)}))
    report = cpu_target.fma_peak_report()
    assert report["threads"] == 112
    assert report["fma_units_512"] == {"units": 2, "avx512_over_avx2": 1.8}
    for isa, dtype, measured, theory in (("avx2", "fp32", 3.4, SPR_AVX2_FP32), ("avx2", "fp64", 1.7, SPR_AVX2_FP32 / 2),
                                         ("avx512", "fp32", 6.8, SPR_FP32), ("avx512", "fp64", 3.4, SPR_FP64)):
        assert report[isa][dtype] == {"measured_tflops": measured, "theoretical_tflops": pytest.approx(theory),
                                      "ratio": pytest.approx(measured / theory)}


def test_the_fma_peak_report_names_no_512_bit_units_off_intel_avx512(on):
    on(epyc_7763({("avx2", "fp32"): (4800.0, 0), ("avx2", "fp64"): (2400.0, 0)}))
    report = cpu_target.fma_peak_report()
    assert set(report) == {"threads", "avx2"}
    assert report["avx2"]["fp32"]["ratio"] == pytest.approx(4.8 / ZEN3_FP32)
    on(xeon_e2288g({("avx2", "fp32"): (900.0, 0), ("avx2", "fp64"): (450.0, 0)}))
    report = cpu_target.fma_peak_report()
    assert set(report) == {"threads", "avx2"} and report["threads"] == 16
    assert report["avx2"]["fp32"]["theoretical_tflops"] == pytest.approx(E2288G_FP32)


def test_the_fma_peak_report_of_an_aarch64_host(on):
    on(graviton3({("neon", "fp32"): (5000.0, 0), ("neon", "fp64"): (2500.0, 0)}))
    report = cpu_target.fma_peak_report()
    assert report["neon"]["fp32"] == {"measured_tflops": 5.0, "theoretical_tflops": pytest.approx(V1_FP32),
                                      "ratio": pytest.approx(5.0 / V1_FP32)}
    assert report["neon"]["fp64"]["theoretical_tflops"] == pytest.approx(V1_FP64)


# ---- the bound of a compute figure ----------------------------------------------------------


def test_the_bound_is_the_measured_loop_of_the_paths_instructions(on):
    core = on(sapphire_rapids({("avx512", "fp32"): (6800.0, 110.0), ("avx2", "fp32"): (3400.0, 65.0)}))
    bound = cpu_target.compute_bound("fp32")
    assert bound == {"value": pytest.approx(1.05 * 6.8), "unit": "TFLOP/s",
                     "source": "1.05 x the measured FMA rate of the path's instructions: 6.8 TFLOP/s of the avx512 fp32 "
                               "FMA loop on the 56 allowed core(s) (fp32 FMA)"}
    assert core.calls == [("avx512", "fp32", 100, 0), ("avx512", "fp32", 100, 1)]
    # the one-thread loop times the cores, when it is the higher (a busy machine)
    assert cpu_target.compute_bound("fp32", "avx2")["value"] == pytest.approx(1.05 * 56 * 0.065)


def test_the_bound_of_a_lowp_path_is_its_factor_times_the_fp32_loop(on):
    on(sapphire_rapids({("avx512", "fp32"): (6800.0, 0), ("avx2", "fp32"): (3400.0, 0)}))
    bound = cpu_target.compute_bound("int8", "avx512_vnni")
    assert (bound["value"], bound["unit"]) == (pytest.approx(1.05 * 4 * 6.8), "TOPS")
    assert bound["source"] == ("1.05 x the measured FMA rate of the path's instructions: 4 x 6.8 TFLOP/s of the avx512 "
                               "fp32 FMA loop on the 56 allowed core(s) (VPDPBUSD: 4 int8 products per int32 lane)")
    assert cpu_target.compute_bound("int8", "avx512")["value"] == pytest.approx(1.05 * 2 * 3.4)


def test_the_bound_of_amx_is_the_theoretical_amx_peak(on):
    on(sapphire_rapids())
    bound = cpu_target.compute_bound("bf16")
    assert bound == {"value": pytest.approx(1.05 * SPR_AMX_BF16), "unit": "TFLOP/s",
                     "source": "1.05 x the theoretical AMX peak (no measured loop runs AMX): 56 cores x 1024 bf16 "
                               "ops/cycle (AMX TDPBF16PS) x 2.000 GHz"}
    assert cpu_target.compute_bound("int8")["value"] == pytest.approx(1.05 * SPR_AMX_INT8)


def test_a_path_narrower_than_every_loop_is_bounded_by_the_narrowest(on):
    on(sapphire_rapids({("avx512", "fp32"): (6800.0, 0), ("avx2", "fp32"): (3400.0, 0)}))
    bound = cpu_target.compute_bound("fp32", "scalar")
    assert bound["value"] == pytest.approx(1.05 * 3.4) and "of the avx2 fp32 FMA loop" in bound["source"]


def test_a_fresh_bound_measures_again_and_keeps_the_best(on):
    host = epyc_7763({("avx2", "fp32"): (4800.0, 0)})
    host.core.fresh_gain = 1.02
    on(host)
    assert cpu_target.compute_bound("fp32")["value"] == pytest.approx(1.05 * 4.8)
    assert cpu_target.compute_bound("fp32", fresh=True)["value"] == pytest.approx(1.05 * 4.8 * 1.02)
    assert cpu_target.compute_bound("fp32")["value"] == pytest.approx(1.05 * 4.8 * 1.02)  # later cases keep it


def test_a_loop_above_its_theoretical_peak_refuses_the_peak(on):
    on(graviton3({("neon", "fp32"): (6000.0, 0)}))
    bound = cpu_target.compute_bound("fp32")
    assert bound["value"] == pytest.approx(1.05 * 6.0)
    assert bound["refused"] == (
        f"measured neon fp32 FMA loop 6 TFLOP/s > {1.1 * V1_FP32:.4g} TFLOP/s (1.1 x the theoretical peak 64 cores x "
        "16 FMA lanes/cycle x 2 x 2.600 GHz (Arm Neoverse V1 (Graviton3): four 128-bit (two 256-bit SVE) FMA pipes)): "
        "the theoretical peak is refused (a wrong clock or lane count)")


def test_a_loop_at_exactly_the_tolerance_over_its_peak_is_not_refused(on):
    on(epyc_7763())
    peak = cpu_target.cpu_peak_tflops("fp32", "avx2")["value"]
    assert peak == pytest.approx(ZEN3_FP32, rel=1e-12)
    limit = cpu_target.FMA_OVER_THEORY * peak
    gflops = limit * 1e3
    while gflops / 1e3 > limit:  # the loop's TFLOP/s exactly at the limit, not a rounding above it
        gflops = math.nextafter(gflops, 0)
    assert gflops / 1e3 == limit
    on(epyc_7763({("avx2", "fp32"): (gflops, 0)}))
    assert "refused" not in cpu_target.compute_bound("fp32")
    on(epyc_7763({("avx2", "fp32"): (gflops * 1.000001, 0)}))
    assert "refused" in cpu_target.compute_bound("fp32")
