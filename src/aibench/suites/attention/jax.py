"""Attention through JAX: jax.nn.dot_product_attention, jitted, on the target's JAX device:
on a GPU through cuDNN's flash attention (implementation='cudnn') where JAX offers it for
the case, else XLA's default, with the reason recorded (detail: `attention_backend`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import SkipCase
from ...targets import jax as jx
from ..base import RunContext
from ..kernel import jax_timing_detail
from .common import AttentionRunner, default_scale, kv_head


class JaxAttentionRunner(jx.ReturnedOutput, AttentionRunner):
    name = "jax"
    target_kinds = ("cuda", "jax")
    description = "jax.nn.dot_product_attention, jitted (XLA), on JAX's device"
    unavailable = staticmethod(jx.unavailable_reason)

    def __init__(self, p: dict[str, Any], ctx: RunContext):
        self.dev = jx.require(ctx.target)
        import jax
        import jax.numpy as jnp

        self.p = p
        b, h, hk, sq, sk, d = p["batch"], p["heads"], p["kv_heads"], p["seqlen"], p["kv_seqlen"], p["head_dim"]
        if p["causal"] and p["seqlen"] > p["kv_seqlen"]:
            raise SkipCase("causal with seqlen > kv_seqlen leaves rows with no visible key, which JAX does not define as 0")
        if p["dtype"] == "fp16" and self.dev.platform == "cpu":
            raise SkipCase("JAX's CPU backend computes fp16 attention by upcasting; not a figure of the CPU")
        dt = jx.jnp_dtype(p["dtype"])
        rng = np.random.default_rng(ctx.seed)
        # JAX's layout is (batch, seq, heads, head_dim).
        put = lambda shape: jax.device_put(jnp.asarray(rng.uniform(-1, 1, shape).astype(np.float32), dtype=dt), self.dev)
        self.q, self.k, self.v = put((b, sq, h, d)), put((b, sk, hk, d)), put((b, sk, hk, d))
        kwargs: dict[str, Any] = {"scale": default_scale(d)}
        if p["causal"] and sq == sk:
            kwargs["is_causal"] = True
        elif p["causal"]:  # bottom-right alignment, as the other impls
            visible = np.arange(sk)[None, :] <= (np.arange(sq)[:, None] + (sk - sq))
            kwargs["mask"] = jax.device_put(jnp.asarray(visible[None, None]), self.dev)
        self.args = (self.q, self.k, self.v)
        self.fn, self.backend = self._compiled(kwargs)
        self.time = jx.timer(self.fn, self.args)

    def _compiled(self, kwargs: dict[str, Any]):
        """The jitted attention, through cuDNN's flash attention on a GPU where JAX's cudnn
        implementation compiles for the case, else XLA's: (fn, {implementation, why})."""
        import jax

        p = self.p

        def jitted(implementation):
            return jax.jit(lambda q, k, v: jax.nn.dot_product_attention(q, k, v, implementation=implementation,
                                                                        **kwargs))

        if self.dev.platform != "gpu":
            why = f"cuDNN's flash attention runs on NVIDIA GPUs, not on {self.dev.platform}"
        elif p["dtype"] not in ("bf16", "fp16"):
            why = f"cuDNN's flash attention takes bf16 and fp16, not {p['dtype']}"
        elif "mask" in kwargs:
            why = ("the causal mask with seqlen != kv_seqlen is bottom-right aligned; JAX's cudnn path has only the "
                   "top-left CAUSAL mask type")
        else:
            fn = jitted("cudnn")
            try:
                fn.lower(*self.args).compile()
                return fn, {"implementation": "cudnn", "why": "cuDNN flash attention (jax.nn.dot_product_attention)"}
            except Exception as e:  # noqa: BLE001 - any refusal of cuDNN's: XLA, with the reason
                why = f"cuDNN refused the case: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        return jitted("xla"), {"implementation": "xla", "why": why}

    def head(self, b, h):
        hk = kv_head(h, self.p["heads"], self.p["kv_heads"])
        f64 = lambda x: np.asarray(x.astype("float32"), dtype=np.float64)
        return f64(self.q[b, :, h]), f64(self.k[b, :, hk]), f64(self.v[b, :, hk]), f64(self.result[b, :, h])

    def detail(self) -> dict:
        return {**jx.describe(self.dev), "attention_backend": self.backend, "timing": jax_timing_detail(self.dev)}

    def peak(self) -> dict | None:
        return jx.peak(self.dev, self.p["dtype"])

    def close(self) -> None:
        self.q = self.k = self.v = self.result = None
