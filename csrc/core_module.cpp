// aibench._core: the CPU kernels and their timing loops.
#include <pybind11/pybind11.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "common/scratch.hpp"

namespace py = pybind11;

namespace aibench {
namespace timing { void bind_timing(py::module_& m); }
namespace clock { void bind_clock(py::module_& m); void bind_fma_peak(py::module_& m); }
namespace gemm { void bind_gemm(py::module_& m); }
namespace collectives { void bind_collectives(py::module_& m); }
namespace attention { void bind_attention(py::module_& m); }
namespace io { void bind_io(py::module_& m); }
namespace memory { void bind_memory(py::module_& m); }
}  // namespace aibench

PYBIND11_MODULE(_core, m) {
  m.doc() = "aibench native CPU kernels (C++17, OpenMP)";
  m.def("build_info", []() {
    py::dict info;
    info["compiler"] = AIBENCH_COMPILER;
    info["cxx_flags"] = AIBENCH_CXX_FLAGS;
    info["build_type"] = AIBENCH_BUILD_TYPE;
    info["git_commit"] = AIBENCH_GIT_COMMIT;
#ifdef _OPENMP
    info["openmp"] = _OPENMP;
    info["omp_max_threads"] = omp_get_max_threads();
#else
    info["openmp"] = py::none();
#endif
    return info;
  }, "How this extension was compiled.");
  m.def("default_threads", []() { return aibench::resolve_threads(0); },
        "Threads the CPU kernels use when given threads=0 (OMP_NUM_THREADS if set, else every "
        "processor this process may run on).");
  aibench::timing::bind_timing(m);
  aibench::clock::bind_clock(m);
  aibench::clock::bind_fma_peak(m);
  aibench::gemm::bind_gemm(m);
  aibench::collectives::bind_collectives(m);
  aibench::attention::bind_attention(m);
  aibench::io::bind_io(m);
  aibench::memory::bind_memory(m);
}
