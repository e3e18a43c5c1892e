"""Attention suite: scaled dot-product attention forward, O = softmax(Q·Kᵀ·scale + mask)·V.

TFLOP/s as FlashAttention counts them (4·B·H·Sq·Sk·D, halved when causal), validated
against a float64 reference on sampled heads and query rows. Impls: `aibench` (own fused
kernel: C++ on cpu, CUDA on cuda), `numpy` (matmul, softmax, matmul), `torch`
(scaled_dot_product_attention), `jax` (jax.nn.dot_product_attention).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import UsageError
from ...results import FAILED, PASSED, CaseResult, Validation
from ...targets import Target
from ..base import TIERS, AsvSpec, AsvTrack, Impl, Param, RunContext, Suite, choice, per_target_asv_specs, positive_int
from ..kernel import impls_from_runners, run_kernel_case
from .common import (AttentionRunner, attention_flops, attention_tolerance, default_scale, reference_rows,
                     sampled_heads, sampled_rows)

DTYPES = ("fp32", "bf16", "fp16")


def _bool(text: str) -> bool:
    t = text.strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


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


class AttentionSuite(Suite):
    name = "attention"
    description = "Scaled dot-product attention forward, TFLOP/s (4·B·H·Sq·Sk·D, causal halves), validated in float64"
    params = {
        "batch": Param("batch", positive_int, "batch size"),
        "heads": Param("heads", positive_int, "query heads"),
        "kv_heads": Param("kv_heads", positive_int, "key/value heads (fewer than heads: grouped-query)"),
        "seqlen": Param("seqlen", positive_int, "query sequence length"),
        "kv_seqlen": Param("kv_seqlen", positive_int, "key/value sequence length"),
        "head_dim": Param("head_dim", positive_int, "head dimension"),
        "causal": Param("causal", _bool, "causal mask (bottom-right aligned)"),
        "dtype": Param("dtype", choice(DTYPES), "element type: " + " ".join(DTYPES)),
    }
    target_kinds = ("cpu", "cuda", "jax")
    comparisons = (("aibench", "numpy"), ("aibench", "torch"), ("aibench", "jax"))
    coupled = {"kv_seqlen": "seqlen", "kv_heads": "heads"}

    def impls(self) -> list[Impl]:
        return impls_from_runners(self.name, self.target_kinds, _runners)

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

    def run_case(self, params: dict[str, Any], impl: Impl, ctx: RunContext) -> CaseResult:
        return run_kernel_case(self.name, self.case_id(params), params, impl, ctx,
                               _runners(ctx.target.kind)[impl.name], _validate, _flops)


def _shape(p: dict[str, Any]) -> str:
    return f"b{p['batch']}h{p['heads']}/{p['kv_heads']}s{p['seqlen']}x{p['kv_seqlen']}d{p['head_dim']}"


def _validate(runner: AttentionRunner, p: dict[str, Any], seed: int) -> Validation:
    rng = np.random.default_rng(seed + 11)
    scale = default_scale(p["head_dim"])
    errors, refs = [], []
    for b, h in sampled_heads(rng, p["batch"], p["heads"]):
        q, k, v, o = runner.head(b, h)
        rows = sampled_rows(rng, p["seqlen"])
        ref = reference_rows(q, k, v, rows, p["causal"], scale)
        got = o[rows]
        refs.append(ref)
        errors.append(np.inf if not np.all(np.isfinite(got)) else float(np.max(np.abs(got - ref))))
    ref_all = np.concatenate(refs)
    rms = float(np.sqrt(np.mean(ref_all * ref_all))) or 1.0
    error = max(errors) / rms
    tol = attention_tolerance(p["dtype"], ref_all)
    if error <= tol:
        return Validation(status=PASSED, max_rel_error=error, tolerance=tol)
    return Validation(status=FAILED, max_rel_error=error, tolerance=tol,
                      reason=f"wrong result: max error {error:.3g} (relative to the rms of O) exceeds tolerance {tol:.3g}")


def _flops(p: dict[str, Any]) -> float:
    return attention_flops(p)


def _runners(kind: str) -> dict[str, type[AttentionRunner]]:
    from . import cpu, cuda, jax

    return {"cpu": cpu.RUNNERS, "cuda": {**cuda.RUNNERS, "jax": jax.JaxAttentionRunner},
            "jax": {"jax": jax.JaxAttentionRunner}}.get(kind, {})
