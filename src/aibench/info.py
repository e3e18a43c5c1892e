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
        dev["peak_tflops"] = {d: gpu_peak(dev["name"], d) for d in ("fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8")}
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
    console.print(f"     caches {cpu['caches']}; measured clock {cpu['measured_clock_ghz']:.3f} GHz")
    for dtype, peak in cpu["peak_tflops"].items():
        if peak:
            console.print(f"     peak {dtype}: {peak['value'] * 1e3:.1f} GFLOP/s  ({peak['source']})")
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
            console.print(f"  {dev['name']} (cc {dev.get('major')}.{dev.get('minor')}): peaks TFLOP/s {peaks or 'unknown'}")
    else:
        console.print(f"GPUs: none ({gpus.get('reason')})")
    if info.get("mpi"):
        console.print(f"MPI: {info['mpi']}")
    return 0
