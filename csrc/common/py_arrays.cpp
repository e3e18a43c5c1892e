#include "common/py_arrays.hpp"

namespace py = pybind11;

namespace aibench {

std::string shape_str(const py::array& x) {
  std::string s = "(";
  for (py::ssize_t d = 0; d < x.ndim(); ++d) s += (d ? ", " : "") + std::to_string(x.shape(d));
  return s + (x.ndim() == 1 ? ",)" : ")");
}

bool overlaps(const py::array& x, const py::array& y) {
  const auto* x0 = static_cast<const char*>(x.data());
  const auto* y0 = static_cast<const char*>(y.data());
  return x0 < y0 + y.nbytes() && y0 < x0 + x.nbytes();
}

void check_threads(const char* fn, int threads) {
  if (threads < 0) throw py::value_error(std::string(fn) + ": threads must be >= 0 (0 = all cores)");
}

}  // namespace aibench
