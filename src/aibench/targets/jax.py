"""The jax target: JAX's default device (TPU on a TPU host, else GPU, else CPU), or the
platform named as jax:tpu / jax:gpu / jax:cpu. Timing is wall-clock around `number` calls
of a compiled (jitted) function dispatched back to back (JAX dispatches asynchronously),
with block_until_ready on the last one only, after warm-up compilation."""

from __future__ import annotations

import functools
import importlib.util
import time
from typing import Any, Callable

from ..errors import SkipCase
from . import Target


def unavailable_reason(target: Target) -> str | None:
    if importlib.util.find_spec("jax") is None:
        return "JAX is not installed (pip install 'aibench[jax]')"
    try:
        device(target)
    except RuntimeError as e:
        return f"JAX has no {target.platform or 'default'} device: {str(e).splitlines()[0]}"
    return None


def device(target: Target):
    """The JAX device a target names: jax[:platform] -> first device of that platform,
    cuda:N -> JAX's GPU device N."""
    import jax

    if target.kind == "cuda":
        return jax.devices("gpu")[target.index or 0]
    return jax.devices(target.platform)[0] if target.platform else jax.devices()[0]


def jax_platform(target: Target) -> str | None:
    try:
        return device(target).platform
    except Exception:  # noqa: BLE001 - no JAX or no device: treated as a CPU-sized sweep
        return None


def require(target: Target):
    reason = unavailable_reason(target)
    if reason is not None:
        raise SkipCase(reason)
    return device(target)


def describe(dev) -> dict[str, Any]:
    import jax

    return {"jax": jax.__version__, "platform": dev.platform, "device_kind": dev.device_kind,
            "device_count": len(jax.devices(dev.platform))}


def peak(dev, dtype: str) -> dict | None:
    from ..peaks import gpu_peak, tpu_peak
    from .cpu import cpu_peak_tflops

    if dev.platform == "tpu":
        return tpu_peak(dev.device_kind, dtype)
    if dev.platform == "gpu":
        return gpu_peak(dev.device_kind, dtype)
    return cpu_peak_tflops(dtype)


# On a GPU the timed calls rotate through copies of the operands (at most this many
# sets) so that no call finds its operands in L2 from the call before, as the cuda
# target's L2 flush before each launch does; a flush cannot be used here because the
# loop is timed as a whole (wall clock), so it would be timed too.
MAX_OPERAND_SETS = 64
_UNKNOWN_L2_BYTES = 128 * 2**20  # more than any current GPU's L2


def _gpu_l2_bytes(dev) -> int:
    try:
        from . import cuda as cu

        return int(cu.device_properties(dev.id).get("l2_cache_bytes") or _UNKNOWN_L2_BYTES)
    except Exception:  # noqa: BLE001 - no aibench._cuda (a JAX-only install): assume the largest
        return _UNKNOWN_L2_BYTES


def operand_sets(args: tuple) -> list[tuple]:
    """`args`, then on a GPU enough copies of them that the sets together exceed twice the
    L2 (one copy when the operands alone do; at most MAX_OPERAND_SETS sets)."""
    arrays = [a for a in args if hasattr(a, "devices")]
    dev = next(iter(arrays[0].devices()), None) if arrays else None
    if getattr(dev, "platform", None) != "gpu":
        return [args]
    nbytes = max(1, sum(int(a.nbytes) for a in arrays))
    count = min(MAX_OPERAND_SETS, 1 + -(-2 * _gpu_l2_bytes(dev) // nbytes))
    return [args] + [tuple(a.copy() if hasattr(a, "devices") else a for a in args) for _ in range(count - 1)]


def timer(fn: Callable, args: tuple) -> Callable[[int], float]:
    """`number` calls of a jitted function dispatched back to back, the last one waited
    for (block_until_ready): the device runs them in order, so the time is the device's
    while dispatch keeps ahead of it (not a wait per call). On a GPU the calls rotate
    through copies of the operands (operand_sets), the last call on `args` itself. The
    returned timer keeps the last call's output as `.last` and the number of operand
    sets as `.operand_sets`."""
    sets = operand_sets(args)

    def run(number: int) -> float:
        start = time.perf_counter()
        for i in range(number):
            out = fn(*sets[(number - 1 - i) % len(sets)])
        out.block_until_ready()
        elapsed = time.perf_counter() - start
        run.last = out  # the last call's output (on `args`), for validation
        return elapsed

    run.operand_sets = len(sets)
    return run


@functools.lru_cache(maxsize=None)
def jnp_dtype(dtype: str):
    import jax.numpy as jnp

    return {"fp32": jnp.float32, "bf16": jnp.bfloat16, "fp16": jnp.float16, "int8": jnp.int8,
            "fp64": jnp.float64}[dtype]


class ReturnedOutput:
    """What JAX runners share: a jitted call returns its output, kept as `self.result`
    (the last timed call's, for validation); a fault replaces it with a corrupted copy."""

    result = None
    integer_output = False  # an int32 output (int8 GEMM), else float

    def run(self) -> None:
        self.result = self.fn(*self.args)
        self.result.block_until_ready()

    def poison_output(self) -> None:
        self.result = None

    def collect_timed_output(self) -> None:
        self.result = self.time.last

    def output(self):
        import numpy as np

        return (np.asarray(self.result).astype(np.int32), "int32") if self.integer_output else \
            (np.asarray(self.result).astype(np.float64), "fp64")

    def set_output(self, out) -> None:
        import jax

        self.result = jax.device_put(out, self.dev)
