// Device queries and dtype names shared by the CUDA operations (host code only).
#include "cuda/check.cuh"

namespace aibench_cuda {

int device_count_nothrow(std::string* reason) {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    if (reason) *reason = std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
    return 0;
  }
  if (count == 0 && reason) *reason = "no CUDA device found";
  return count;
}

void check_device(int device) {
  std::string reason;
  int count = device_count_nothrow(&reason);
  if (count == 0) throw CudaError(reason + " (in cudaGetDeviceCount)");
  if (device < 0 || device >= count)
    throw_value("device " + std::to_string(device) + " out of range: " + std::to_string(count) +
                " CUDA device(s)");
}

int compute_capability(int device) {
  int major = 0, minor = 0;
  AIBENCH_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  AIBENCH_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  return major * 10 + minor;
}

DType parse_dtype(const std::string& name) {
  if (name == "fp64") return DType::fp64;
  if (name == "fp32") return DType::fp32;
  if (name == "tf32") return DType::tf32;
  if (name == "bf16") return DType::bf16;
  if (name == "fp16") return DType::fp16;
  if (name == "fp8") return DType::fp8;
  if (name == "int8") return DType::int8;
  throw_value("unknown dtype '" + name + "' (expected fp64, fp32, tf32, bf16, fp16, fp8 or int8)");
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::fp64: return "fp64";
    case DType::fp32: return "fp32";
    case DType::tf32: return "tf32";
    case DType::bf16: return "bf16";
    case DType::fp16: return "fp16";
    case DType::fp8: return "fp8";
    case DType::int8: return "int8";
  }
  return "?";
}

std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::fp64: return 8;
    case DType::fp32:
    case DType::tf32: return 4;
    case DType::bf16:
    case DType::fp16: return 2;
    case DType::fp8:
    case DType::int8: return 1;
  }
  return 0;
}

}  // namespace aibench_cuda
