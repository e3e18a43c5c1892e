"""Attention suite: scaled dot-product attention forward, O = softmax(Q·Kᵀ·scale + mask)·V.

TFLOP/s as FlashAttention counts them (4·B·H·Sq·Sk·D; causal: halved when square, else the
bottom-right mask's visible pairs), validated against a float64 reference on every head
(every query row where that is cheap). Impls: `aibench` (own fused
kernel: C++ on cpu, CUDA on cuda), `numpy` (matmul, softmax, matmul), `torch`
(scaled_dot_product_attention), `jax` (jax.nn.dot_product_attention).
"""

from __future__ import annotations

from typing import Any

from ...errors import UsageError
from ...targets import Target
from ...units import choice, parse_bool, parse_size
from ...dtypes import FORMATS, rate_unit
from ..base import TIERS, AsvSpec, AsvTrack, Param, per_target_asv_specs
from ..charts import Chart
from ..kernel import KernelSuite
from ...registry import register_suite
from . import cpu, cuda, jax

DTYPES = ("fp32", "bf16", "fp16")


def _sweep(tokens: int, seqlens, head_dims, dtypes, gqa: bool = False) -> list[dict[str, Any]]:
    """FlashAttention-benchmark style: batch x seqlen = tokens, model dim 2048."""
    cases = []
    for dtype in dtypes:
        for head_dim in head_dims:
            heads = 2048 // head_dim
            for kv_heads in ([heads, heads // 4] if gqa else [heads]):
                for causal in (False, True):
                    for s in seqlens:
                        cases.append({"batch": max(1, tokens // s), "heads": heads, "kv_heads": kv_heads,
                                      "seqlen": s, "kv_seqlen": s, "head_dim": head_dim, "causal": causal,
                                      "dtype": dtype})
    return cases


@register_suite
class AttentionSuite(KernelSuite):
    name = "attention"
    description = ("Scaled dot-product attention forward, TFLOP/s (4·B·H·D per visible query-key pair), "
                   "validated in float64")
    params = {
        "batch": Param("batch", parse_size, "batch size"),
        "heads": Param("heads", parse_size, "query heads"),
        "kv_heads": Param("kv_heads", parse_size, "key/value heads (fewer than heads: grouped-query)"),
        "seqlen": Param("seqlen", parse_size, "query sequence length"),
        "kv_seqlen": Param("kv_seqlen", parse_size, "key/value sequence length"),
        "head_dim": Param("head_dim", parse_size, "head dimension"),
        "causal": Param("causal", parse_bool, "causal mask (bottom-right aligned)"),
        "dtype": Param("dtype", choice(DTYPES), "element type: " + " ".join(DTYPES)),
    }
    target_kinds = ("cpu", "cuda", "jax")
    comparisons = (("aibench", "numpy"), ("aibench", "torch"), ("aibench", "jax"))
    charts = (Chart(name="attention-{split}", title="Attention {split}: TFLOP/s against sequence length", x="seqlen",
                    x_label="sequence length", log_x=True, metric="tflops", y_label=rate_unit,
                    series=("heads", "kv_heads", "head_dim", "causal"), split="dtype", split_order=tuple(FORMATS),
                    labels={"heads": "h{}".format, "kv_heads": "kv{}".format, "head_dim": "d{}".format,
                            "causal": lambda causal: "causal" if causal else ""}, peaks=True),)
    coupled = {"kv_seqlen": "seqlen", "kv_heads": "heads"}

    IMPLS = (*cpu.IMPLS, *cuda.IMPLS, jax.JaxAttentionRunner)
    cpu_bytes = staticmethod(cpu.memory_needed)  # what one impl holds (KernelSuite.case_bytes)
    cuda_bytes = staticmethod(cuda.device_bytes)

    def default_cases(self, tier: str, target: Target) -> list[dict[str, Any]]:
        if target.kind == "jax":
            from ...targets.jax import jax_platform

            accelerated = jax_platform(target) in ("tpu", "gpu")
        else:
            accelerated = target.kind == "cuda"
        if not accelerated:  # CPUs: batch x seqlen = 4096
            if tier == "quick":
                return _sweep(4096, [1024], [128], ("fp32", "bf16"))
            return _sweep(4096, [512, 1024, 2048, 4096], [64, 128], ("fp32", "bf16"), gqa=tier == "full")
        if tier == "quick":  # GPUs and TPUs: batch x seqlen = 16384
            return _sweep(16384, [4096], [64, 128], ("bf16",))
        return _sweep(16384, [512, 1024, 2048, 4096, 8192, 16384], [64, 128],
                      ("bf16", "fp16") if tier == "full" else ("bf16",), gqa=tier == "full")

    def check_case(self, params: dict[str, Any], target: Target) -> None:
        if params["heads"] % params["kv_heads"]:
            raise UsageError(f"attention heads={params['heads']} is not a multiple of kv_heads={params['kv_heads']}")
        if target.kind == "cpu" and params["dtype"] == "fp16":
            raise UsageError("attention dtype fp16 is not available on the cpu target (cpu: fp32, bf16)")
        if target.kind == "cpu":
            from .cpu import check_fits_in_memory

            check_fits_in_memory(params)

    def case_id(self, p: dict[str, Any]) -> str:
        gqa = f"/{p['kv_heads']}" if p["kv_heads"] != p["heads"] else ""
        kv = f"x{p['kv_seqlen']}" if p["kv_seqlen"] != p["seqlen"] else ""
        return (f"b{p['batch']}h{p['heads']}{gqa}s{p['seqlen']}{kv}d{p['head_dim']}"
                f"{'-causal' if p['causal'] else ''}-{p['dtype']}")

    def asv_specs(self) -> list[AsvSpec]:
        def values(kind: str) -> tuple[tuple, ...]:
            kinds = ("cpu", "cuda") if kind == "jax" else (kind,)  # JAX runs either sweep
            shapes = dict.fromkeys(_shape(c) for k in kinds for t in TIERS
                                   for c in self.default_cases(t, Target(k, 0 if k == "cuda" else None)))
            return tuple(shapes), (False, True), DTYPES

        return per_target_asv_specs(
            self, "Attention", self.target_kinds, ("shape", "causal", "dtype"),
            lambda p: (_shape(p), p["causal"], p["dtype"]), values,
            (AsvTrack("track_tflops", "tflops", "TFLOP/s"), AsvTrack("track_time", "time_us", "seconds", 1e-6)),
            version="1")


def _shape(p: dict[str, Any]) -> str:
    return f"b{p['batch']}h{p['heads']}/{p['kv_heads']}s{p['seqlen']}x{p['kv_seqlen']}d{p['head_dim']}"
