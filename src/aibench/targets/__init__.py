"""Targets: where a case runs. `cpu`, `cuda[:N]`, `jax[:platform]`."""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass

from ..errors import UsageError

TARGET_KINDS = ("cpu", "cuda", "jax")


@dataclass(frozen=True)
class Target:
    kind: str  # cpu | cuda | jax
    index: int | None = None  # cuda device number
    platform: str | None = None  # jax platform (tpu, gpu, cpu)

    def __str__(self) -> str:
        if self.kind == "cuda":
            return f"cuda:{self.index or 0}"
        if self.kind == "jax" and self.platform:
            return f"jax:{self.platform}"
        return self.kind


def parse_target(text: str) -> Target:
    m = re.fullmatch(r"(cpu|cuda|jax)(?::([A-Za-z0-9]+))?", text.strip())
    if not m:
        raise UsageError(f"unknown target {text!r}: expected cpu, cuda[:N] or jax[:tpu|gpu|cpu]")
    kind, arg = m.group(1), m.group(2)
    if kind == "cpu":
        if arg is not None:
            raise UsageError(f"target 'cpu' takes no qualifier (got {text!r})")
        return Target("cpu")
    if kind == "cuda":
        if arg is None:
            return Target("cuda", 0)
        if not arg.isdigit():
            raise UsageError(f"bad CUDA device in {text!r}: expected cuda:N with N a device number")
        return Target("cuda", int(arg))
    if arg is not None and arg not in ("tpu", "gpu", "cpu"):
        raise UsageError(f"bad JAX platform in {text!r}: expected tpu, gpu or cpu")
    return Target("jax", platform=arg)


def torch_missing(target: Target | None = None) -> str | None:
    """Why the torch impls cannot run here (torch is an optional peer), or None. On the
    cuda target the GPU itself must be usable too."""
    if target is not None and target.kind == "cuda":
        from .cuda import unavailable_reason

        reason = unavailable_reason(target)
        if reason is not None:
            return reason
    if importlib.util.find_spec("torch") is None:
        return "PyTorch is not installed (pip install 'aibench[torch]')"
    return None


def bound_for_peak(peak: dict | None, fresh: bool = False) -> dict | None:
    """The independent bound of a compute figure whose theoretical peak is `peak`
    ({value, unit, source, kind}), or None where there is none:
    - a datasheet peak (GPU, TPU; kind "datasheet") is itself the bound: no figure exceeds
      what the device's units do at their maximum boost clock, the clock it is rated at;
    - a CPU peak (kind "cpu") is bounded by the measured FMA rate of the same instructions
      (targets.cpu.compute_bound: the theoretical peak is itself held to that rate).
    `fresh`: measure again (a figure above the bound is judged against a new measurement)."""
    if not peak:
        return None
    if peak.get("kind") == "datasheet":
        return {"value": peak["value"], "unit": peak["unit"], "source": f"{peak['source']} (maximum boost clock)"}
    if peak.get("kind") == "cpu":
        from .cpu import compute_bound

        return compute_bound(peak["dtype"], peak["isa"] if peak["isa"] not in ("amx_bf16", "amx_int8") else None,
                             fresh)
    return None
