// Python bindings of the collectives' local reduction: reduce_sum, reduce_isa_paths,
// reduce_best_isa. Arrays are checked, never converted (dst is written in place, so a
// silent copy would lose the result): a non-array argument raises TypeError, every other
// check ValueError. The sum runs with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "collectives/reduce.hpp"

namespace py = pybind11;

namespace aibench::collectives {
namespace {

std::string dtype_str(const py::array& x) { return std::string(py::str(x.dtype())); }

// Whether x's element type can hold `dtype`: fp32 needs float32, fp64 float64, fp16
// float16 or a 16-bit integer view, bf16 a 16-bit integer view (numpy has no bfloat16;
// ml_dtypes.bfloat16 is accepted too, it is a 2-byte void-like type).
bool element_ok(const py::array& x, Dtype dtype) {
  const char kind = x.dtype().kind();
  const auto size = x.itemsize();
  switch (dtype) {
    case Dtype::fp32: return kind == 'f' && size == 4;
    case Dtype::fp64: return kind == 'f' && size == 8;
    case Dtype::fp16: return size == 2 && (kind == 'f' || kind == 'u' || kind == 'i');
    case Dtype::bf16: return size == 2 && kind != 'f' && kind != 'b';
  }
  return false;
}

void check_array(const char* name, const py::array& x, Dtype dtype, const std::string& dtype_name) {
  if (!element_ok(x, dtype)) {
    throw py::value_error(std::string("reduce_sum: ") + name + " has dtype " + dtype_str(x) +
                          ", which cannot hold " + dtype_name +
                          " (fp32: float32, fp64: float64, fp16: float16 or uint16, bf16: uint16)");
  }
  if (!(x.flags() & py::array::c_style)) {
    throw py::value_error(std::string("reduce_sum: ") + name + " must be C-contiguous");
  }
}

bool partial_overlap(const py::array& x, const py::array& y) {
  const auto* x0 = static_cast<const char*>(x.data());
  const auto* y0 = static_cast<const char*>(y.data());
  if (x0 == y0 || x.nbytes() == 0 || y.nbytes() == 0) return false;
  return x0 < y0 + y.nbytes() && y0 < x0 + x.nbytes();
}

void reduce_sum(py::array& dst, const py::array& src, const std::string& dtype_name,
                const py::object& a_obj, const std::string& isa_name_) {
  const Dtype dtype = parse_dtype(dtype_name);
  const SumFn fn = sum_kernel(parse_isa(isa_name_, kIsaNeeds), dtype);
  check_array("dst", dst, dtype, dtype_name);
  check_array("src", src, dtype, dtype_name);
  if (!dst.writeable()) throw py::value_error("reduce_sum: dst must be writeable");
  if (!a_obj.is_none() && !py::isinstance<py::array>(a_obj)) {
    throw py::type_error("reduce_sum: a must be a numpy array or None");
  }
  const py::array a = a_obj.is_none() ? dst : a_obj.cast<py::array>();
  check_array("a", a, dtype, dtype_name);
  if (src.size() != dst.size() || a.size() != dst.size()) {
    throw py::value_error("reduce_sum: dst, src (and a) must have the same number of elements, got " +
                          std::to_string(dst.size()) + ", " + std::to_string(src.size()) +
                          (a_obj.is_none() ? std::string() : ", " + std::to_string(a.size())));
  }
  if (partial_overlap(dst, src) || partial_overlap(dst, a)) {
    throw py::value_error("reduce_sum: dst may be the same buffer as src or a, but must not partly overlap them");
  }
  void* out = dst.mutable_data();
  const void* x = a.data();
  const void* y = src.data();
  const int64_t n = static_cast<int64_t>(dst.size());
  py::gil_scoped_release release;
  fn(out, x, y, n);
}

}  // namespace

void bind_collectives(py::module_& m) {
  m.def("reduce_isa_paths", []() {
    std::vector<std::string> names;
    for (Isa isa : available_isas(kIsaNeeds)) names.emplace_back(isa_name(isa));
    return names;
  }, "ISA paths of the collectives' reduce kernel this CPU can run, slowest first.");
  m.def("reduce_best_isa", []() { return std::string(isa_name(best_isa(kIsaNeeds))); },
        "Fastest reduce ISA path this CPU can run (what isa='auto' picks).");
  m.def("reduce_sum", &reduce_sum, py::arg("dst").noconvert(), py::arg("src").noconvert(),
        py::arg("dtype"), py::arg("a") = py::none(), py::arg("isa") = "auto",
        "Element-wise sum in place: dst += src, or dst = a + src when `a` is given (dst may be\n"
        "a or src). dtype: 'fp32' (float32 arrays), 'fp64' (float64), 'bf16' (uint16 bit\n"
        "patterns) or 'fp16' (float16 or uint16); 16-bit types are summed in fp32 and rounded\n"
        "to nearest even. Arrays: C-contiguous, same number of elements. GIL released.");
}

}  // namespace aibench::collectives
