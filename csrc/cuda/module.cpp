// aibench._cuda: GPU kernels and vendor-library calls for aibench (pybind11 bindings).
//
// Device buffers belong to CuPy on the Python side and arrive as integer addresses
// (cupy_array.data.ptr). Everything runs on the legacy default stream, ordered with CuPy's
// default stream. The module imports without a driver; device_count() is then 0 and
// cuda_unavailable_reason() says why.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>

#include "cuda/check.cuh"
#include "cuda/cublaslt_gemm.cuh"
#include "cuda/fill.cuh"
#include "cuda/flash_attn.cuh"
#include "cuda/mma_gemm.cuh"
#include "cuda/timing.cuh"

#ifndef AIBENCH_CUDA_COMPILER
#define AIBENCH_CUDA_COMPILER "unknown"
#endif
#ifndef AIBENCH_CUDA_ARCHITECTURES
#define AIBENCH_CUDA_ARCHITECTURES "unknown"
#endif
#ifndef AIBENCH_CUBLASLT_SOURCE
#define AIBENCH_CUBLASLT_SOURCE "unknown"
#endif

namespace py = pybind11;
using namespace aibench_cuda;

namespace {

py::dict device_properties(int device) {
  check_device(device);
  cudaDeviceProp p{};
  AIBENCH_CUDA_CHECK(cudaGetDeviceProperties(&p, device));
  char bus_id[32] = {0};
  AIBENCH_CUDA_CHECK(cudaDeviceGetPCIBusId(bus_id, sizeof(bus_id), device));
  int clock_khz = 0, mem_clock_khz = 0;
  // Clock attributes may be unsupported on some systems: report 0 then.
  if (cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, device) != cudaSuccess) clock_khz = 0;
  if (cudaDeviceGetAttribute(&mem_clock_khz, cudaDevAttrMemoryClockRate, device) != cudaSuccess)
    mem_clock_khz = 0;
  (void)cudaGetLastError();
  py::dict d;
  d["name"] = std::string(p.name);
  d["major"] = p.major;
  d["minor"] = p.minor;
  d["multiprocessors"] = p.multiProcessorCount;
  d["l2_cache_bytes"] = p.l2CacheSize;
  d["total_memory_bytes"] = p.totalGlobalMem;
  d["memory_bus_width"] = p.memoryBusWidth;
  d["pci_bus_id"] = std::string(bus_id);
  d["shared_memory_per_block_optin"] = p.sharedMemPerBlockOptin;
  d["clock_khz"] = clock_khz;
  d["memory_clock_khz"] = mem_clock_khz;
  return d;
}

template <typename Op>
double time_gil_free(Op& op, int number, std::uintptr_t flush_ptr, std::size_t flush_bytes) {
  py::gil_scoped_release release;
  return time_op(op, number, flush_ptr, flush_bytes);
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "aibench CUDA kernels: cuBLASLt GEMM, aibench's own tensor-core GEMM, fills";
  py::register_exception<CudaError>(m, "CudaError", PyExc_RuntimeError);

  m.def(
      "device_count", [] { return device_count_nothrow(nullptr); },
      "Number of CUDA devices; 0 when there is no driver or no device (never raises for that).");
  m.def(
      "cuda_unavailable_reason",
      []() -> std::optional<std::string> {
        std::string reason;
        if (device_count_nothrow(&reason) > 0) return std::nullopt;
        return reason;
      },
      "Why no CUDA device is usable, or None when there is one.");
  m.def("runtime_version", [] {
    int v = 0;
    AIBENCH_CUDA_CHECK(cudaRuntimeGetVersion(&v));
    return v;
  });
  m.def("driver_version", [] {
    int v = 0;
    if (cudaDriverGetVersion(&v) != cudaSuccess) {
      (void)cudaGetLastError();
      v = 0;
    }
    return v;
  });
  m.def("cublaslt_version", [] { return static_cast<long long>(cublasLtGetVersion()); });
  m.def("build_info", [] {
    py::dict d;
    d["cuda_compiler"] = AIBENCH_CUDA_COMPILER;
    d["architectures"] = AIBENCH_CUDA_ARCHITECTURES;
    d["cudart"] = "static";
    d["cudart_build_version"] = CUDART_VERSION;
    d["cublaslt_header_version"] = CUBLAS_VERSION;
    d["cublaslt_source"] = AIBENCH_CUBLASLT_SOURCE;
    return d;
  });
  m.def("device_properties", &device_properties, py::arg("device"));

  m.def(
      "fill_uniform",
      [](int device, std::uintptr_t ptr, std::size_t count, const std::string& dtype,
         std::uint64_t seed, double lo, double hi) {
        py::gil_scoped_release release;
        fill_uniform(device, ptr, count, dtype, seed, lo, hi);
      },
      py::arg("device"), py::arg("ptr"), py::arg("count"), py::arg("dtype"), py::arg("seed"),
      py::arg("lo") = -1.0, py::arg("hi") = 1.0,
      "Fill count elements of dtype at ptr with deterministic uniform values in [lo, hi].");

  py::class_<CublasLtGemm>(m, "CublasLtGemm")
      .def(py::init<int, std::int64_t, std::int64_t, std::int64_t, const std::string&,
                    std::uintptr_t, std::uintptr_t, std::uintptr_t, const std::string&>(),
           py::arg("device"), py::arg("m"), py::arg("n"), py::arg("k"), py::arg("dtype"),
           py::arg("a_ptr"), py::arg("b_ptr"), py::arg("c_ptr"), py::arg("b_layout") = "kn")
      .def("run",
           [](CublasLtGemm& op) {
             py::gil_scoped_release release;
             run_op(op);
           })
      .def("time", &time_gil_free<CublasLtGemm>, py::arg("number"), py::arg("flush_ptr") = 0,
           py::arg("flush_bytes") = 0)
      .def_property_readonly("algo_info", &CublasLtGemm::algo_info);

  py::class_<FlashAttention>(m, "FlashAttention")
      .def(py::init<int, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                    std::int64_t, const std::string&, bool, double, std::uintptr_t,
                    std::uintptr_t, std::uintptr_t, std::uintptr_t>(),
           py::arg("device"), py::arg("batch"), py::arg("heads"), py::arg("kv_heads"),
           py::arg("seqlen_q"), py::arg("seqlen_k"), py::arg("head_dim"), py::arg("dtype"),
           py::arg("causal"), py::arg("scale"), py::arg("q_ptr"), py::arg("k_ptr"),
           py::arg("v_ptr"), py::arg("o_ptr"),
           "FlashAttention-2 forward: o = softmax(q k^T * scale [+ causal mask]) v; q, o "
           "(batch, heads, seqlen_q, head_dim), k, v (batch, kv_heads, seqlen_k, head_dim), "
           "bf16 or fp16, head_dim 64 or 128")
      .def("run",
           [](FlashAttention& op) {
             py::gil_scoped_release release;
             run_op(op);
           })
      .def("time", &time_gil_free<FlashAttention>, py::arg("number"), py::arg("flush_ptr") = 0,
           py::arg("flush_bytes") = 0)
      .def_property_readonly("describe", &FlashAttention::describe);

  py::class_<MmaGemm>(m, "MmaGemm")
      .def(py::init<int, std::int64_t, std::int64_t, std::int64_t, const std::string&,
                    std::uintptr_t, std::uintptr_t, std::uintptr_t, const std::string&>(),
           py::arg("device"), py::arg("m"), py::arg("n"), py::arg("k"), py::arg("dtype"),
           py::arg("a_ptr"), py::arg("b_ptr"), py::arg("c_ptr"), py::arg("variant") = "auto")
      .def("run",
           [](MmaGemm& op) {
             py::gil_scoped_release release;
             run_op(op);
           })
      .def("time", &time_gil_free<MmaGemm>, py::arg("number"), py::arg("flush_ptr") = 0,
           py::arg("flush_bytes") = 0)
      .def_property_readonly("describe", &MmaGemm::describe);
}
