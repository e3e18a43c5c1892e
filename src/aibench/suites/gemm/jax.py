"""GEMM through JAX: jnp.matmul jitted on the target's JAX device (int8 through
lax.dot with int32 accumulation; fp32 at HIGHEST precision so a TPU does not quietly
use bf16 passes)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import SkipCase
from ...targets import jax as jx
from ..base import RunContext
from ..kernel import jax_timing_detail
from .common import GemmRunner

JAX_DTYPES = ("fp32", "bf16", "fp16", "int8")


class JaxGemmRunner(jx.ReturnedOutput, GemmRunner):
    name = "jax"
    target_kinds = ("jax",)
    description = "jnp.matmul / lax.dot, jitted (XLA), on JAX's device"
    unavailable = staticmethod(jx.unavailable_reason)

    def __init__(self, p: dict[str, Any], ctx: RunContext):
        self.dev = jx.require(ctx.target)
        if p["dtype"] not in JAX_DTYPES:
            raise SkipCase(f"the jax gemm covers {', '.join(JAX_DTYPES)}, not {p['dtype']}")
        import jax
        import jax.numpy as jnp

        self.dtype = p["dtype"]
        m, n, k = p["m"], p["n"], p["k"]
        rng = np.random.default_rng(ctx.seed)
        if self.dtype == "int8":
            host = lambda shape: rng.integers(-8, 9, shape, dtype=np.int8)
            self.fn = jax.jit(lambda a, b: jax.lax.dot(a, b, preferred_element_type=jnp.int32))
        else:
            host = lambda shape: rng.uniform(-1, 1, shape).astype(np.float32)
            self.fn = jax.jit(lambda a, b: jnp.matmul(a, b, precision=jax.lax.Precision.HIGHEST))
        dt = jx.jnp_dtype(self.dtype)
        self.a = jax.device_put(jnp.asarray(host((m, k)), dtype=dt), self.dev)
        self.b = jax.device_put(jnp.asarray(host((k, n)), dtype=dt), self.dev)
        self.args = (self.a, self.b)
        self.time = jx.timer(self.fn, self.args)
        self.integer_output = self.dtype == "int8"

    def rows(self, which, start, stop):
        return np.asarray({"a": self.a, "b": self.b, "c": self.result}[which][start:stop]).astype(np.float64)

    def sample(self, rows, cols):
        f64 = lambda x: np.asarray(x.astype("float32"), dtype=np.float64)
        return f64(self.a[rows, :]), f64(self.b[:, cols]), f64(self.result[rows][:, cols])

    def validation_dtype(self) -> str:
        return self.dtype

    def detail(self) -> dict:
        return {**jx.describe(self.dev), "timing": jax_timing_detail(self.dev)}

    def peak(self) -> dict | None:
        return jx.peak(self.dev, self.dtype)

    def close(self) -> None:
        self.a = self.b = self.result = None
