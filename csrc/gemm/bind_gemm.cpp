// Python bindings of the CPU GEMM: the Gemm op (the shape of the CUDA ops: constructed
// once on its buffer sets with the dtype named and the ISA path resolved, then run / time
// / describe), the one-shot gemm, isa_paths, best_isa, gemm_blocking, lowp_paths. The
// dtypes of (a, b, c) choose the product: float32 or float64 throughout;
// (uint16, uint16, float32) bf16 bits -> fp32; (uint16, uint16, uint16) bf16 -> bf16;
// (int8, int8, int32) int8 -> int32.
// Arrays are checked, never converted: c is written in place, so a silent copy would
// lose the result: a non-array argument raises TypeError, every other check ValueError
// (pybind11 maps the std::invalid_argument of parse_isa to ValueError).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/py_arrays.hpp"
#include "common/scratch.hpp"
#include "gemm/gemm.hpp"
#include "timing/timing.hpp"

namespace py = pybind11;

namespace aibench::gemm {
namespace {

enum class Dtype { fp32, fp64, bf16_fp32_out, bf16_bf16_out, int8 };

// One validated product C = A·B on the arrays' own memory.
struct Operands {
  Dtype dtype;
  int64_t m, n, k;
  const void* a;
  const void* b;
  void* c;
};

void check_layout(const char* name, const py::array& x) {
  if (x.ndim() != 2) {
    throw py::value_error(std::string("gemm: ") + name + " must be 2-D, got shape " + shape_str(x));
  }
  if (!(x.flags() & py::array::c_style)) {
    throw py::value_error(std::string("gemm: ") + name + " must be C-contiguous");
  }
}

Operands check_operands(const py::array& a, const py::array& b, py::array& c) {
  check_layout("a", a);
  check_layout("b", b);
  check_layout("c", c);
  Dtype dtype;
  // The output dtype is that of the inputs except for bf16 (fp32 or bf16) and int8 (int32).
  bool c_ok = c.dtype().is(a.dtype());
  if (a.dtype().is(py::dtype::of<float>())) {
    dtype = Dtype::fp32;
  } else if (a.dtype().is(py::dtype::of<double>())) {
    dtype = Dtype::fp64;
  } else if (a.dtype().is(py::dtype::of<uint16_t>())) {  // bf16 bits
    const bool fp32_out = c.dtype().is(py::dtype::of<float>());
    dtype = fp32_out ? Dtype::bf16_fp32_out : Dtype::bf16_bf16_out;
    c_ok = c_ok || fp32_out;
  } else if (a.dtype().is(py::dtype::of<int8_t>())) {
    dtype = Dtype::int8;
    c_ok = c.dtype().is(py::dtype::of<int32_t>());
  } else {
    throw py::value_error(
        "gemm: dtype must be float32, float64, uint16 (bf16 bits) or int8, got " +
        std::string(py::str(a.dtype())));
  }
  if (!b.dtype().is(a.dtype()) || !c_ok) {
    throw py::value_error(
        "gemm: (a, b, c) dtypes must be (float32, float32, float32), (float64, float64, "
        "float64), (uint16, uint16, float32 or uint16) for bf16, or (int8, int8, int32), got " +
        std::string(py::str(a.dtype())) + ", " + std::string(py::str(b.dtype())) + ", " +
        std::string(py::str(c.dtype())));
  }
  const int64_t m = a.shape(0), k = a.shape(1), n = b.shape(1);
  if (b.shape(0) != k || c.shape(0) != m || c.shape(1) != n) {
    throw py::value_error("gemm: shapes do not match (a (m, k), b (k, n), c (m, n)): a " +
                          shape_str(a) + ", b " + shape_str(b) + ", c " + shape_str(c));
  }
  if (!c.writeable()) throw py::value_error("gemm: c must be writeable");
  if (c.nbytes() > 0 && (overlaps(c, a) || overlaps(c, b))) {
    throw py::value_error("gemm: c must not share memory with a or b");
  }
  return {dtype, m, n, k, a.data(), b.data(), c.mutable_data()};
}

// The kernel of one dtype and ISA path, looked up once before any timing. fp32/fp64 take
// the paths of isa_paths(); bf16 and int8 those of lowp_paths(dtype) ("auto": the best):
// a native dot-product path, or an ISA path that widens.
struct Kernels {
  Dtype dtype;
  bool native_lowp = false;
  KernelSpec<float> fp32{};  // fp32, and the bf16 widening path
  KernelSpec<double> fp64{};
  Bf16KernelSpec bf16{};
  Int8KernelSpec int8{};
  Int16PairKernelSpec int16_pairs{};  // the int8 widening path
  Kernels(const std::string& isa, Dtype d) : dtype(d) {
    switch (d) {
      case Dtype::fp32: fp32 = fp32_kernel(parse_isa(isa, kIsaNeeds)); return;
      case Dtype::fp64: fp64 = fp64_kernel(parse_isa(isa, kIsaNeeds)); return;
      default: break;
    }
    const bool is_int8 = d == Dtype::int8;
    const std::vector<std::string> paths = lowp_paths(is_int8 ? "int8" : "bf16");
    const std::string path = isa == "auto" ? paths.front() : isa;
    native_lowp = is_native_lowp_path(path);
    if (native_lowp && std::find(paths.begin(), paths.end(), path) == paths.end()) {
      throw std::invalid_argument("gemm path '" + path + "': this CPU lacks it or AIBENCH_CPU_ISA caps below it");
    }
    if (native_lowp) {
      if (is_int8) int8 = int8_kernel(path); else bf16 = bf16_kernel(path);
    } else if (is_int8) {
      int16_pairs = int16_pair_kernel(parse_isa(path, kIsaNeeds));
    } else {
      fp32 = fp32_kernel(parse_isa(path, kIsaNeeds));
    }
  }

  void run(const Operands& op, int threads) const {
    const auto* a16 = static_cast<const uint16_t*>(op.a);
    const auto* b16 = static_cast<const uint16_t*>(op.b);
    switch (op.dtype) {
      case Dtype::fp32:
        gemm(fp32, op.m, op.n, op.k, static_cast<const float*>(op.a), op.k,
             static_cast<const float*>(op.b), op.n, static_cast<float*>(op.c), op.n, threads);
        break;
      case Dtype::fp64:
        gemm(fp64, op.m, op.n, op.k, static_cast<const double*>(op.a), op.k,
             static_cast<const double*>(op.b), op.n, static_cast<double*>(op.c), op.n, threads);
        break;
      case Dtype::bf16_fp32_out:
        if (native_lowp) {
          gemm_bf16(bf16, op.m, op.n, op.k, a16, op.k, b16, op.n, static_cast<float*>(op.c), op.n, threads);
        } else {
          gemm_bf16_widened(fp32, op.m, op.n, op.k, a16, op.k, b16, op.n, static_cast<float*>(op.c),
                            op.n, threads);
        }
        break;
      case Dtype::bf16_bf16_out:
        if (native_lowp) {
          gemm_bf16(bf16, op.m, op.n, op.k, a16, op.k, b16, op.n, static_cast<uint16_t*>(op.c), op.n,
                    threads);
        } else {
          gemm_bf16_widened(fp32, op.m, op.n, op.k, a16, op.k, b16, op.n,
                            static_cast<uint16_t*>(op.c), op.n, threads);
        }
        break;
      case Dtype::int8: {
        const auto* a8 = static_cast<const int8_t*>(op.a);
        const auto* b8 = static_cast<const int8_t*>(op.b);
        auto* c32 = static_cast<int32_t*>(op.c);
        if (native_lowp) {
          gemm_int8(int8, op.m, op.n, op.k, a8, op.k, b8, op.n, c32, op.n, threads);
        } else {
          gemm_int8_widened(int16_pairs, op.m, op.n, op.k, a8, op.k, b8, op.n, c32, op.n, threads);
        }
        break;
      }
    }
  }
};

void gemm_once(const py::array& a, const py::array& b, py::array& c, const std::string& isa,
               int threads) {
  const Operands op = check_operands(a, b, c);
  const Kernels kernels(isa, op.dtype);
  check_threads("gemm", threads);
  py::gil_scoped_release release;
  kernels.run(op, threads);
}

py::dict gemm_blocking(const std::string& isa, const std::string& dtype) {
  Blocking b;
  if (dtype == "fp32") {
    b = fp32_kernel(parse_isa(isa, kIsaNeeds)).blocking;
  } else if (dtype == "fp64") {
    b = fp64_kernel(parse_isa(isa, kIsaNeeds)).blocking;
  } else if (dtype == "bf16" || dtype == "int8") {
    const Kernels kernels(isa, dtype == "int8" ? Dtype::int8 : Dtype::bf16_fp32_out);
    b = dtype == "int8" ? (kernels.native_lowp ? kernels.int8.blocking : kernels.int16_pairs.blocking)
                        : (kernels.native_lowp ? kernels.bf16.blocking : kernels.fp32.blocking);
  } else {
    throw py::value_error("gemm_blocking: dtype must be 'fp32', 'fp64', 'bf16' or 'int8', got '" +
                          dtype + "'");
  }
  py::dict d;
  d["mr"] = b.mr;
  d["nr"] = b.nr;
  d["kc"] = b.kc;
  d["mc"] = b.mc;
  d["nc"] = b.nc;
  return d;
}


const char* dtype_name(Dtype d) {
  switch (d) {
    case Dtype::fp32: return "fp32";
    case Dtype::fp64: return "fp64";
    case Dtype::int8: return "int8";
    default: return "bf16";
  }
}

// One prepared GEMM over its buffer sets (call i uses set i % sets), the shape of the CUDA
// ops: the arrays are checked, the dtype named is checked against them, and the ISA path
// and kernel are resolved once, here, not on every timed call.
class GemmOp {
 public:
  GemmOp(std::vector<py::array> a, std::vector<py::array> b, std::vector<py::array> c,
         const std::string& dtype, const std::string& isa, int threads)
      : a_(std::move(a)), b_(std::move(b)), c_(std::move(c)), threads_(threads) {
    if (a_.empty() || a_.size() != b_.size() || a_.size() != c_.size()) {
      throw py::value_error("Gemm: a, b and c must be non-empty lists of equal length");
    }
    for (size_t i = 0; i < a_.size(); ++i) {
      sets_.push_back(check_operands(a_[i], b_[i], c_[i]));
      const Operands& s = sets_.back();
      if (s.dtype != sets_[0].dtype || s.m != sets_[0].m || s.n != sets_[0].n || s.k != sets_[0].k) {
        throw py::value_error("Gemm: every buffer set must have the same shapes and dtype");
      }
    }
    if (dtype != dtype_name(sets_[0].dtype)) {
      throw py::value_error("Gemm: dtype '" + dtype + "' does not match the arrays (" +
                            dtype_name(sets_[0].dtype) + ")");
    }
    check_threads("Gemm", threads);
    dtype_ = dtype;
    if (isa != "auto") {
      path_ = isa;
    } else if (dtype == "bf16" || dtype == "int8") {
      path_ = lowp_paths(dtype).front();
    } else {
      path_ = isa_name(best_isa(kIsaNeeds));
    }
    kernels_ = std::make_unique<Kernels>(path_, sets_[0].dtype);
  }

  void run() {
    py::gil_scoped_release release;
    kernels_->run(sets_[0], threads_);
  }

  double time(int64_t number) {
    if (number < 1) throw py::value_error("Gemm.time: number must be >= 1");
    py::gil_scoped_release release;
    return timing::time_repeated(number, [&](int64_t i) {
      kernels_->run(sets_[static_cast<size_t>(i) % sets_.size()], threads_);
    });
  }

  py::dict describe() const {
    py::dict d;
    d["dtype"] = dtype_;
    d["isa"] = path_;
    d["native_lowp"] = kernels_->native_lowp;
    d["blocking"] = gemm_blocking(path_, dtype_);
    d["threads"] = resolve_threads(threads_);
    d["buffer_sets"] = sets_.size();
    return d;
  }

 private:
  std::vector<py::array> a_, b_, c_;  // kept alive: sets_ points into them
  std::vector<Operands> sets_;
  std::string dtype_, path_;
  int threads_;
  std::unique_ptr<Kernels> kernels_;
};

}  // namespace

void bind_gemm(py::module_& m) {
  m.def("isa_paths", []() {
    std::vector<std::string> names;
    for (Isa isa : available_isas(kIsaNeeds)) names.emplace_back(isa_name(isa));
    return names;
  }, "ISA paths of the CPU GEMM this CPU can run, slowest first.");
  m.def("best_isa", []() { return std::string(isa_name(best_isa(kIsaNeeds))); },
        "Fastest ISA path this CPU can run (what isa='auto' picks).");
  m.def("gemm", &gemm_once, py::arg("a").noconvert(), py::arg("b").noconvert(),
        py::arg("c").noconvert(), py::arg("isa") = "auto", py::arg("threads") = 0,
        "c[:] = a @ b with the own blocked kernel. a (m, k), b (k, n), c (m, n): C-contiguous\n"
        "arrays, dtypes (float32, float32, float32), (float64, float64, float64), bf16 bits\n"
        "(uint16, uint16, float32 | uint16) or (int8, int8, int32). isa: a path of\n"
        "isa_paths() for float32/float64, of lowp_paths(dtype) for bf16/int8, or 'auto'.\n"
        "threads=0: all cores (OpenMP default).");
  py::class_<GemmOp>(m, "Gemm")
      .def(py::init<std::vector<py::array>, std::vector<py::array>, std::vector<py::array>,
                    const std::string&, const std::string&, int>(),
           py::arg("a").noconvert(), py::arg("b").noconvert(), py::arg("c").noconvert(),
           py::arg("dtype"), py::arg("isa") = "auto", py::arg("threads") = 0,
           "C = A·B on buffer sets a[i], b[i], c[i] (arrays as gemm() takes them); dtype 'fp32',\n"
           "'fp64', 'bf16' or 'int8' must match them. isa: a path, or 'auto' (resolved once).")
      .def("run", &GemmOp::run, "One GEMM on the first buffer set, finished on return.")
      .def("time", &GemmOp::time, py::arg("number"),
           "Seconds for `number` back-to-back GEMMs (C++ steady clock); call i uses set i % sets.")
      .def_property_readonly("describe", &GemmOp::describe,
                             "{dtype, isa (the resolved path), native_lowp, blocking, threads, buffer_sets}");
  m.def("gemm_blocking", &gemm_blocking, py::arg("isa"), py::arg("dtype"),
        "Block sizes {mr, nr, kc, mc, nc} of one ISA path and dtype ('fp32', 'fp64', 'bf16',\n"
        "'int8'; bf16/int8 take a path of lowp_paths(dtype)).");
  m.def("lowp_paths", &lowp_paths, py::arg("dtype"),
        "Paths of the own bf16 or int8 GEMM this CPU can run (under AIBENCH_CPU_ISA), best\n"
        "first: the native 'avx512_bf16' (VDPBF16PS) or 'avx512_vnni' (VPDPBUSD) where the CPU\n"
        "has it, then the ISA paths that widen ('avx512', 'avx2', 'scalar'). 'avx512_bf16'\n"
        "comes after 'avx512' where its FLOP rate is below the fp32 FMA's (bf16_dot_over_fma).");
  m.def("bf16_dot_over_fma", []() {
    const DotOverFma r = bf16_dot_over_fma();
    py::dict d;
    d["dot_gflops"] = r.dot_gflops;
    d["fma_gflops"] = r.fma_gflops;
    d["ratio"] = r.ratio;
    d["native_first_from"] = kNativeBf16MinRatio;
    return d;
  }, "VDPBF16PS FLOP rate over the fp32 FMA's on one core (register-only zmm loops, best of\n"
     "interleaved windows, measured once per process): {dot_gflops, fma_gflops, ratio,\n"
     "native_first_from}. The bf16 paths list 'avx512_bf16' first only when ratio >=\n"
     "native_first_from. Zeros where the CPU lacks AVX512_BF16.");
  m.def("is_native_lowp_path", &is_native_lowp_path, py::arg("path"),
        "Whether a lowp_paths() entry uses dot-product instructions (else it widens).");
  m.def("cpu_isa_levels", &cpu_isa_levels,
        "AIBENCH_CPU_ISA levels this CPU can run, lowest first (ignoring the cap).");
  m.def("isa_level_cap", []() -> py::object {
    const int cap = isa_level_cap();
    if (cap < 0) return py::none();
    return py::str(kIsaLevels[static_cast<size_t>(cap)]);
  }, "The AIBENCH_CPU_ISA level in force, None when unset; ValueError when it is unknown or\n"
     "above what this CPU can run.");
  m.def("cache_sizes", []() {
    const CacheSizes c = cache_sizes();
    py::dict d;
    d["L1d"] = c.l1d;
    d["L2"] = c.l2;
    d["L3"] = c.l3;
    return d;
  }, "Data cache sizes in bytes the kernels' blocking is derived from.");
}

}  // namespace aibench::gemm
