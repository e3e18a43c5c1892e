"""`aibench info`: the system fingerprint and the theoretical peaks."""

from __future__ import annotations

import json

from rich.console import Console


def add_parser(sub) -> None:
    p_info = sub.add_parser("info", help="system fingerprint and theoretical peaks")
    p_info.add_argument("--json", action="store_true")


def cmd_info(args) -> int:
    from .fingerprint import system_fingerprint
    from .peaks import gpu_peak

    info = system_fingerprint()
    for dev in (info.get("gpus") or {}).get("devices", []):
        dev["peak_tflops"] = {d: gpu_peak(dev["name"], d, dev.get("pci_id"))
                              for d in ("fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8")}
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    console = Console()
    cpu = info["cpu"]
    console.print(f"[bold]{info['hostname']}[/]  {info['os']['system']} {info['os']['release']}  Python {info['python']['version']}")
    console.print(f"CPU: {cpu['model']} ({cpu['arch']}), {cpu['sockets']} socket(s), {cpu['cores']} cores, "
                  f"{cpu['threads']} threads; ISA paths {', '.join(cpu['isa_paths'])} (best {cpu['best_isa']})")
    cap = f"; capped at {cpu['isa_cap']} by AIBENCH_CPU_ISA" if cpu.get("isa_cap") else ""
    console.print(f"     ISA levels {', '.join(cpu.get('isa_levels', []))}{cap}; bf16 path {cpu.get('lowp_paths', {}).get('bf16')}, "
                  f"int8 path {cpu.get('lowp_paths', {}).get('int8')}")
    console.print(f"     caches {cpu['caches']}; peaks count {cpu['core_budget']['source']}")
    clock = cpu["clock"]
    checks = ", ".join(f"{name} {value:.3f} GHz" for name, value in (
        ("perf cycles", clock["perf_cycles_ghz"]), ("APERF", clock["aperf_ghz"]), ("cpufreq max", clock["cpufreq_max_ghz"]),
        ("cpuinfo", clock["cpuinfo_mhz"] / 1e3 if clock["cpuinfo_mhz"] else None)) if value)
    console.print(f"     clock {clock['ghz']:.3f} GHz measured ({clock['chain']}); cross-checks: {checks or 'none readable'}")
    if clock["refused"]:
        console.print(f"     [red]clock refused[/]: {clock['refused']}; peaks use {clock['source']}")
    for dtype, peak in cpu["peak_tflops"].items():
        if peak:
            unit = "GOPS" if peak["unit"] == "TOPS" else "GFLOP/s"
            console.print(f"     peak {dtype}: {peak['value'] * 1e3:.1f} {unit}  ({peak['source']})")
    fma = cpu["fma_peak"]
    for isa, per_dtype in fma.items():
        if isa in ("fma_units_512", "threads"):
            continue
        console.print(f"     measured FMA peak {isa} ({fma['threads']} threads): " + ", ".join(
            f"{dtype} {m['measured_tflops'] * 1e3:.1f} GFLOP/s"
            + (f" ({m['ratio']:.0%} of {m['theoretical_tflops'] * 1e3:.1f})" if m["ratio"] else "")
            for dtype, m in per_dtype.items()))
    if "fma_units_512" in fma:
        console.print(f"     512-bit FMA units: {fma['fma_units_512']['units']} (measured avx512/avx2 "
                      f"{fma['fma_units_512']['avx512_over_avx2']:.2f})")
    settings = cpu["settings"]
    console.print("     " + ", ".join(f"{k} {v}" for k, v in settings.items() if v is not None)
                  + (f"; cgroup quota {cpu['core_budget']['cgroup']['cpus']:g} CPUs" if cpu["core_budget"]["cgroup"] else ""))
    console.print(f"Memory: {info['memory']['total_bytes'] / 2**30:.1f} GiB, NUMA nodes {info['memory']['numa_nodes']}")
    console.print(f"Build: {info['build'].get('compiler')} flags '{info['build'].get('cxx_flags')}', "
                  f"OpenMP {info['build'].get('openmp')}")
    for b in info["blas"]:
        console.print(f"BLAS: {b.get('internal_api')} {b.get('version')} ({b.get('num_threads')} threads, {b.get('architecture')})")
    gpus = info["gpus"]
    if gpus.get("available"):
        console.print(f"GPUs: {gpus['count']}, driver {gpus['driver_version']}, runtime {gpus['runtime_version']}")
        for dev in gpus["devices"]:
            peaks = ", ".join(f"{d} {p['value']:g}" for d, p in dev["peak_tflops"].items() if p)
            console.print(f"  {dev['name']} (cc {dev.get('major')}.{dev.get('minor')}, PCI {dev.get('pci_id')}): "
                          f"peaks TFLOP/s (int8 TOPS) {peaks or 'unknown'}")
            if dev.get("nvml"):
                console.print("    " + ", ".join(f"{k} {v}" for k, v in dev["nvml"].items() if v is not None))
    else:
        console.print(f"GPUs: none ({gpus.get('reason')})")
    for disk in info["storage_devices"]:
        said = [disk["model"], f"firmware {disk['firmware']}" if disk["firmware"] else None,
                f"scheduler {disk['scheduler']}" if disk["scheduler"] else None]
        console.print(f"Storage: {disk['name']} " + ", ".join(s for s in said if s))
    if info["env"]:
        console.print("Env: " + " ".join(f"{k}={v}" for k, v in info["env"].items()))
    if info.get("mpi"):
        console.print(f"MPI: {info['mpi']}")
    return 0
