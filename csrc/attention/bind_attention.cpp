// Python bindings of the CPU attention forward: the Attention op (the shape of the CUDA
// ops: constructed once on its buffer sets with the dtype named and the ISA path resolved,
// then run / time / describe), the one-shot attention, attention_paths. Arrays are checked, never converted: o is written in place, so a
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
#include "common/scratch.hpp"
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

// One prepared attention forward over its buffer sets (call i uses set i % sets): the
// arrays are checked, the dtype named is checked against them, and the ISA path and kernel
// are resolved once.
class AttentionOp {
 public:
  AttentionOp(std::vector<py::array> q, std::vector<py::array> k, std::vector<py::array> v,
              std::vector<py::array> o, const std::string& dtype, bool causal, double scale,
              const std::string& isa, int threads)
      : q_(std::move(q)), k_(std::move(k)), v_(std::move(v)), o_(std::move(o)), threads_(threads) {
    if (q_.empty() || q_.size() != k_.size() || q_.size() != v_.size() || q_.size() != o_.size()) {
      throw py::value_error("Attention: q, k, v and o must be non-empty lists of equal length");
    }
    for (size_t i = 0; i < q_.size(); ++i) {
      sets_.push_back(check_operands("Attention", q_[i], k_[i], v_[i], o_[i], causal, scale));
      const Problem& s = sets_.back();
      const Problem& s0 = sets_[0];
      if (s.dtype != s0.dtype || s.batch != s0.batch || s.heads != s0.heads ||
          s.kv_heads != s0.kv_heads || s.seq_q != s0.seq_q || s.seq_k != s0.seq_k ||
          s.head_dim != s0.head_dim) {
        throw py::value_error("Attention: every buffer set must have the same shapes and dtype");
      }
    }
    const std::string have = sets_[0].dtype == Dtype::fp32 ? "fp32" : "bf16";
    if (dtype != have) {
      throw py::value_error("Attention: dtype '" + dtype + "' does not match the arrays (" + have + ")");
    }
    check_threads("Attention", threads);
    const std::vector<std::string> names = paths(dtype);
    dtype_ = dtype;
    path_ = isa == "auto" ? names.back() : isa;
    kernel_ = select_kernel(sets_[0].dtype, path_);
  }

  void run() {
    py::gil_scoped_release release;
    forward(kernel_, sets_[0], threads_);
  }

  double time(int64_t number) {
    if (number < 1) throw py::value_error("Attention.time: number must be >= 1");
    py::gil_scoped_release release;
    return timing::time_repeated(number, [&](int64_t i) {
      forward(kernel_, sets_[static_cast<size_t>(i) % sets_.size()], threads_);
    });
  }

  py::dict describe() const {
    py::dict d;
    d["dtype"] = dtype_;
    d["isa"] = path_;
    d["widens_bf16"] = kernel_.widens_bf16;
    d["threads"] = resolve_threads(threads_);
    d["buffer_sets"] = sets_.size();
    return d;
  }

 private:
  std::vector<py::array> q_, k_, v_, o_;  // kept alive: sets_ points into them
  std::vector<Problem> sets_;
  std::string dtype_, path_;
  int threads_;
  Kernel kernel_{};
};

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
  py::class_<AttentionOp>(m, "Attention")
      .def(py::init<std::vector<py::array>, std::vector<py::array>, std::vector<py::array>,
                    std::vector<py::array>, const std::string&, bool, double, const std::string&, int>(),
           py::arg("q").noconvert(), py::arg("k").noconvert(), py::arg("v").noconvert(),
           py::arg("o").noconvert(), py::arg("dtype"), py::arg("causal"), py::arg("scale"),
           py::arg("isa") = "auto", py::arg("threads") = 0,
           "Attention forward on buffer sets q[i], k[i], v[i], o[i] (arrays as attention() takes\n"
           "them); dtype 'fp32' or 'bf16' must match them. isa: a path, or 'auto' (resolved once).")
      .def("run", &AttentionOp::run, "One forward on the first buffer set, finished on return.")
      .def("time", &AttentionOp::time, py::arg("number"),
           "Seconds for `number` back-to-back forwards (C++ steady clock); call i uses set i % sets.")
      .def_property_readonly("describe", &AttentionOp::describe,
                             "{dtype, isa (the resolved path), widens_bf16, threads, buffer_sets}");
  m.def("attention_paths", &paths, py::arg("dtype"),
        "ISA paths of the CPU attention this CPU can run (under AIBENCH_CPU_ISA) for dtype\n"
        "'fp32' or 'bf16', slowest first. bf16: the GEMM's lowp_paths('bf16') reversed:\n"
        "'avx512_bf16' (VDPBF16PS) last where the CPU has it and it outruns the fp32 FMA, else\n"
        "just before 'avx512'; the ISA paths widen bf16 to fp32.");
}

}  // namespace aibench::attention
