"""Spec lint (accept/lint.py, `aibench accept --lint`): every threshold in its metric's unit
and between 5% of the hardware's bound and the bound; docs/specs.md generated from the
shipped specs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aibench.accept import specdoc
from aibench.accept.spec import SpecError, load_spec, shipped_specs
from aibench.cli import main

H200 = 'spec_version = 1\nname = "{name}"\ntarget = "cuda"\n[hardware]\ngpu_name = "{gpu}"\n'


def _spec(tmp_path: Path, threshold: str, name="t", gpu="(?<!G)H200(?! NVL)", suite="gemm", metric="tflops",
          params='{ dtype = "bf16" }', header=None) -> str:
    path = tmp_path / f"{name}.toml"
    path.write_text((header if header is not None else H200.format(name=name, gpu=gpu))
                    + f'[[check]]\nid = "c"\nsuite = "{suite}"\nparams = {params}\nmetric = "{metric}"\n'
                      f'{threshold}\nsource = "test"\n')
    return str(path)


def _lint(capsys, *specs: str) -> tuple[int, str, str]:
    code = main(["accept", "--lint", *specs])
    out, err = capsys.readouterr()
    return code, out, err


def test_every_shipped_spec_passes_lint(capsys):
    paths = [str(p) for p in shipped_specs().values()]
    code, out, err = _lint(capsys, *paths)
    assert (code, err) == (0, "")
    assert len(re.findall(r"^\S+: \d+ (checks pass|check passes) lint$", out, re.MULTILINE)) == len(paths)


def test_a_threshold_1000x_too_low_is_refused_with_one_line(tmp_path, capsys):
    """DCGM's H200 bandwidth threshold was 2,333 MB/s, 1000x too low: a unit slip that passes
    every node. Here 600 GFLOP/s meant for 600 TFLOP/s of bf16 on an H200."""
    code, out, err = _lint(capsys, _spec(tmp_path, 'min = 600\nunit = "GFLOP/s"'))
    assert code == 2 and out == ""
    assert err == ("aibench: lint: t check c: min 600 GFLOP/s (= 0.6 TFLOP/s) is below 5% of the hardware bound "
                   "989 TFLOP/s, the H200 SXM bf16 datasheet dense peak (peaks.py, PCI ID 10de:2335) (at least "
                   "49.45 TFLOP/s): it passes a broken node\n")
    # The same slip on a NIC spec: 40 MB/s for 40 GB/s of busbw over 400 Gbit/s NICs.
    nic = ('spec_version = 1\nname = "n"\n[hardware]\nmin_nodes = 2\nmin_nics = 1\nnic_min_gbps = 400\n')
    code, _, err = _lint(capsys, _spec(tmp_path, 'min = 40\nunit = "MB/s"', name="n", suite="interconnect",
                                       metric="busbw_gbps", params='{ pattern = "allreduce" }', header=nic))
    assert code == 2 and err.count("\n") == 1
    assert "min 40 MB/s (= 0.04 GB/s) is below 5% of the hardware bound 50 GB/s, the line rate of the 1 x 400 " \
           "Gbit/s NIC(s)" in err


def test_a_min_above_the_peak_is_refused_and_the_lowest_admitted_sku_bounds_it(tmp_path, capsys):
    code, out, err = _lint(capsys, _spec(tmp_path, 'min = 1200\nunit = "TFLOP/s"'))
    assert (code, out) == (2, "")
    assert err == ("aibench: lint: t check c: min 1200 TFLOP/s is above the hardware bound 989 TFLOP/s, the H200 "
                   "SXM bf16 datasheet dense peak (peaks.py, PCI ID 10de:2335)\n")
    # "H200" admits the H200 NVL too (835.5 dense bf16): 900 is above what that card can do.
    code, _, err = _lint(capsys, _spec(tmp_path, 'min = 900\nunit = "TFLOP/s"', gpu="H200"))
    assert code == 2 and "above the hardware bound 835.5 TFLOP/s, the H200 NVL bf16" in err
    # Between 5% and the peak it loads.
    assert _lint(capsys, _spec(tmp_path, 'min = 600\nunit = "TFLOP/s"'))[0] == 0


def _memory_lint(tmp_path, capsys, threshold: str, kernel: str, gpu="(?<!G)H200(?! NVL)") -> tuple[int, str, str]:
    """`aibench accept --lint` on a GPU spec of one memory-suite check."""
    return _lint(capsys, _spec(tmp_path, threshold, gpu=gpu, suite="memory", metric="gbps",
                               params=f'{{ kernel = "{kernel}" }}'))


def test_dcgms_h200_memory_threshold_is_refused_against_the_hbm_datasheet(tmp_path, capsys):
    """DCGM's shipped H200 SXM threshold: 2,333 MB/s on the HBM copy, 1000x below 4.8 TB/s."""
    code, out, err = _memory_lint(tmp_path, capsys, 'min = 2333\nunit = "MB/s"', "d2d")
    assert (code, out) == (2, "")
    assert err == ("aibench: lint: t check c: min 2333 MB/s (= 2.333 GB/s) is below 5% of the hardware bound 4800 "
                   "GB/s, the H200 SXM memory datasheet bandwidth 4.8 TB/s (peaks.py, PCI ID 10de:2335; a d2d copy "
                   "counts its reads and writes, as the datasheet does) (at least 240 GB/s): it passes a broken node\n")
    # The same copy above what the slowest admitted SKU's HBM gives: "H100" admits the PCIe card (2 TB/s).
    code, _, err = _memory_lint(tmp_path, capsys, 'min = 2500\nunit = "GB/s"', "d2d", gpu="H100")
    assert code == 2 and "above the hardware bound 2000 GB/s, the H100 PCIe memory datasheet bandwidth" in err


def test_a_host_copy_above_the_pcie_link_is_refused(tmp_path, capsys):
    code, out, err = _memory_lint(tmp_path, capsys, 'min = 70\nunit = "GB/s"', "h2d")
    assert (code, out) == (2, "")
    assert err == ("aibench: lint: t check c: min 70 GB/s is above the hardware bound 63.02 GB/s, the H200 SXM's "
                   "PCIe Gen5 x16 host link, one way (32 GT/s x 16 x 0.9846 line encoding = 63.02 GB/s; peaks.py, "
                   "the datasheet's interconnect row)\n")
    # An A100 sits on Gen4 x16 (31.51 GB/s): Azure's 48 GB/s Gen5 gate is above it.
    code, _, err = _memory_lint(tmp_path, capsys, 'min = 48\nunit = "GB/s"', "d2h", gpu="A100-SXM4-80GB")
    assert code == 2 and "above the hardware bound 31.51 GB/s, the A100 SXM4 80GB's PCIe Gen4 x16" in err
    # Under the link it loads; a GH200 reaches its host over NVLink-C2C: no PCIe bound, a note.
    assert _memory_lint(tmp_path, capsys, 'min = 48\nunit = "GB/s"', "h2d")[0] == 0
    code, out, err = _memory_lint(tmp_path, capsys, 'min = 48\nunit = "GB/s"', "h2d", gpu="GH200")
    assert (code, err) == (0, "") and "no hardware bound is known for memory gbps" in out


def test_cpu_memory_has_no_bound_at_lint_time(tmp_path, capsys):
    header = 'spec_version = 1\nname = "cpu"\n'
    code, out, err = _lint(capsys, _spec(tmp_path, 'min = 0.001\nunit = "GB/s"', name="cpu", suite="memory",
                                         metric="gbps", params='{ kernel = "triad" }', header=header))
    assert (code, err) == (0, "")
    assert "no hardware bound is known for memory gbps (the CPU memory bound is the node's DIMMs' data rate" in out


def test_units_convert_within_a_quantity_and_are_refused_across_quantities(tmp_path, capsys):
    nic = 'spec_version = 1\nname = "n"\n'
    spec = load_spec(_spec(tmp_path, 'min = 40000\nunit = "MB/s"', name="n", suite="interconnect",
                           metric="busbw_gbps", params='{ pattern = "allreduce" }', header=nic))
    [check] = spec.checks
    assert (check.min, check.unit) == (pytest.approx(40.0), "GB/s")  # the judge compares like with like
    code, _, err = _lint(capsys, _spec(tmp_path, 'min = 600\nunit = "GB/s"'))
    assert code == 2 and err == ("aibench: lint: t check c: min 600 GB/s: GB/s (bandwidth) cannot be compared with "
                                 "TFLOP/s (floating-point rate) (the gemm suite records tflops in TFLOP/s)\n")
    # int8 is counted in TOPS, not TFLOP/s (dtypes.rate_unit).
    code, _, err = _lint(capsys, _spec(tmp_path, 'min = 1000\nunit = "TFLOP/s"', params='{ dtype = "int8" }'))
    assert code == 2 and "cannot be compared with TOPS" in err


@pytest.mark.parametrize("threshold, words", [
    ("fraction_of_peak = 1.5", "fraction_of_peak is a fraction in (0, 1]"),
    ("fraction_of_peak = 0", "fraction_of_peak must be a positive finite number"),
    ("ratio_to_fleet_median = 3", "ratio_to_fleet_median 3 is outside (0, 2]"),
    ('ratio_to_reference = 90\nreference = "nvidia-h200-cuda-quick"', "ratio_to_reference 90 is outside (0, 2]"),
])
def test_fractions_and_ratios_out_of_range_are_refused(tmp_path, capsys, threshold, words):
    code, _, err = _lint(capsys, _spec(tmp_path, threshold))
    assert code == 2 and err.count("\n") == 1 and words in err


def test_ratios_up_to_2_and_fractions_up_to_1_load(tmp_path):
    for threshold in ("fraction_of_peak = 1", "ratio_to_fleet_median = 2"):
        assert load_spec(_spec(tmp_path, threshold)).checks


def test_a_cpu_spec_that_names_this_cpu_is_bounded_by_its_measured_peak(tmp_path, capsys):
    from aibench.fingerprint import _cpu_model

    model = "^" + re.escape(_cpu_model()) + "$"
    header = f"spec_version = 1\nname = \"cpu\"\n[hardware]\ncpu_model = '{model}'\n"  # a TOML literal string
    for threshold, words in (('min = 1e6\nunit = "TFLOP/s"', "is above the hardware bound"),
                             ('min = 1e-9\nunit = "TFLOP/s"', "is below 5% of the hardware bound")):
        code, _, err = _lint(capsys, _spec(tmp_path, threshold, name="cpu", params='{ dtype = "fp32" }',
                                           header=header))
        assert code == 2 and words in err and "fp32 peak of this" in err, err


def test_where_no_bound_is_known_lint_says_so(tmp_path, capsys):
    header = 'spec_version = 1\nname = "disk"\n'
    code, out, err = _lint(capsys, _spec(tmp_path, 'min = 0.001\nunit = "GB/s"', name="disk", suite="storage",
                                         metric="gbps", params='{ pattern = "seq" }', header=header))
    assert (code, err) == (0, "")
    assert "note: disk check c: no hardware bound is known for storage gbps" in out


def test_a_spec_lint_refuses_does_not_load_for_judging_either(tmp_path, capsys):
    path = _spec(tmp_path, 'min = 1200\nunit = "TFLOP/s"')
    with pytest.raises(SpecError):
        load_spec(path)
    assert main(["accept", "--spec", path, "run.json"]) == 2
    assert "above the hardware bound" in capsys.readouterr().err


def test_make_spec_leaves_out_a_figure_lint_would_refuse():
    """The shipped H200 reference spec (made with --make-spec) says why a figure is not a check."""
    text = shipped_specs()["nvidia-h200-sxm-reference"].read_text()
    assert "# not a check: gemm-4096x4096x4096-int8-torch-cuda: min 779.214 TFLOP/s: TFLOP/s" in text
    assert 'id = "gemm-4096x4096x4096-int8-torch-cuda"' not in text


def test_docs_specs_md_is_generated_from_the_shipped_specs():
    doc = Path(__file__).resolve().parent.parent / specdoc.DOC
    assert doc.read_text(encoding="utf-8") == specdoc.render(), \
        "docs/specs.md is stale: run python -m aibench.accept.specdoc"
    for name in shipped_specs():
        assert f"\n## {name}\n" in specdoc.render()
