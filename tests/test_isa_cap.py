"""AIBENCH_CPU_ISA: the own kernels held to one instruction level, on every level this CPU
can run (so a machine with AVX-512 also runs the AVX2 and scalar paths here), and a level
it cannot run refused as a usage error."""

import json

import numpy as np
import pytest

from aibench import _core
from aibench.cli import main

LEVELS = list(_core.cpu_isa_levels())


def _paths():
    """Every kernel's paths under the cap in force. Each path's name is the level it needs."""
    return {
        "gemm": list(_core.isa_paths()),
        "attention fp32": list(_core.attention_paths("fp32")),
        "attention bf16": list(_core.attention_paths("bf16")),
        "bf16": list(_core.lowp_paths("bf16")),
        "int8": list(_core.lowp_paths("int8")),
    }


@pytest.mark.parametrize("level", LEVELS)
def test_cap_holds_every_kernel_to_the_level(level, monkeypatch):
    # The paths under a cap are exactly the uncapped ones filtered to the levels up to the
    # cap: nothing here assumes what a CPU has.
    monkeypatch.delenv("AIBENCH_CPU_ISA", raising=False)
    uncapped = _paths()
    allowed = LEVELS[:LEVELS.index(level) + 1]
    monkeypatch.setenv("AIBENCH_CPU_ISA", level)
    assert _core.isa_level_cap() == level
    capped = _paths()
    for kind, paths in uncapped.items():
        assert set(paths) <= set(LEVELS), f"{kind}: a path that is no level: {paths}"
        assert capped[kind] == [p for p in paths if p in allowed], kind
    assert _core.best_isa() == capped["gemm"][-1]
    # The kernels run (and are right) at the level: 'auto' is the capped path.
    rng = np.random.default_rng(0)
    a, b = rng.uniform(-1, 1, (37, 300)), rng.uniform(-1, 1, (300, 41))
    c = np.empty((37, 41))
    _core.gemm(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-12, atol=1e-12)
    ai = rng.integers(-128, 127, (9, 70), dtype=np.int8, endpoint=True)
    bi = rng.integers(-128, 127, (70, 11), dtype=np.int8, endpoint=True)
    ci = np.empty((9, 11), np.int32)
    _core.gemm(ai, bi, ci)
    assert np.array_equal(ci, ai.astype(np.int64) @ bi.astype(np.int64))
    # Paths above the level are refused, not silently run.
    for path in uncapped["gemm"]:
        if path not in allowed:
            with pytest.raises(ValueError, match="AIBENCH_CPU_ISA"):
                _core.gemm(a, b, c, path)
    # The same for native bf16 / int8 paths the CPU has but the level excludes.
    ab, bb, cb = ai.astype(np.uint16), bi.astype(np.uint16), ci.astype(np.float32)
    for dtype, operands in (("int8", (ai, bi, ci)), ("bf16", (ab, bb, cb))):
        for native in uncapped[dtype]:
            if _core.is_native_lowp_path(native) and native not in allowed:
                with pytest.raises(ValueError, match="AIBENCH_CPU_ISA"):
                    _core.gemm(*operands, native)


def test_run_records_the_capped_path(tmp_path, monkeypatch):
    monkeypatch.setenv("AIBENCH_CPU_ISA", "scalar")
    out = tmp_path / "run.json"
    code = main(["run", "--param", "m=33", "--param", "n=20", "--param", "k=17", "--param", "dtype=fp32,bf16,int8",
                 "--impl", "aibench", "--output", str(out), "--time-budget", "0.05", "--no-asv"])
    assert code == 0
    doc = json.loads(out.read_text())
    assert doc["system"]["cpu"]["isa_cap"] == "scalar"
    for case in doc["cases"]:
        assert case["status"] == "passed" and case["impl_detail"]["isa"] == "scalar", case
        assert case["percent_of_peak"] <= 100  # held to the scalar path's peak


@pytest.mark.parametrize("value", ["avx1024", "AVX2 ", "avx512_bf16" if "avx512_bf16" not in LEVELS else "nope"])
def test_unknown_or_unrunnable_level_is_a_usage_error(value, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("AIBENCH_CPU_ISA", value)
    code = main(["run", "--param", "m=8", "--param", "n=8", "--param", "k=8", "--output", str(tmp_path / "r.json"),
                 "--no-asv"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "AIBENCH_CPU_ISA" in err and "scalar" in err
    assert not (tmp_path / "r.json").exists()
