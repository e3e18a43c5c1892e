"""Every GPU path of aibench through the device double (tests/gpu_double) on a CPU: the
cuda target's gemm, attention and power suites, NVML telemetry, `aibench info` and
`aibench accept` with GPUs, and every fault kind on each CUDA impl. Figures are checked
against the kernel times the double was told (a factor slip fails). The CLI runs in
process (aibench.cli.main), so the fake modules are the ones it imports."""

import dataclasses
import json
import pathlib
import re
import socket
import subprocess
import sys

import pytest

from aibench import harness, session
from aibench.cli import main
from aibench.peaks import gpu_peak
from gpu_double import GpuSpec, boards, install
from mpi_helpers import clean_env, mpiexec, needs_mpi

FAST = ["--time-budget", "0.05", "--no-asv"]
GEMM_SHAPE = {"m": 64, "n": 48, "k": 32}
ALL_GEMM_DTYPES = ("fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8")
ATTENTION = ["--param", "batch=1", "--param", "heads=2", "--param", "kv_heads=1", "--param", "seqlen=24",
             "--param", "kv_seqlen=24", "--param", "head_dim=64"]


@dataclasses.dataclass(frozen=True)
class QuickPolicy(harness.SamplingPolicy):
    """No idle settling between impls (it lets CPU libraries' threads spin down: the
    double has none) and a short warm-up; the sampling rule is the real one."""

    settle_s: float = 0.0
    warmup_s: float = 0.005


def quick_sampling(monkeypatch, policy=QuickPolicy) -> None:
    """`aibench run` in this test samples under `policy` (session.py builds the run's)."""
    monkeypatch.setattr(session, "SamplingPolicy", policy)


@pytest.fixture
def gpus(monkeypatch):
    quick_sampling(monkeypatch)
    monkeypatch.delenv("AIBENCH_TEST_FAULT", raising=False)
    return install(monkeypatch)


@pytest.fixture(params=["double", pytest.param("real", marks=pytest.mark.gpu)])
def device(request, monkeypatch):
    """The device double, or (marked gpu: where a GPU is, scripts/gpu_check.sh) the real
    GPU, libraries and driver: the same test then checks that the double behaves as the
    real thing does, and the real thing as the double predicts (figures within the peak
    instead of the told ones)."""
    quick_sampling(monkeypatch)
    monkeypatch.delenv("AIBENCH_TEST_FAULT", raising=False)
    if request.param == "real":
        from aibench.targets import cuda as cu

        cu.cuda_module.cache_clear()
        cu.device_properties.cache_clear()
        return None
    return install(monkeypatch)


def check_figure(device, case, metric, told):
    """On the double, the figure is exactly what the told times give; on a GPU, positive
    and within the datasheet peak."""
    value = case["metrics"][metric]["value"]
    if device is not None:
        assert value == pytest.approx(told, rel=1e-9), (case["impl"], case["case_id"])
    else:
        assert value > 0 and (case["percent_of_peak"] is None or case["percent_of_peak"] <= 100)


def gemm_args(shape=GEMM_SHAPE, dtypes=("bf16",)):
    args = ["--suite", "gemm"]
    for key, value in shape.items():
        args += ["--param", f"{key}={value}"]
    return args + ["--param", "dtype=" + ",".join(dtypes)]


def run_cuda(tmp_path, *args):
    out = tmp_path / "run.json"
    code = main(["run", "--target", "cuda", *args, *FAST, "--output", str(out)])
    return code, json.loads(out.read_text())


def by_status(doc, status):
    return [c for c in doc["cases"] if c["status"] == status]


def test_gemm_every_dtype_and_impl_validates_at_the_told_rate(device, tmp_path):
    if device is not None:
        device.kernel_seconds["gemm"] = 1e-3
    code, doc = run_cuda(tmp_path, *gemm_args(dtypes=ALL_GEMM_DTYPES))
    assert not [(c["impl"], c["case_id"], c["error"]) for c in by_status(doc, "failed")] and code == 0
    passed = {(c["impl"], c["params"]["dtype"]) for c in by_status(doc, "passed")}
    assert passed == ({("cublas", d) for d in ALL_GEMM_DTYPES} | {("torch", d) for d in ALL_GEMM_DTYPES}
                      | {("aibench", "bf16"), ("aibench", "fp16")}
                      | {("cupy", d) for d in ("fp64", "fp32", "tf32", "fp16")})
    flops = 2 * 64 * 48 * 32
    for c in by_status(doc, "passed"):
        check_figure(device, c, "time_us", 1000.0)
        check_figure(device, c, "tflops", flops / 1e-3 / 1e12)
        assert c["impl_detail"]["timing"]["clock"].startswith("CUDA events")
        if device is None:
            continue
        dtype = c["params"]["dtype"]
        assert c["peak"]["value"] == gpu_peak("NVIDIA H200", dtype)["value"]
        assert c["percent_of_peak"] == pytest.approx(100 * flops / 1e-3 / 1e12 / c["peak"]["value"], rel=1e-9)
        assert c["telemetry"]["start"]["sm_clock_mhz"] == 1980 and c["telemetry"]["throttled"] is False
    skipped = {(c["impl"], c["params"]["dtype"]): c["validation"]["reason"] for c in by_status(doc, "skipped")}
    assert "covers bf16 and fp16" in skipped[("aibench", "fp32")]
    assert "no fp8 matmul" in skipped[("cupy", "fp8")]


def test_an_l2_flush_inside_the_timed_interval_would_show(gpus, tmp_path):
    """The flush is timed out: telling the double a slow flush leaves the figures alone."""
    gpus.kernel_seconds.update(gemm=1e-3, flush=7e-3, fill=5e-3)
    code, doc = run_cuda(tmp_path, *gemm_args(dtypes=("fp16",)))
    assert code == 0 and {c["impl"] for c in by_status(doc, "passed")} == {"cublas", "aibench", "cupy", "torch"}
    assert all(c["metrics"]["time_us"]["value"] == pytest.approx(1000.0, rel=1e-9) for c in by_status(doc, "passed"))
    assert gpus.count("flush") > 0  # the own ops flushed before their launches


def test_peak_found_by_pci_id_when_the_name_is_unknown(monkeypatch, tmp_path):
    quick_sampling(monkeypatch)
    from gpu_double import SimulatedGpus

    install(monkeypatch, SimulatedGpus([GpuSpec(name="NVIDIA Graphics Device")]))  # H200's PCI ID, a sample's name
    code, doc = run_cuda(tmp_path, *gemm_args(dtypes=("bf16",)), "--impl", "cublas")
    (case,) = doc["cases"]
    assert code == 0 and case["peak"]["source"].startswith("datasheet dense peak, H200 SXM")
    assert doc["system"]["gpus"]["devices"][0]["pci_id"] == "10de:2335"


def test_attention_impls_validate_at_the_told_rate(device, tmp_path):
    if device is not None:
        device.kernel_seconds["attention"] = 2e-3
    code, doc = run_cuda(tmp_path, "--suite", "attention", *ATTENTION, "--param", "dtype=bf16,fp16",
                         "--param", "causal=false,true")
    assert not [(c["impl"], c["case_id"], c["error"]) for c in by_status(doc, "failed")] and code == 0
    passed = by_status(doc, "passed")
    assert {(c["impl"], c["params"]["dtype"]) for c in passed} == {
        (i, d) for i in ("aibench", "torch") for d in ("bf16", "fp16")}
    from aibench.suites.attention.common import attention_flops

    for c in passed:
        check_figure(device, c, "time_us", 2000.0)
        check_figure(device, c, "tflops", attention_flops(c["params"]) / 2e-3 / 1e12)
        assert "timing" in c["impl_detail"]


def test_attention_poison_is_synchronised_before_the_timed_call(gpus, tmp_path):
    """The poison fill of the output and the own kernel may sit on different streams:
    a synchronisation must come between them (the fix of the unreachable synchronize)."""
    code, doc = run_cuda(tmp_path, "--suite", "attention", *ATTENTION, "--param", "dtype=fp16",
                         "--param", "causal=false", "--impl", "aibench")
    assert code == 0 and by_status(doc, "passed")
    o_bytes = 1 * 2 * 24 * 64 * 2
    poison = [i for i, (what, detail) in enumerate(gpus.log) if what == "fill" and detail.startswith(f"{o_bytes} bytes")]
    assert poison  # the check poisoned the output
    for i in poison:
        after = next(what for what, _ in gpus.log[i + 1:] if what in ("sync", "flush", "attention"))
        assert after == "sync", gpus.log[i: i + 4]


def test_throttle_and_power_cap_reach_the_case_and_the_table(gpus, tmp_path, capsys):
    gpus.specs[0].clock_event_reasons = 0x4 | 0x40  # SwPowerCap + HwThermalSlowdown
    code, doc = run_cuda(tmp_path, *gemm_args(dtypes=("fp16",)), "--impl", "cublas")
    (case,) = doc["cases"]
    assert code == 0 and case["telemetry"]["throttled"] is True and case["telemetry"]["power_capped"] is True
    assert case["telemetry"]["start"]["throttle_reasons"] == ["hw_thermal"]
    assert "THROTTLED" in capsys.readouterr().out
    gpus.specs[0].clock_event_reasons = 0x4
    code, doc = run_cuda(tmp_path, *gemm_args(dtypes=("fp16",)), "--impl", "cublas")
    (case,) = doc["cases"]
    assert case["telemetry"]["throttled"] is False and case["telemetry"]["power_capped"] is True
    assert "at power cap" in capsys.readouterr().out


@pytest.mark.parametrize("impl", ["cublas", "aibench", "cupy", "torch"])
def test_power_suite_joules_per_tflop_is_the_gemms_alone(gpus, tmp_path, impl):
    """The L2 flush before each timed launch draws power too (told: 0.5 ms a flush at the
    same 400 W): the window runs the launches without it, so J/TFLOP is the GEMM's alone
    (with the flushes it would be 1.5x). Each impl's timer: C++ time_op and event_timer."""
    gpus.kernel_seconds.update(gemm=1e-3, flush=5e-4)
    gpus.specs[0].power_mw = 400_000
    code, doc = run_cuda(tmp_path, "--suite", "power", "--param", "m=64", "--param", "n=48", "--param", "k=32",
                         "--param", "dtype=fp16", "--impl", impl, "--power-window", "0.2")
    (case,) = doc["cases"]
    assert code == 0 and case["status"] == "passed", case["error"]
    assert case["metrics"]["time_us"]["value"] == pytest.approx(1000.0, rel=1e-9)  # the flush is timed out
    power = case["power"]
    primary = power["primary"]
    assert primary["sources"] == ["nvml (gpu board: GPU 0 NVIDIA H200)"]
    tflop = 2 * 64 * 48 * 32 / 1e12
    assert primary["joules_per_tflop"] == pytest.approx(400.0 * 1e-3 / tflop, rel=1e-6)
    assert power["sustained_tflops"] == pytest.approx(tflop / 1e-3, rel=1e-9)
    assert power["window_s"] == pytest.approx(power["repetitions"] * 1e-3, rel=1e-9)
    assert primary["idle_watts"] == 0.0  # the double's board draws only while it computes


def test_power_falls_back_to_sampled_power_without_the_energy_counter(gpus):
    from aibench.energy import nvml

    gpus.specs[0].energy_counter = False
    meters, reasons = nvml.discover(0, gpus.specs[0].pci_bus_id)
    assert [type(m).__name__ for m in meters] == ["NvmlPower"] and not reasons
    assert meters[0].read_watts() == 350.0


def test_info_with_gpus(gpus, capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    (dev,) = info["gpus"]["devices"]
    assert dev["name"] == "NVIDIA H200" and dev["pci_id"] == "10de:2335"
    assert dev["peak_tflops"]["bf16"]["value"] == gpu_peak("NVIDIA H200", "bf16")["value"]
    assert dev["nvml"] == {"power_limit_w": 700.0, "applications_sm_clock_mhz": 1980,
                           "applications_mem_clock_mhz": 3201, "ecc": "enabled", "mig": "disabled",
                           "persistence": "enabled"}
    assert info["gpus"]["nvidia_driver"] == "570.133.20"
    assert main(["info"]) == 0
    text = capsys.readouterr().out
    assert "NVIDIA H200 (cc 9.0, PCI 10de:2335)" in text and "power_limit_w 700.0" in text


@pytest.mark.parametrize("name, matches", [("NVIDIA H200", True), ("NVIDIA H200 NVL", False)])
def test_accept_h200_spec_matches_the_hardware(monkeypatch, tmp_path, capsys, name, matches):
    from gpu_double import SimulatedGpus

    quick_sampling(monkeypatch)
    pci = 0x233510DE if matches else 0x233B10DE
    install(monkeypatch, SimulatedGpus([GpuSpec(name=name, pci_device_id=pci)]))
    code, _ = run_cuda(tmp_path, *gemm_args(dtypes=("bf16",)), "--impl", "cublas")
    assert code == 0
    capsys.readouterr()
    code = main(["accept", "--spec", "nvidia-h200-sxm", "--json", str(tmp_path / "run.json")])
    report = json.loads(capsys.readouterr().out)
    text = json.dumps(report)
    assert code == 1  # far below the fractions of peak either way (tiny shapes)
    assert ("is not" in text) != matches, text[:2000]


GEMM_IMPLS = ("cublas", "aibench", "cupy", "torch")
OUTPUT_FAULTS = ("element", "nan", "scale", "rank")


@pytest.mark.parametrize("kind", OUTPUT_FAULTS)
def test_every_output_fault_fails_every_cuda_gemm_impl(device, tmp_path, monkeypatch, kind):
    monkeypatch.setenv("AIBENCH_TEST_FAULT", ",".join(f"{impl}:{kind}" for impl in GEMM_IMPLS))
    code, doc = run_cuda(tmp_path, *gemm_args(dtypes=("fp16",)))
    assert code == 1
    assert {c["impl"]: c["status"] for c in doc["cases"]} == dict.fromkeys(GEMM_IMPLS, "failed")
    assert all("wrong result" in c["validation"]["reason"] for c in doc["cases"])


@pytest.mark.parametrize("kind", OUTPUT_FAULTS)
def test_every_output_fault_fails_every_cuda_attention_impl(device, tmp_path, monkeypatch, kind):
    monkeypatch.setenv("AIBENCH_TEST_FAULT", f"aibench:{kind},torch:{kind}")
    code, doc = run_cuda(tmp_path, "--suite", "attention", *ATTENTION, "--param", "dtype=bf16",
                         "--param", "causal=true")
    assert code == 1
    ran = {c["impl"]: c["status"] for c in doc["cases"] if c["status"] != "skipped"}  # jax: no JAX GPU here
    assert ran == {"aibench": "failed", "torch": "failed"}


@dataclasses.dataclass(frozen=True)
class FewLaunchPolicy(QuickPolicy):
    """For kernels told to take tens of nanoseconds: a few launches per sample (the
    real rule's 20 ms a sample would ask the double for hundreds of thousands)."""

    min_sample_s: float = 1e-6


# A case the double computes quickly whose flops over a told time of tens of ns reach
# 50% of the H200's fp16 peak: 2 * 256^3 and 4 * 2 * 256^2 * 64 FLOP.
NEAR_PEAK = {"gemm": ((*gemm_args({"m": 256, "n": 256, "k": 256}, ("fp16",)),), 2 * 256**3),
             "attention": (("--suite", "attention", "--param", "batch=1", "--param", "heads=2", "--param", "kv_heads=1",
                            "--param", "seqlen=256", "--param", "kv_seqlen=256", "--param", "head_dim=64",
                            "--param", "dtype=fp16", "--param", "causal=false"), 4 * 2 * 256 * 256 * 64)}


@pytest.mark.parametrize("suite, impl", [("gemm", i) for i in GEMM_IMPLS] + [("attention", "aibench"),
                                                                             ("attention", "torch")])
def test_inflated_figures_fail_on_the_datasheet_bound(gpus, tmp_path, monkeypatch, suite, impl):
    """A rate 3x too high (the `inflate` fault) goes over the H200's datasheet peak: the
    told time puts the true figure at 50% of the fp16 peak."""
    quick_sampling(monkeypatch, FewLaunchPolicy)
    args, flops = NEAR_PEAK[suite]
    peak = gpu_peak("NVIDIA H200", "fp16")["value"]
    told_s = round(flops / (0.5 * peak * 1e12) * 1e9) / 1e9  # the device clock counts whole ns
    gpus.kernel_seconds[suite] = told_s
    code, doc = run_cuda(tmp_path, *args, "--impl", impl)
    (case,) = doc["cases"]
    assert code == 0 and case["status"] == "passed", case["error"]
    assert case["percent_of_peak"] == pytest.approx(100 * flops / told_s / 1e12 / peak, rel=1e-9)
    assert 45 < case["percent_of_peak"] < 55
    monkeypatch.setenv("AIBENCH_TEST_FAULT", f"{impl}:inflate")
    code, doc = run_cuda(tmp_path, *args, "--impl", impl)
    (case,) = doc["cases"]
    assert code == 1 and case["status"] == "failed" and "exceeds physical bound" in case["error"]


def test_accept_gpu_count_make_spec_and_lint_with_gpus(monkeypatch, tmp_path, capsys):
    """The GPU branches of accept: a node of 2 H200s against the 8-GPU HGX spec, and a
    spec made from its run (its threshold linted against the datasheet peak)."""
    from gpu_double import SimulatedGpus

    quick_sampling(monkeypatch, FewLaunchPolicy)
    gpus = install(monkeypatch, SimulatedGpus(boards(2)))
    gpus.kernel_seconds["gemm"] = 2e-9  # 98 TFLOP/s: a spec's threshold must be a fair share of the peak (lint)
    code, _ = run_cuda(tmp_path, *gemm_args(dtypes=("bf16",)), "--impl", "cublas")
    assert code == 0
    capsys.readouterr()
    assert main(["accept", "--spec", "nvidia-hgx-h200-node", "--json", str(tmp_path / "run.json")]) == 1
    assert "nvidia-hgx-h200-node: 2 GPU(s), the spec needs 8" in capsys.readouterr().out
    made = tmp_path / "made.toml"
    assert main(["accept", "--make-spec", str(tmp_path / "run.json"), "-o", str(made)]) == 0
    text = made.read_text()  # its check passed lint against the H200's bf16 peak (lint.py's GPU bounds)
    assert 'gpu_name = "^NVIDIA H200$"' in text and "min_gpus = 2" in text and 'impl = "cublas"' in text


LAUNCH = pathlib.Path(__file__).parent / "gpu_double" / "launch.py"


def launch_ranks(tmp_path, ranks, command, *args, **env):
    """`aibench <command> ... --output` on `ranks` MPI ranks, each with the double in place
    (launch.py; `env` tells the double what to be): the process and the document."""
    out = tmp_path / f"{command}.json"
    env = {"GPU_DOUBLE_KERNEL_SECONDS": "allreduce=1e-4", "AIBENCH_MPI_CUDA": "1", **env}
    p = subprocess.run([*mpiexec(ranks), sys.executable, str(LAUNCH), command, *args, "--output", str(out)],
                       capture_output=True, text=True, timeout=300, env=clean_env(**env))
    assert out.exists(), p.stdout[-3000:] + p.stderr[-3000:]
    return p, json.loads(out.read_text())


def run_ranks(tmp_path, ranks, *args, **env):
    """`aibench run --target cuda` on `ranks` MPI ranks through the double."""
    return launch_ranks(tmp_path, ranks, "run", "--target", "cuda", *args, *FAST, **env)


@needs_mpi
def test_gpu_allreduce_nccl_and_cuda_aware_mpi_on_three_ranks(tmp_path):
    p, doc = run_ranks(tmp_path, 3, "--suite", "interconnect", "--param", "size=4k", "--param", "dtype=fp32,bf16",
                       "--param", "inplace=false,true")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    cases = doc["cases"]
    assert {(c["impl"], c["status"]) for c in cases} == {("nccl", "passed"), ("mpi", "passed")}
    for c in cases:
        if c["impl"] == "nccl":  # timed by the double's events: 100 us per call, as told
            assert c["metrics"]["time_us"]["value"] == pytest.approx(100.0, rel=1e-9)
            assert c["metrics"]["algbw_gbps"]["value"] == pytest.approx(4096 / 1e-4 / 1e9, rel=1e-9)
            assert c["metrics"]["busbw_gbps"]["value"] == pytest.approx(4096 / 1e-4 / 1e9 * 4 / 3, rel=1e-9)
            assert c["impl_detail"]["gpu"] == "NVIDIA H200" and c["impl_detail"]["nccl_version"] == 22805
        # Three ranks on one GPU (GPU_DOUBLE_GPUS=1): their bytes never cross its links.
        assert c["bound"] is None and "share the GPU" in c["impl_detail"]["links"]


@needs_mpi
def test_rank_fault_fails_the_gpu_allreduce_impls(tmp_path):
    """In the barrier timing (OSU's: each call timed apart), which NCCL also takes."""
    p, doc = run_ranks(tmp_path, 2, "--suite", "interconnect", "--param", "size=4k", "--param", "dtype=fp32",
                       "--param", "inplace=false", "--timing", "barrier", AIBENCH_TEST_FAULT="nccl:rank,mpi:rank")
    assert p.returncode == 1, p.stdout[-3000:] + p.stderr[-3000:]
    assert {(c["impl"], c["status"]) for c in doc["cases"]} == {("nccl", "failed"), ("mpi", "failed")}


ALLREDUCE_4K = ("--suite", "interconnect", "--param", "size=4k", "--param", "dtype=fp32", "--param", "inplace=false")
# Two ranks on two H200s: each GPU's 18 NVLink 4.0 links (450 GB/s each way) and PCIe
# Gen5 x16 link (63.02 GB/s) bound algbw, and busbw = algbw x 2(n-1)/n = algbw. The told
# all-reduce time puts NCCL's busbw (4096 B per call) at half of it, in whole ns (16 ns).
H200_LINKS_GBPS = 450 + 32 * 16 * 128 / 130 / 8
HALF_BOUND_S = round(4096 / (0.5 * H200_LINKS_GBPS * 1e9) * 1e9) / 1e9
TWO_H200 = {"GPU_DOUBLE_GPUS": "2", "GPU_DOUBLE_KERNEL_SECONDS": f"allreduce={HALF_BOUND_S}"}


@needs_mpi
def test_an_inflated_nccl_busbw_fails_on_the_gpus_links_and_the_true_one_passes(tmp_path):
    """NCCL's figure x 3 (the `inflate` fault) goes over the links' bound; the CUDA-aware
    MPI's in the same run passes, with the bound recorded."""
    p, doc = run_ranks(tmp_path, 2, *ALLREDUCE_4K, AIBENCH_TEST_FAULT="nccl:inflate", **TWO_H200)
    assert p.returncode == 1, p.stdout[-3000:] + p.stderr[-3000:]
    cases = {c["impl"]: c for c in doc["cases"]}
    busbw = 4096 / HALF_BOUND_S / 1e9
    assert cases["nccl"]["status"] == "failed" and cases["nccl"]["error"].startswith(
        f"exceeds physical bound: busbw_gbps {3 * busbw:.4g} GB/s > {H200_LINKS_GBPS:.4g} GB/s (the links of rank ")
    assert "18 active NVLink 4.0 link(s)" in cases["nccl"]["error"]
    assert cases["mpi"]["status"] == "passed"
    assert cases["mpi"]["bound"]["value"] == pytest.approx(H200_LINKS_GBPS)
    assert cases["mpi"]["bound"]["metric"] == "busbw_gbps"


@needs_mpi
def test_an_inflated_cuda_aware_mpi_busbw_fails_on_the_gpus_links_and_nccl_passes(tmp_path):
    """The MPI impl is timed on the host (MPI.Wtime around a blocking call), far below the
    links on the double: a larger factor carries it over (as tests/test_faults.py does)."""
    p, doc = run_ranks(tmp_path, 2, *ALLREDUCE_4K, AIBENCH_TEST_FAULT="mpi:inflate",
                       AIBENCH_TEST_INFLATE_FACTOR="1e12", **TWO_H200)
    assert p.returncode == 1, p.stdout[-3000:] + p.stderr[-3000:]
    cases = {c["impl"]: c for c in doc["cases"]}
    assert cases["mpi"]["status"] == "failed" and "exceeds physical bound" in cases["mpi"]["error"]
    nccl = cases["nccl"]
    assert nccl["status"] == "passed", nccl["error"]
    assert nccl["metrics"]["busbw_gbps"]["value"] == pytest.approx(4096 / HALF_BOUND_S / 1e9, rel=1e-9)
    assert nccl["bound"]["value"] == pytest.approx(H200_LINKS_GBPS) and "NVLink" in nccl["bound"]["source"]


@needs_mpi
def test_gpus_without_nvlink_hold_busbw_to_their_pcie_link(tmp_path):
    """The same told time on boards with no NVLink: 256 GB/s is over PCIe Gen5 x16's 63."""
    p, doc = run_ranks(tmp_path, 2, *ALLREDUCE_4K, "--impl", "nccl",
                       GPU_DOUBLE_RANK_SETTINGS="0:nvlink_links=0;1:nvlink_links=0", **TWO_H200)
    assert p.returncode == 1, p.stdout[-3000:] + p.stderr[-3000:]
    (case,) = doc["cases"]
    assert case["status"] == "failed" and case["bound"]["value"] == pytest.approx(32 * 16 * 128 / 130 / 8)
    assert "> 63.02 GB/s (the links of rank 0's GPU" in case["error"] and "PCIe Gen5 x16" in case["error"]


H200_BOARDS = [{"index": i, "name": b.name, "pci_bus_id": b.pci_bus_id} for i, b in enumerate(boards(2))]


@needs_mpi
def test_preflight_with_gpus_gives_each_ranks_gpus_and_the_gpu_drift(tmp_path):
    """Three ranks, each a node of its own (launch.py: host node<rank>) with two H200s;
    node1's boards carry another VBIOS, node2 another driver and NCCL: the drift table
    names exactly those nodes in exactly those rows."""
    p, report = launch_ranks(tmp_path, 3, "preflight", "--link-seconds", "0.1", COLUMNS="300", GPU_DOUBLE_GPUS="2",
                             GPU_DOUBLE_HOST_PER_RANK="1",
                             GPU_DOUBLE_RANK_SETTINGS="1:vbios=96.00.AF.00.02;2:driver_version=575.51.03;"
                                                      "2:nccl_version=22703")
    assert p.returncode == 1, p.stdout[-3000:] + p.stderr[-3000:]  # drift fails preflight
    assert [(r["rank"], r["host"], r["gpu_devices"]) for r in report["ranks"]] == [
        (r, f"node{r}", H200_BOARDS) for r in range(3)]
    assert {host: (sw["gpu_vbios"], sw["nvidia_driver"], sw["nccl"]) for host, sw in report["nodes"].items()} == {
        "node0": (["96.00.AF.00.01"] * 2, "570.133.20", "2.28.5"),
        "node1": (["96.00.AF.00.02"] * 2, "570.133.20", "2.28.5"),
        "node2": (["96.00.AF.00.01"] * 2, "575.51.03", "2.27.3")}
    assert [(d["field"], d["common"], d["odd"]) for d in report["drift"]] == [
        ("nccl", "2.28.5", {"node2": "2.27.3"}), ("nvidia_driver", "570.133.20", {"node2": "575.51.03"}),
        ("gpu_vbios", ["96.00.AF.00.01"] * 2, {"node1": ["96.00.AF.00.02"] * 2})]
    out = " ".join(p.stdout.split())
    assert "0: NVIDIA H200 00000000:19:00.0" in out and "1: NVIDIA H200 00000000:1a:00.0" in out
    for line in ("drift: NCCL differs on node2", "drift: NVIDIA driver differs on node2",
                 "drift: GPU VBIOS differs on node1"):
        assert line in out


PER_GPU_GEMM = ("--fleet", "--per-gpu", *gemm_args(dtypes=("fp16",)), "--impl", "cublas")


def per_gpu_fleet(tmp_path, ranks, **env):
    """A --per-gpu fleet of `ranks` GPUs on one node: each rank drives cuda:<local rank>."""
    p, doc = run_ranks(tmp_path, ranks, *PER_GPU_GEMM, GPU_DOUBLE_GPUS=str(ranks),
                       GPU_DOUBLE_KERNEL_SECONDS="gemm=1e-3", **env)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    labels = [f"{socket.gethostname()}:gpu{r}" for r in range(ranks)]
    assert [(n["node"], n["rank"], n["target"]) for n in doc["fleet"]["nodes"]] == [
        (label, r, f"cuda:{r}") for r, label in enumerate(labels)]
    assert all(n["system"]["gpus"]["count"] == ranks for n in doc["fleet"]["nodes"])
    return labels, doc


def diagnosed(tmp_path, doc):
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps(doc))
    p = subprocess.run([sys.executable, "-m", "aibench.cli", "diagnose", str(path), "--json"], capture_output=True,
                       text=True, timeout=120, env=clean_env())
    return p.returncode, json.loads(p.stdout)


@needs_mpi
def test_per_gpu_fleet_one_node_entry_per_gpu_and_diagnose_names_the_slow_gpu(tmp_path):
    """Three GPUs of one node, GPU 1 told to take twice as long per GEMM: each GPU's case
    has the figure its board was told, and diagnose names GPU 1 and no other."""
    labels, doc = per_gpu_fleet(tmp_path, 3, GPU_DOUBLE_DEVICE_KERNEL_SECONDS="1:gemm=2e-3")
    flops = 2 * 64 * 48 * 32
    told = {labels[0]: 1e-3, labels[1]: 2e-3, labels[2]: 1e-3}
    assert sorted(c["node"] for c in doc["cases"]) == labels
    for c in doc["cases"]:
        assert c["status"] == "passed" and c["target"] == f"cuda:{labels.index(c['node'])}"
        assert c["metrics"]["time_us"]["value"] == pytest.approx(told[c["node"]] * 1e6, rel=1e-9)
        assert c["metrics"]["tflops"]["value"] == pytest.approx(flops / told[c["node"]] / 1e12, rel=1e-9)
    code, report = diagnosed(tmp_path, doc)
    assert code == 1 and report["verdict"] == "defective" and report["defective_nodes"] == [labels[1]], report


@needs_mpi
def test_per_gpu_fleet_of_equal_gpus_diagnoses_none(tmp_path):
    labels, doc = per_gpu_fleet(tmp_path, 2)
    assert [c["metrics"]["time_us"]["value"] for c in doc["cases"]] == pytest.approx([1000.0, 1000.0], rel=1e-9)
    code, report = diagnosed(tmp_path, doc)
    assert code == 0 and report["verdict"] == "healthy" and report["findings"] == [], report


@needs_mpi
def test_cuda_aware_mpi_is_asked_of_the_mpi_library_the_ranks_loaded(tmp_path):
    """Without AIBENCH_MPI_CUDA the ranks ask the libmpi they loaded (MPIX_Query_cuda_support):
    the MPI impl runs only where the library says it is CUDA-aware; NCCL runs either way."""
    p, doc = run_ranks(tmp_path, 2, "--suite", "interconnect", "--param", "size=4k", "--param", "dtype=fp32",
                       "--param", "inplace=false", AIBENCH_MPI_CUDA="")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    cases = {c["impl"]: c for c in doc["cases"]}
    assert cases["nccl"]["status"] == "passed"
    mpi_case = cases["mpi"]
    if mpi_case["status"] == "skipped":
        assert re.match(r"the MPI library is not CUDA-aware: MPIX_Query_cuda_support\(\) = 0 \(libmpi",
                        mpi_case["validation"]["reason"]), mpi_case["validation"]
    else:
        assert mpi_case["status"] == "passed"
        assert re.match(r"MPIX_Query_cuda_support\(\) = 1 \(libmpi", mpi_case["impl_detail"]["cuda_aware"])


@needs_mpi
def test_nccl_calls_too_slow_for_the_budget_are_cut_by_the_time_cap(tmp_path):
    """10 ms per all-reduce against a 0.05 s budget: the planned count is cut to what fits
    (as nccl-tests' loops), and the figure is still the told time."""
    p, doc = run_ranks(tmp_path, 2, "--suite", "interconnect", "--param", "size=4k", "--param", "dtype=fp32",
                       "--param", "inplace=false", "--impl", "nccl", GPU_DOUBLE_KERNEL_SECONDS="allreduce=1e-2")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    (case,) = doc["cases"]
    assert case["status"] == "passed" and case["stats"]["stopped_by"] == "time_cap"
    assert case["metrics"]["time_us"]["value"] == pytest.approx(1e4, rel=1e-9)


MEMORY_SIZE = 1 << 20
MEMORY = ("--suite", "memory", "--param", "kernel=d2d,h2d,d2h", "--param", "size=1M")


def test_memory_copies_validate_at_the_told_rate(gpus, tmp_path):
    """HBM d2d copies move 2 x size (read and write), h2d/d2h size over the host link; each
    bounded by the H200's datasheet HBM bandwidth or its PCIe Gen5 x16 link (NVML)."""
    gpus.kernel_seconds["copy"] = 1e-4
    code, doc = run_cuda(tmp_path, *MEMORY)
    assert code == 0 and {c["params"]["kernel"]: c["status"] for c in doc["cases"]} == dict.fromkeys(
        ("d2d", "h2d", "d2h"), "passed")
    for c in doc["cases"]:
        moved = MEMORY_SIZE * (2 if c["params"]["kernel"] == "d2d" else 1)
        check_figure(gpus, c, "gbps", moved / 1e-4 / 1e9)
    bounds = {c["params"]["kernel"]: c["bound"]["value"] for c in doc["cases"]}
    assert bounds["d2d"] == pytest.approx(4800.0) and bounds["h2d"] == bounds["d2h"] == pytest.approx(
        32e9 * 16 * 128 / 130 / 8 / 1e9)


@pytest.mark.parametrize("kind", OUTPUT_FAULTS)
def test_every_output_fault_fails_the_cuda_memory_copies(gpus, tmp_path, monkeypatch, kind):
    gpus.kernel_seconds["copy"] = 1e-4  # a sample of 200 copies (the double's 1 us default: 20000)
    monkeypatch.setenv("AIBENCH_TEST_FAULT", f"cupy:{kind}")
    code, doc = run_cuda(tmp_path, *MEMORY)
    assert code == 1 and [c["status"] for c in doc["cases"]] == ["failed"] * 3
    assert all("wrong result" in c["validation"]["reason"] for c in doc["cases"])


@pytest.mark.parametrize("kernel", ["d2d", "h2d"])
def test_inflated_copy_rates_fail_on_the_hbm_and_pcie_bounds(gpus, tmp_path, monkeypatch, kernel):
    quick_sampling(monkeypatch, FewLaunchPolicy)
    moved, bound = {"d2d": (2 * MEMORY_SIZE, 4800e9), "h2d": (MEMORY_SIZE, 32e9 * 16 * 128 / 130 / 8)}[kernel]
    told_s = round(moved / (0.5 * bound) * 1e9) / 1e9  # 50% of the bound, in whole ns
    gpus.kernel_seconds["copy"] = told_s
    args = ("--suite", "memory", "--param", f"kernel={kernel}", "--param", "size=1M")
    code, doc = run_cuda(tmp_path, *args)
    (case,) = doc["cases"]
    assert code == 0 and case["metrics"]["gbps"]["value"] == pytest.approx(moved / told_s / 1e9, rel=1e-9)
    monkeypatch.setenv("AIBENCH_TEST_FAULT", "cupy:inflate")
    code, doc = run_cuda(tmp_path, *args)
    (case,) = doc["cases"]
    assert code == 1 and case["status"] == "failed" and "exceeds physical bound" in case["error"]
