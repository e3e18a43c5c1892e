// Error handling shared by every file of aibench._cuda. Host-only: safe to include from
// C++ (module.cpp) and CUDA files alike.
//
// Every CUDA and cuBLASLt status is checked. A failure throws CudaError (exposed to Python
// as aibench._cuda.CudaError, a RuntimeError) with a one-line message
//   "<cudaErrorName or CUBLAS_STATUS_...>: <description> (in <call>)".
// Bad arguments throw std::invalid_argument, which pybind11 turns into ValueError.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace aibench_cuda {

struct CudaError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void throw_cuda(cudaError_t err, const char* call) {
  // Clear the (non-sticky) error so that it does not resurface in a later check.
  (void)cudaGetLastError();
  throw CudaError(std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err) + " (in " +
                  call + ")");
}

[[noreturn]] inline void throw_cublas(cublasStatus_t status, const char* call) {
  throw CudaError(std::string(cublasLtGetStatusName(status)) + ": " +
                  cublasLtGetStatusString(status) + " (in " + call + ")");
}

// For conditions that are not a failed call (a GPU without a feature, no algorithm).
[[noreturn]] inline void throw_unsupported(const std::string& what, const char* where) {
  throw CudaError(std::string("cudaErrorNotSupported: ") + what + " (in " + where + ")");
}

[[noreturn]] inline void throw_value(const std::string& what) { throw std::invalid_argument(what); }

}  // namespace aibench_cuda

#define AIBENCH_CUDA_CHECK(call)                                           \
  do {                                                                     \
    cudaError_t aibench_err_ = (call);                                     \
    if (aibench_err_ != cudaSuccess) ::aibench_cuda::throw_cuda(aibench_err_, #call); \
  } while (0)

#define AIBENCH_CUBLAS_CHECK(call)                                         \
  do {                                                                     \
    cublasStatus_t aibench_st_ = (call);                                   \
    if (aibench_st_ != CUBLAS_STATUS_SUCCESS) ::aibench_cuda::throw_cublas(aibench_st_, #call); \
  } while (0)

namespace aibench_cuda {

// Makes `device` current for the lifetime of the guard and restores the caller's device
// afterwards (CuPy keeps its own notion of the current device).
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    AIBENCH_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != device) {
      AIBENCH_CUDA_CHECK(cudaSetDevice(device));
      changed_ = true;
    }
  }
  ~DeviceGuard() {
    if (changed_) (void)cudaSetDevice(previous_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
  bool changed_ = false;
};

// Number of usable devices; 0 (and the reason in *reason) when there is no driver or device.
int device_count_nothrow(std::string* reason);

// Throws CudaError when no device is usable, ValueError when `device` is out of range.
void check_device(int device);

// Compute capability as major*10+minor.
int compute_capability(int device);

// Element types. Names are the strings used everywhere in aibench.
enum class DType { fp64, fp32, tf32, bf16, fp16, fp8, int8 };
DType parse_dtype(const std::string& name);
const char* dtype_name(DType dtype);
std::size_t dtype_size(DType dtype);

// Largest power of two (<= 256) dividing the address: what cuBLASLt calls alignment.
inline unsigned pointer_alignment(std::uintptr_t ptr) {
  unsigned align = 1;
  while (align < 256 && ptr % (2 * align) == 0) align *= 2;
  return align;
}

}  // namespace aibench_cuda
