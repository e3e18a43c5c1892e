"""The system fingerprint recorded in every run document: enough to tell two nodes apart
and to explain a difference between them."""

from __future__ import annotations

import os
import platform
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil

from . import __version__, _core
from .targets import cpu as cpu_target
from .targets.cpu import read_sysfs


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> list[str]:
    interesting = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16",
                   "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8", "amx_tile", "asimd", "sve")
    have = cpu_target.cpu_flags()
    return [flag for flag in interesting if flag in have]


def _numa_nodes() -> int:
    try:
        return len([d for d in os.listdir("/sys/devices/system/node") if d.startswith("node")])
    except OSError:
        return 1


def _sockets() -> int | None:
    try:
        ids = set()
        for cpu in Path("/sys/devices/system/cpu").glob("cpu[0-9]*"):
            pkg = cpu / "topology" / "physical_package_id"
            if pkg.exists():
                ids.add(pkg.read_text().strip())
        return len(ids) or None
    except OSError:
        return None


def _blas() -> list[dict[str, Any]]:
    try:
        from threadpoolctl import threadpool_info

        return [{k: i.get(k) for k in ("user_api", "internal_api", "version", "num_threads", "architecture", "filepath")}
                for i in threadpool_info()]
    except Exception:  # noqa: BLE001 - a fingerprint never stops a run
        return []


def _bracketed(text: str | None) -> str | None:
    """The selected value of a sysfs choice list ("always [madvise] never" -> "madvise")."""
    if text is None:
        return None
    match = re.search(r"\[([^\]]+)\]", text)
    return match.group(1) if match else text


def cpu_settings(root: str = "/") -> dict[str, Any]:
    """What changes CPU figures besides the CPU: cpufreq driver and governor (cpu0), boost
    (cpufreq/boost, or intel_pstate's no_turbo inverted), SMT (smt/control and active),
    transparent huge pages. A value the kernel does not expose is None."""
    cpu = Path(root, "sys/devices/system/cpu")
    boost = read_sysfs(cpu / "cpufreq/boost")
    no_turbo = read_sysfs(cpu / "intel_pstate/no_turbo")
    if boost is not None:
        boost_state = "on" if boost == "1" else "off"
    elif no_turbo is not None:
        boost_state = "off" if no_turbo == "1" else "on"
    else:
        boost_state = None
    smt_active = read_sysfs(cpu / "smt/active")
    mm = Path(root, "sys/kernel/mm/transparent_hugepage")
    return {
        "cpufreq_driver": read_sysfs(cpu / "cpu0/cpufreq/scaling_driver"),
        "governor": read_sysfs(cpu / "cpu0/cpufreq/scaling_governor"),
        "boost": boost_state,
        "smt": read_sysfs(cpu / "smt/control"),
        "smt_active": smt_active == "1" if smt_active is not None else None,
        "transparent_hugepages": _bracketed(read_sysfs(mm / "enabled")),
        "transparent_hugepages_defrag": _bracketed(read_sysfs(mm / "defrag")),
    }


# Environment variables that change threading or the BLAS path (OpenMP, MKL, OpenBLAS, BLIS).
_ENV_PREFIXES = ("OMP_", "GOMP_", "KMP_", "MKL_", "OPENBLAS_", "BLIS_")


def threading_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The _ENV_PREFIXES variables set in `environ` (default os.environ)."""
    environ = os.environ if environ is None else environ
    return {k: environ[k] for k in sorted(environ) if k.startswith(_ENV_PREFIXES)}


def storage_devices(root: str = "/") -> list[dict[str, Any]]:
    """Block devices backed by hardware (those with a `device` link: not loop, ram, dm or
    md): model, firmware, I/O scheduler and whether rotational. NVMe namespaces read their
    controller's model and firmware_rev; SCSI/SATA disks their model and rev."""
    devices = []
    for block in sorted(Path(root, "sys/block").glob("*")):
        device = block / "device"
        if not device.exists():
            continue
        rotational = read_sysfs(block / "queue/rotational")
        devices.append({
            "name": block.name,
            "model": read_sysfs(device / "model"),
            "firmware": read_sysfs(device / "firmware_rev") or read_sysfs(device / "rev"),
            "scheduler": _bracketed(read_sysfs(block / "queue/scheduler")),
            "rotational": rotational == "1" if rotational is not None else None,
        })
    return devices


def nvml_settings(nvml, handle) -> dict[str, Any]:
    """A GPU's settings that change its figures, from NVML (each None when NVML does not
    answer): enforced power limit, application clocks, ECC, MIG and persistence mode."""
    def ask(read):
        try:
            return read()
        except Exception:  # noqa: BLE001 - NVMLError_NotSupported and kin: not known
            return None

    def mode(value):
        return None if value is None else ("enabled" if int(value) else "disabled")

    power_mw = ask(lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle))
    ecc = ask(lambda: nvml.nvmlDeviceGetEccMode(handle))  # (current, pending)
    mig = ask(lambda: nvml.nvmlDeviceGetMigMode(handle))  # (current, pending)
    return {
        "power_limit_w": power_mw / 1000.0 if power_mw is not None else None,
        "applications_sm_clock_mhz": ask(lambda: nvml.nvmlDeviceGetApplicationsClock(handle, nvml.NVML_CLOCK_SM)),
        "applications_mem_clock_mhz": ask(lambda: nvml.nvmlDeviceGetApplicationsClock(handle, nvml.NVML_CLOCK_MEM)),
        "ecc": mode(ecc[0]) if ecc is not None else None,
        "mig": mode(mig[0]) if mig is not None else None,
        "persistence": mode(ask(lambda: nvml.nvmlDeviceGetPersistenceMode(handle))),
    }


def git_commit() -> str | None:
    """The commit aibench was built from (baked in at build time), else of the source tree."""
    built = _core.build_info().get("git_commit") or ""
    if re.fullmatch(r"[0-9a-f]{40}", built):
        return built
    try:
        out = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5, check=True)
        commit = out.stdout.strip()
        return commit if re.fullmatch(r"[0-9a-f]{40}", commit) else None
    except (OSError, subprocess.SubprocessError):
        return None


def _nvidia_driver() -> str | None:
    """The NVIDIA driver release (e.g. 580.159.04) from NVML; the CUDA driver API version
    (cudaDriverGetVersion) is recorded beside it as driver_version."""
    try:
        import pynvml

        pynvml.nvmlInit()
        version = pynvml.nvmlSystemGetDriverVersion()
        return version.decode() if isinstance(version, bytes) else version
    except Exception:  # noqa: BLE001 - no NVML: the CUDA version alone identifies less
        return None


def _gpus() -> dict[str, Any]:
    from .targets import cuda as cu

    module = cu.cuda_module()
    if module is None:
        return {"available": False, "reason": "aibench._cuda not built"}
    count = module.device_count()
    if count == 0:
        return {"available": False, "reason": module.cuda_unavailable_reason()}
    devices = []
    for i in range(count):
        props = cu.device_properties(i)
        nvml, handle = cu._nvml_handle(i)
        devices.append({**props, "name": cu.device_name(i), "pci_id": cu.pci_id(i),
                        "nvml": nvml_settings(nvml, handle) if handle is not None else None})
    return {"available": True, "count": count, "nvidia_driver": _nvidia_driver(),
            "driver_version": module.driver_version(),
            "runtime_version": module.runtime_version(), "cublaslt_version": module.cublaslt_version(),
            "devices": devices}


def _nics(sys_class: str = "/sys/class") -> list[dict[str, Any]]:
    """Physical network ports and their link rate: InfiniBand ports (their `rate`) and
    Ethernet interfaces backed by a device (virtual ones, loopback and bridges have no
    `device` link), for acceptance specs that name a NIC class."""
    root = Path(sys_class)
    nics: list[dict[str, Any]] = []
    for port in sorted(root.glob("infiniband/*/ports/*")):
        try:
            rate = (port / "rate").read_text().strip()  # e.g. "400 Gb/sec (4X NDR)"
            layer = (port / "link_layer").read_text().strip() if (port / "link_layer").exists() else "InfiniBand"
            speed = float(rate.split()[0])
        except (OSError, ValueError, IndexError):
            continue
        nics.append({"name": f"{port.parents[1].name}/{port.name}", "kind": layer, "speed_gbps": speed,
                     "rate": rate})
    for dev in sorted(root.glob("net/*")):
        if not (dev / "device").exists():
            continue
        try:
            speed_mbps = int((dev / "speed").read_text().strip())
        except (OSError, ValueError):
            speed_mbps = -1  # down, or the driver does not say
        nics.append({"name": dev.name, "kind": "Ethernet",
                     "speed_gbps": speed_mbps / 1000 if speed_mbps > 0 else None})
    return nics


def _mpi() -> dict[str, Any] | None:
    """The MPI library's version, without initialising MPI in this process (a singleton
    MPI_Init makes shared-memory segments that a killed process would leave behind):
    from mpi4py's MPI module when a run already started it, else `python -m mpi4py
    --mpi-lib-version` (which does not initialise MPI)."""
    import importlib.util

    if importlib.util.find_spec("mpi4py") is None:
        return None
    version = __import__("mpi4py").__version__
    if "mpi4py.MPI" in sys.modules:
        library = sys.modules["mpi4py.MPI"].Get_library_version()
    else:
        try:
            p = subprocess.run([sys.executable, "-m", "mpi4py", "--mpi-lib-version"], capture_output=True,
                               text=True, timeout=30)
        except (OSError, subprocess.SubprocessError) as e:
            return {"error": str(e), "mpi4py": version}
        if p.returncode != 0:
            return {"error": (p.stderr.strip().splitlines() or ["mpi4py --mpi-lib-version failed"])[-1],
                    "mpi4py": version}
        library = p.stdout
    return {"library": library.strip().splitlines()[0], "mpi4py": version}


def system_fingerprint(measure_clock: bool = True) -> dict[str, Any]:
    vm = psutil.virtual_memory()
    cpu: dict[str, Any] = {
        "model": _cpu_model(),
        "arch": platform.machine(),
        "vendor_family": list(cpu_target.cpu_vendor_family()),
        "flags": _cpu_flags(),
        "isa_paths": list(_core.isa_paths()),
        "best_isa": _core.best_isa(),
        # what the own kernels may use here (AIBENCH_CPU_ISA caps it), and their bf16 / int8 paths
        "isa_levels": list(_core.cpu_isa_levels()),
        "isa_cap": _core.isa_level_cap(),
        "lowp_paths": {d: _core.lowp_paths(d)[0] for d in ("bf16", "int8")},
        "sockets": _sockets(),
        "cores": psutil.cpu_count(logical=False),
        "threads": psutil.cpu_count(logical=True),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        # the cores peaks count: affinity mask's physical cores, capped at the cgroup quota
        "core_budget": cpu_target.core_budget(),
        "caches": cpu_target.cache_sizes(),
        "settings": cpu_settings(),
    }
    if measure_clock:
        clock = cpu_target.clock_reading()
        cpu["clock"] = {k: v for k, v in clock.items() if k != "ghz_per_thread"}
        cpu["measured_clock_ghz"] = clock["ghz_used"]
        cpu["peak_tflops"] = {d: cpu_target.cpu_peak_tflops(d) for d in ("fp64", "fp32", "bf16", "int8")}
        cpu["fma_peak"] = cpu_target.fma_peak_report()
    return {
        "hostname": socket.gethostname(),
        "cpu": cpu,
        "memory": {"total_bytes": vm.total, "available_bytes": vm.available, "numa_nodes": _numa_nodes()},
        "os": {"system": platform.system(), "release": platform.release(), "version": platform.version(),
               "libc": " ".join(platform.libc_ver())},
        "python": {"version": platform.python_version(), "implementation": platform.python_implementation(),
                   "executable": sys.executable},
        "build": dict(_core.build_info()),
        "blas": _blas(),
        "gpus": _gpus(),
        "nics": _nics(),
        "mpi": _mpi(),
        "env": threading_env(),
        "storage_devices": storage_devices(),
        "aibench_version": __version__,
    }
