// Python bindings of the CPU attention forward: attention, time_attention,
// attention_paths. Arrays are checked, never converted: o is written in place, so a
// silent copy would lose the result. A non-array argument raises TypeError, every other
// check ValueError (pybind11 maps std::invalid_argument to ValueError).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "attention/attention.hpp"
#include "common/py_arrays.hpp"
#include "timing/timing.hpp"

namespace py = pybind11;

namespace aibench::attention {
namespace {

void check_layout(const char* fn, const char* name, const py::array& x) {
  if (x.ndim() != 4) {
    throw py::value_error(std::string(fn) + ": " + name +
                          " must be 4-D (batch, heads, seqlen, head_dim), got shape " + shape_str(x));
  }
  if (!(x.flags() & py::array::c_style)) {
    throw py::value_error(std::string(fn) + ": " + name + " must be C-contiguous");
  }
}

// Validated problem on the arrays' own memory.
Problem check_operands(const char* fn, const py::array& q, const py::array& k, const py::array& v,
                       py::array& o, bool causal, double scale) {
  const std::string f(fn);
  check_layout(fn, "q", q);
  check_layout(fn, "k", k);
  check_layout(fn, "v", v);
  check_layout(fn, "o", o);
  Dtype dtype;
  if (q.dtype().is(py::dtype::of<float>())) {
    dtype = Dtype::fp32;
  } else if (q.dtype().is(py::dtype::of<uint16_t>())) {
    dtype = Dtype::bf16;
  } else {
    throw py::value_error(f + ": dtype must be float32 (fp32) or uint16 (bf16 bits), got " +
                          std::string(py::str(q.dtype())));
  }
  if (!k.dtype().is(q.dtype()) || !v.dtype().is(q.dtype()) || !o.dtype().is(q.dtype())) {
    throw py::value_error(f + ": q, k, v and o must have the same dtype, got " +
                          std::string(py::str(q.dtype())) + ", " + std::string(py::str(k.dtype())) +
                          ", " + std::string(py::str(v.dtype())) + ", " +
                          std::string(py::str(o.dtype())));
  }
  const int64_t B = q.shape(0), H = q.shape(1), Sq = q.shape(2), D = q.shape(3);
  const int64_t Hkv = k.shape(1), Sk = k.shape(2);
  const bool shapes_ok = k.shape(0) == B && k.shape(3) == D && v.shape(0) == B &&
                         v.shape(1) == Hkv && v.shape(2) == Sk && v.shape(3) == D &&
                         o.shape(0) == B && o.shape(1) == H && o.shape(2) == Sq && o.shape(3) == D;
  if (!shapes_ok) {
    throw py::value_error(f + ": shapes do not match (q and o (B, H, Sq, D), k and v (B, Hkv, Sk, D)): q " +
                          shape_str(q) + ", k " + shape_str(k) + ", v " + shape_str(v) + ", o " +
                          shape_str(o));
  }
  if (D < 1 || D > kMaxHeadDim) {
    throw py::value_error(f + ": head_dim must be in 1.." + std::to_string(kMaxHeadDim) + ", got " +
                          std::to_string(D));
  }
  if (Hkv < 1 || H % Hkv != 0) {
    throw py::value_error(f + ": heads (" + std::to_string(H) + ") must be a multiple of kv_heads (" +
                          std::to_string(Hkv) + ")");
  }
  if (Sq >= (int64_t{1} << 31) || Sk >= (int64_t{1} << 31)) {
    throw py::value_error(f + ": sequence lengths must be below 2^31");
  }
  if (!std::isfinite(scale)) throw py::value_error(f + ": scale must be finite");
  if (!o.writeable()) throw py::value_error(f + ": o must be writeable");
  if (o.nbytes() > 0 && (overlaps(o, q) || overlaps(o, k) || overlaps(o, v))) {
    throw py::value_error(f + ": o must not share memory with q, k or v");
  }
  return {dtype, B, H, Hkv, Sq, Sk, D, causal, static_cast<float>(scale),
          q.data(), k.data(), v.data(), o.mutable_data()};
}

void attention_once(const py::array& q, const py::array& k, const py::array& v, py::array& o,
                    bool causal, double scale, const std::string& isa, int threads) {
  const Problem p = check_operands("attention", q, k, v, o, causal, scale);
  check_threads("attention", threads);
  const Kernel kernel = select_kernel(p.dtype, isa);
  py::gil_scoped_release release;
  forward(kernel, p, threads);
}

double time_attention(const std::vector<py::array>& q_list, const std::vector<py::array>& k_list,
                      const std::vector<py::array>& v_list, std::vector<py::array>& o_list,
                      int64_t number, bool causal, double scale, const std::string& isa,
                      int threads) {
  if (q_list.empty() || q_list.size() != k_list.size() || q_list.size() != v_list.size() ||
      q_list.size() != o_list.size()) {
    throw py::value_error(
        "time_attention: q_list, k_list, v_list and o_list must be non-empty and of equal length");
  }
  if (number < 1) throw py::value_error("time_attention: number must be >= 1");
  std::vector<Problem> sets;
  for (size_t i = 0; i < q_list.size(); ++i) {
    sets.push_back(check_operands("time_attention", q_list[i], k_list[i], v_list[i], o_list[i],
                                  causal, scale));
    const Problem& s = sets.back();
    const Problem& s0 = sets[0];
    if (s.dtype != s0.dtype || s.batch != s0.batch || s.heads != s0.heads ||
        s.kv_heads != s0.kv_heads || s.seq_q != s0.seq_q || s.seq_k != s0.seq_k ||
        s.head_dim != s0.head_dim) {
      throw py::value_error("time_attention: every buffer set must have the same shapes and dtype");
    }
  }
  check_threads("time_attention", threads);
  const Kernel kernel = select_kernel(sets[0].dtype, isa);
  py::gil_scoped_release release;
  return timing::time_repeated(number, [&](int64_t i) {
    forward(kernel, sets[static_cast<size_t>(i) % sets.size()], threads);
  });
}

}  // namespace

void bind_attention(py::module_& m) {
  m.def("attention", &attention_once, py::arg("q").noconvert(), py::arg("k").noconvert(),
        py::arg("v").noconvert(), py::arg("o").noconvert(), py::arg("causal"), py::arg("scale"),
        py::arg("isa") = "auto", py::arg("threads") = 0,
        "o[:] = softmax(q @ k^T * scale + causal mask) @ v, fused (FlashAttention style).\n"
        "q, o (B, H, Sq, D); k, v (B, Hkv, Sk, D), H % Hkv == 0 (query head h reads kv head\n"
        "h // (H // Hkv)); C-contiguous, all float32 or all uint16 holding bf16 bits. Causal\n"
        "is bottom-right aligned (query i sees keys j <= i + Sk - Sq); a query that sees no\n"
        "key gets zeros. isa: 'auto' or one of attention_paths(dtype). threads=0: all cores.");
  m.def("time_attention", &time_attention, py::arg("q_list").noconvert(),
        py::arg("k_list").noconvert(), py::arg("v_list").noconvert(), py::arg("o_list").noconvert(),
        py::arg("number"), py::arg("causal"), py::arg("scale"), py::arg("isa") = "auto",
        py::arg("threads") = 0,
        "Seconds for `number` back-to-back attention calls; call i uses buffer set i % len(q_list).");
  m.def("attention_paths", &paths, py::arg("dtype"),
        "ISA paths of the CPU attention this CPU can run (under AIBENCH_CPU_ISA) for dtype\n"
        "'fp32' or 'bf16', slowest first. bf16: 'avx512_bf16' (VDPBF16PS) last where the CPU\n"
        "has it; the ISA paths before it widen bf16 to fp32.");
}

}  // namespace aibench::attention
