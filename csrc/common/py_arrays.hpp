// Argument checks shared by the CPU kernels' Python bindings (bind_gemm.cpp,
// bind_attention.cpp). Their errors are py::value_error (Python ValueError).
#pragma once

#include <pybind11/numpy.h>

#include <string>

namespace aibench {

// "(2, 3)", "(4,)": numpy's spelling of x's shape.
std::string shape_str(const pybind11::array& x);
// Whether the byte ranges of x and y intersect.
bool overlaps(const pybind11::array& x, const pybind11::array& y);
// threads >= 0 (0 = all cores), else "<fn>: threads must be >= 0 ...".
void check_threads(const char* fn, int threads);

}  // namespace aibench
