"""The GPU modules' branches one at a time through the device double: why a GPU path
cannot run, NVML missing or partial, each runner's untimed run(), GPU memory guards,
GPU collectives' availability, and the double itself against the documented behaviour
it copies (so that a double drifting from CUDA/CuPy/NVML fails here)."""

import io
import sys

import numpy as np
import pytest

from aibench.errors import SkipCase
from aibench.harness import SamplingPolicy
from aibench.suites.attention import cuda as attention_cuda
from aibench.suites.base import RunContext
from aibench.suites.gemm import cuda as gemm_cuda
from aibench.suites.interconnect import gpu
from aibench.targets import Target
from aibench.targets import cuda as cu
from gpu_double import GpuSpec, SimulatedGpus, install

CUDA0 = Target("cuda", 0)


@pytest.fixture
def gpus(monkeypatch):
    return install(monkeypatch)


def ctx():
    return RunContext(target=CUDA0, policy=SamplingPolicy(budget_s=0.05))


def prepared(impl, params):
    op = impl(params, ctx())
    op.params, op.seed = params, 0
    return op


def unsupported_query(*args):
    """An NVML query this board does not support (NVML_ERROR_NOT_SUPPORTED)."""
    raise sys.modules["pynvml"].NVMLError_NotSupported()


def test_why_the_cuda_target_cannot_run(monkeypatch):
    install(monkeypatch, SimulatedGpus([]))
    assert cu.unavailable_reason(CUDA0) == "no CUDA GPU: no CUDA device found"
    install(monkeypatch)
    assert cu.unavailable_reason(Target("cpu")) == "runs on the cuda target, not cpu"
    assert cu.unavailable_reason(Target("cuda", 1)) == "cuda:1 does not exist: 1 CUDA device(s)"
    with pytest.raises(SkipCase, match="does not exist"):
        cu.require(Target("cuda", 1))
    monkeypatch.setitem(sys.modules, "cupy", None)
    assert "CuPy is not installed" in cu.unavailable_reason(CUDA0)
    assert "CuPy is not installed" in gpu.gpu_unavailable_reason()
    monkeypatch.setitem(sys.modules, "aibench._cuda", None)
    monkeypatch.delattr("aibench._cuda")
    cu.cuda_module.cache_clear()
    assert cu.cuda_module() is None and "built without CUDA" in cu.unavailable_reason(CUDA0)
    cu.cuda_module.cache_clear()


def test_without_nvml_the_name_comes_from_cuda_and_telemetry_says_why(gpus, monkeypatch):
    gpus.specs[0].name = "NVIDIA H200"
    monkeypatch.setitem(sys.modules, "pynvml", None)
    assert cu.device_name(0) == "NVIDIA H200"
    assert cu.telemetry_snapshot(0) == {"available": False, "reason": "NVML (nvidia-ml-py) not available"}
    assert cu.pci_id(0) is None  # no NVML, and the double has no sysfs device


def test_a_sensor_the_board_lacks_is_none_and_old_nvml_names_work(gpus, monkeypatch):
    nvml = sys.modules["pynvml"]

    monkeypatch.setattr(nvml, "nvmlDeviceGetTemperature", unsupported_query)
    monkeypatch.delattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons")  # nvidia-ml-py < 12.535
    gpus.specs[0].clock_event_reasons = 0x8
    snap = cu.telemetry_snapshot(0)
    assert snap["temperature_c"] is None and snap["throttle_reasons"] == ["hw_slowdown"]
    assert snap["power_w"] == 350.0 and snap["power_capped"] is False


GEMM = {"m": 40, "n": 32, "k": 48}


@pytest.mark.parametrize("impl, dtype", [(gemm_cuda.CublasRunner, "bf16"), (gemm_cuda.OwnMmaRunner, "fp16"),
                                         (gemm_cuda.CupyRunner, "fp32"), (gemm_cuda.TorchCudaRunner, "fp64"),
                                         (gemm_cuda.TorchCudaRunner, "int8")])
def test_untimed_gemm_run_computes_the_right_product(gpus, impl, dtype):
    op = prepared(impl, {**GEMM, "dtype": dtype})
    op.poison_output()
    op.run()
    assert op.validate().status == "passed"
    op.close()


def test_gemm_and_attention_skip_what_the_gpu_cannot_hold(gpus):
    gpus.specs[0].free_memory_bytes = 1000
    with pytest.raises(SkipCase, match="does not fit: .* of GPU memory free on cuda"):
        gemm_cuda.CublasRunner({**GEMM, "dtype": "fp32"}, ctx())
    params = {"batch": 1, "heads": 2, "kv_heads": 2, "seqlen": 64, "kv_seqlen": 64, "head_dim": 64,
              "dtype": "bf16", "causal": False}
    with pytest.raises(SkipCase, match="does not fit: .* of GPU memory free on cuda"):
        attention_cuda.OwnFlashRunner(params, ctx())
    with pytest.raises(SkipCase, match="bf16 and fp16, not fp32"):
        attention_cuda.OwnFlashRunner({**params, "dtype": "fp32"}, ctx())
    with pytest.raises(SkipCase, match="head dim 64 and 128, not 96"):
        attention_cuda.OwnFlashRunner({**params, "head_dim": 96}, ctx())


@pytest.mark.parametrize("impl", [attention_cuda.OwnFlashRunner, attention_cuda.TorchCudaAttentionRunner])
def test_untimed_attention_run_computes_the_right_output(gpus, impl):
    params = {"batch": 1, "heads": 2, "kv_heads": 1, "seqlen": 20, "kv_seqlen": 20, "head_dim": 64,
              "dtype": "bf16", "causal": True}
    op = prepared(impl, params)
    op.poison_output()
    op.run()
    assert op.validate().status == "passed"
    op.close()


def test_nvml_energy_discovery_says_why_it_reads_nothing(gpus, monkeypatch):
    from aibench.energy import nvml

    assert nvml.discover(0, "0000:99:00.0") == ([], ["NVML: Not Found"])  # no board at that bus ID
    meters, reasons = nvml.discover(0, None)  # by index
    assert [type(m).__name__ for m in meters] == ["NvmlEnergy"] and meters[0].name == "GPU 0 NVIDIA H200"
    module = sys.modules["pynvml"]

    monkeypatch.setattr(module, "nvmlDeviceGetPowerUsage", unsupported_query)
    gpus.specs[0].energy_counter = False
    assert nvml.discover(0, None) == ([], ["NVML: GPU 0 NVIDIA H200 reports neither energy nor power (Not Supported)"])


def test_gpu_collectives_say_why_they_cannot_run(gpus, monkeypatch):
    assert gpu.gpu_unavailable_reason() is None and gpu.nccl_unavailable_reason() is None
    runtime, nccl = sys.modules["cupy.cuda.runtime"], sys.modules["cupy.cuda.nccl"]

    def no_nccl():
        raise RuntimeError("libnccl.so.2: cannot open shared object file")

    monkeypatch.setattr(nccl, "get_version", no_nccl)
    assert "NCCL is not available through CuPy" in gpu.nccl_unavailable_reason()

    def no_driver():
        raise runtime.CUDARuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    monkeypatch.setattr(runtime, "getDeviceCount", no_driver)
    assert gpu.gpu_unavailable_reason().startswith("no CUDA GPU: CudaRuntimeError: cudaErrorNoDevice")
    assert gpu.nccl_unavailable_reason() == gpu.gpu_unavailable_reason()
    monkeypatch.setattr(runtime, "getDeviceCount", lambda: 0)
    assert gpu.gpu_unavailable_reason() == "no CUDA GPU: the CUDA runtime reports 0 devices"


def test_cuda_aware_mpi_detection(monkeypatch):
    monkeypatch.setenv("AIBENCH_MPI_CUDA", "1")
    assert gpu.mpi_cuda_support() == (True, "AIBENCH_MPI_CUDA=1")
    monkeypatch.delenv("AIBENCH_MPI_CUDA")
    # A libmpi in the process's maps that cannot be opened (the libmpi the ranks load is
    # asked in test_gpu_double.py): its CUDA support is unknown.
    maps = "7f0000000000-7f0000001000 r-xp 00000000 08:01 42 /nonexistent/libmpi.so.12\n"
    monkeypatch.setattr(gpu, "open", lambda *args, **kwargs: io.StringIO(maps), raising=False)
    assert gpu.mpi_cuda_support() == (None, "the MPI library has no MPIX_Query_cuda_support, so its CUDA support "
                                            "is unknown (AIBENCH_MPI_CUDA=1 forces)")


# --- the double against the behaviour it copies ------------------------------------------


def test_double_refuses_what_cuda_and_cupy_refuse(gpus):
    import cupy

    a = cupy.empty((4, 4), dtype=cupy.float32)
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(a)  # CuPy: no implicit device-to-host conversion
    start, stop = cupy.cuda.Event(), cupy.cuda.Event()
    start.record()
    a.fill(1.0)
    stop.record()
    with pytest.raises(RuntimeError, match="cudaErrorNotReady"):
        cupy.cuda.get_elapsed_time(start, stop)  # cudaEventElapsedTime before the end completed
    stop.synchronize()
    assert cupy.cuda.get_elapsed_time(start, stop) == gpus.kernel_seconds["fill"] * 1e3
    cuda = sys.modules["aibench._cuda"]
    with pytest.raises(ValueError, match="needs b_layout='nk'"):
        cuda.CublasLtGemm(0, 16, 16, 16, "fp8", a.data.ptr, a.data.ptr, a.data.ptr, "kn")
    with pytest.raises(ValueError, match="number must be >= 1"):
        cuda.MmaGemm(0, 2, 2, 2, "bf16", a.data.ptr, a.data.ptr, a.data.ptr).time(0)
    with pytest.raises(RuntimeError, match="cudaErrorIllegalAddress"):
        cuda.fill_uniform(0, 16, 4, "fp32", 1)  # an address in no allocation
    with pytest.raises(ValueError, match="Shape mismatch"):
        a.set(np.zeros(3, dtype=np.float32))


def test_double_times_only_what_the_events_bracket(gpus):
    """time_op: with a flush buffer, each launch alone is timed (the memset is not)."""
    import cupy

    cuda = sys.modules["aibench._cuda"]
    gpus.kernel_seconds.update(gemm=3e-3, flush=1.0)
    a = cupy.empty((8, 8), dtype=cupy.float16)
    flush = cupy.empty(1024, dtype=cupy.uint8)
    op = cuda.MmaGemm(0, 8, 8, 8, "fp16", a.data.ptr, a.data.ptr, a.data.ptr)
    assert op.time(4, flush.data.ptr, flush.nbytes) == pytest.approx(12e-3, rel=1e-12)
    assert op.time(4) == pytest.approx(12e-3, rel=1e-12)
    assert gpus.count("flush") == 4


class _GpuArray:
    """What targets.jax.operand_sets reads of a jax.Array on a GPU."""

    def __init__(self, nbytes, copy_of=None):
        self.nbytes, self.copy_of = nbytes, copy_of

    def devices(self):
        return {type("Device", (), {"platform": "gpu", "id": 0})()}

    def copy(self):
        return _GpuArray(self.nbytes, copy_of=self)

    def block_until_ready(self):
        return self


def test_jax_on_a_gpu_rotates_operands_past_l2_and_times_the_last_call_on_the_originals(gpus):
    from aibench.targets import jax as jx

    a, b = _GpuArray(24 * 2**10), _GpuArray(8 * 2**10)  # 32 KiB together; the double's L2: 64 KiB
    used = []
    run = jx.timer(lambda x, y: used.append((x, y)) or x, (a, b))
    assert run.operand_sets == 1 + 4  # the others exceed 2 x L2 = 128 KiB
    run(7)
    assert used[-1] == (a, b) and run.last is a  # validation reads the originals' output
    assert len({id(x) for x, _ in used[:5]}) == 5  # consecutive calls never share operands
    assert all(x.copy_of is a for x, _ in used[:6] if x is not a)
    big = _GpuArray(10 * 2**20)
    assert jx.timer(lambda x: x, (big,)).operand_sets == 2  # one copy at most when operands exceed L2
    import jax.numpy as jnp

    assert jx.timer(lambda x: x, (jnp.zeros(4),)).operand_sets == 1  # on a CPU: no copies


def test_preflight_and_fingerprint_gpu_readings_without_nvml_or_cuda(gpus, monkeypatch):
    """What preflight's drift table and the fingerprint record when NVML, the CUDA build or
    every GPU is missing, and NCCL's two version encodings (nccl.h: before 2.9,
    major*1000 + minor*100 + patch; since, major*10000 + minor*100 + patch)."""
    from aibench import fingerprint, preflight

    assert preflight._nccl_version() == "2.28.5"
    gpus.nccl_version = 2708
    assert preflight._nccl_version() == "2.7.8"
    assert preflight.gpu_inventory() == [{"index": 0, "name": "NVIDIA H200", "pci_bus_id": "00000000:19:00.0"}]
    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setitem(sys.modules, "cupy.cuda", None)  # no CuPy: no NCCL binding
    assert preflight._gpu_vbios() is None and fingerprint._nvidia_driver() is None and preflight._nccl_version() is None
    install(monkeypatch, SimulatedGpus([]))
    assert preflight.gpu_inventory() == []
    assert fingerprint._gpus() == {"available": False, "reason": "no CUDA device found"}
    monkeypatch.setitem(sys.modules, "aibench._cuda", None)
    monkeypatch.delattr("aibench._cuda")
    cu.cuda_module.cache_clear()
    assert preflight.gpu_inventory() is None
    assert fingerprint._gpus() == {"available": False, "reason": "aibench._cuda not built"}
    cu.cuda_module.cache_clear()


def test_a_setting_nvml_does_not_report_is_none_in_the_fingerprint(gpus, monkeypatch):
    from aibench import fingerprint

    nvml = sys.modules["pynvml"]

    monkeypatch.setattr(nvml, "nvmlDeviceGetMigMode", unsupported_query)  # a board without MIG
    nvml.nvmlInit()
    settings = fingerprint.nvml_settings(nvml, nvml.nvmlDeviceGetHandleByIndex(0))
    assert settings == {"power_limit_w": 700.0, "applications_sm_clock_mhz": 1980, "applications_mem_clock_mhz": 3201,
                        "ecc": "enabled", "mig": None, "persistence": "enabled"}


def test_a_node_without_gpus_is_not_the_hardware_of_a_gpu_spec(monkeypatch):
    from aibench import fingerprint
    from aibench.accept.judge import hardware_problems
    from aibench.accept.spec import load_spec

    install(monkeypatch, SimulatedGpus([]))
    spec = load_spec("nvidia-h200-sxm")
    pattern = dict(spec.hardware)["nvidia-h200-sxm"]["gpu_name"]
    assert hardware_problems(spec, [{"gpus": fingerprint._gpus()}], []) == [
        f"nvidia-h200-sxm: no GPU in the run (the spec is for GPUs matching {pattern!r})",
        "nvidia-h200-sxm: 0 GPU(s), the spec needs 1"]


def test_nvml_finds_a_board_without_a_pci_bus_id_by_index_and_without_pci_info_has_no_pci_id(monkeypatch):
    gpus = install(monkeypatch, SimulatedGpus([GpuSpec(name="NVIDIA H200", pci_bus_id="")]))
    nvml = sys.modules["pynvml"]
    assert cu.device_name(0) == "NVIDIA H200" and cu.pci_id(0) == "10de:2335"  # NVML's handle by index

    monkeypatch.setattr(nvml, "nvmlDeviceGetPciInfo", unsupported_query)
    gpus.specs[0].pci_bus_id = ""
    assert cu.pci_id(0) is None  # and no bus ID to read sysfs at


def test_the_power_window_runs_gpu_timers_without_the_l2_flush():
    from aibench import _core
    from aibench.energy.window import sustained_timer

    def gpu_timer(number, l2_flush=True):
        return (number, l2_flush)

    def cpu_timer(number):
        return number

    assert sustained_timer(gpu_timer)(3) == (3, False)
    assert sustained_timer(cpu_timer) is cpu_timer
    assert sustained_timer(_core.measure_clock_ghz) is _core.measure_clock_ghz  # compiled: no signature to read


def test_the_pcie_bound_of_host_copies_says_why_it_is_missing(gpus, monkeypatch):
    from aibench.suites.memory.cuda import pcie_limit

    rate, source = pcie_limit(0)
    assert rate == pytest.approx(32e9 * 16 * 128 / 130 / 8) and source.startswith("PCIe Gen5 x16 link")
    gpus.specs[0].pcie_max_link = (9, 16)
    assert pcie_limit(0) == (None, "no independent bound: NVML reports PCIe Gen9 x16")
    monkeypatch.setattr(sys.modules["pynvml"], "nvmlDeviceGetMaxPcieLinkWidth", unsupported_query)
    assert pcie_limit(0) == (None, "no independent bound: NVML gives no PCIe link (NVMLError_NotSupported: "
                                   "Not Supported)")
    monkeypatch.setitem(sys.modules, "pynvml", None)
    assert pcie_limit(0) == (None, "no independent bound: NVML does not answer (no PCIe link generation or width)")
    gpus.specs[0].name = "NVIDIA GH200 480GB"  # found by name: no NVML to give its PCI ID
    cu.device_properties.cache_clear()
    assert pcie_limit(0) == (None, "no independent bound: the GH200's host link is NVLink-C2C, not PCIe")


def test_a_board_that_does_not_tell_its_power_limit_has_none(gpus, monkeypatch):
    from aibench.energy import nvml

    monkeypatch.setattr(sys.modules["pynvml"], "nvmlDeviceGetEnforcedPowerLimit", unsupported_query)
    (meter,), _ = nvml.discover(0, None)
    assert meter.power_limit_w() is None
