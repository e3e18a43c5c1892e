#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "cuda/check.cuh"
#include "cuda/fill.cuh"

namespace aibench_cuda {
namespace {

__device__ __forceinline__ std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Uniform in [0, 1) with 53 random bits.
__device__ __forceinline__ double uniform01(std::uint64_t seed, std::size_t i) {
  std::uint64_t bits = splitmix64(seed + static_cast<std::uint64_t>(i) * 0x9E3779B97F4A7C15ull);
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

// fp32 rounded to nearest-even at tf32 precision (10 explicit mantissa bits).
__device__ __forceinline__ float round_to_tf32(float f) {
  std::uint32_t u = __float_as_uint(f);
  if ((u & 0x7f800000u) != 0x7f800000u) {  // leave inf/nan alone
    u += 0xfffu + ((u >> 13) & 1u);
    u &= ~0x1fffu;
  }
  return __uint_as_float(u);
}

template <typename T>
struct Convert;
template <>
struct Convert<double> {
  __device__ static double from(double v) { return v; }
};
template <>
struct Convert<float> {
  __device__ static float from(double v) { return static_cast<float>(v); }
};
template <>
struct Convert<__nv_bfloat16> {
  __device__ static __nv_bfloat16 from(double v) { return __double2bfloat16(v); }
};
template <>
struct Convert<__half> {
  __device__ static __half from(double v) { return __double2half(v); }
};
template <>
struct Convert<__nv_fp8_e4m3> {
  __device__ static __nv_fp8_e4m3 from(double v) { return __nv_fp8_e4m3(v); }
};

template <typename T>
__global__ void fill_float_kernel(T* out, std::size_t count, std::uint64_t seed, double lo,
                                  double hi, bool tf32) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += stride) {
    T x = Convert<T>::from(lo + (hi - lo) * uniform01(seed, i));
    if constexpr (std::is_same<T, float>::value) {
      if (tf32) x = round_to_tf32(x);
    }
    out[i] = x;
  }
}

__global__ void fill_int8_kernel(std::int8_t* out, std::size_t count, std::uint64_t seed, int lo,
                                 int hi) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  const double span = static_cast<double>(hi - lo + 1);
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += stride) {
    int v = lo + static_cast<int>(floor(uniform01(seed, i) * span));
    out[i] = static_cast<std::int8_t>(min(v, hi));
  }
}

template <typename T>
void launch_fill(std::uintptr_t ptr, std::size_t count, std::uint64_t seed, double lo, double hi,
                 bool tf32) {
  const int threads = 256;
  std::size_t blocks = std::min<std::size_t>((count + threads - 1) / threads, 65536);
  fill_float_kernel<T><<<static_cast<unsigned>(blocks), threads, 0, 0>>>(
      reinterpret_cast<T*>(ptr), count, seed, lo, hi, tf32);
}

}  // namespace

void fill_uniform(int device, std::uintptr_t ptr, std::size_t count, const std::string& dtype_str,
                  std::uint64_t seed, double lo, double hi) {
  const DType dtype = parse_dtype(dtype_str);
  if (!std::isfinite(lo) || !std::isfinite(hi) || lo > hi)
    throw_value("fill_uniform needs finite lo <= hi");
  double limit = 1e300;
  if (dtype == DType::fp8) limit = 448.0;  // largest finite e4m3
  if (dtype == DType::fp16) limit = 65504.0;
  if (dtype == DType::fp32 || dtype == DType::tf32 || dtype == DType::bf16) limit = 3.0e38;
  if (std::fabs(lo) > limit || std::fabs(hi) > limit)
    throw_value(std::string("fill_uniform range [lo, hi] exceeds the finite range of ") +
                dtype_name(dtype));
  if (count == 0) return;
  if (ptr == 0) throw_value("fill_uniform: null pointer");
  if (ptr % dtype_size(dtype) != 0)
    throw_value(std::string("fill_uniform: pointer not aligned for ") + dtype_name(dtype));
  check_device(device);
  DeviceGuard guard(device);

  switch (dtype) {
    case DType::fp64: launch_fill<double>(ptr, count, seed, lo, hi, false); break;
    case DType::fp32: launch_fill<float>(ptr, count, seed, lo, hi, false); break;
    case DType::tf32: launch_fill<float>(ptr, count, seed, lo, hi, true); break;
    case DType::bf16: launch_fill<__nv_bfloat16>(ptr, count, seed, lo, hi, false); break;
    case DType::fp16: launch_fill<__half>(ptr, count, seed, lo, hi, false); break;
    case DType::fp8: launch_fill<__nv_fp8_e4m3>(ptr, count, seed, lo, hi, false); break;
    case DType::int8: {
      const double ilo = std::ceil(lo), ihi = std::floor(hi);
      if (ilo > ihi || ilo < -128.0 || ihi > 127.0)
        throw_value("fill_uniform int8 needs an integer in [lo, hi] and -128 <= lo <= hi <= 127");
      const int threads = 256;
      std::size_t blocks = std::min<std::size_t>((count + threads - 1) / threads, 65536);
      fill_int8_kernel<<<static_cast<unsigned>(blocks), threads, 0, 0>>>(
          reinterpret_cast<std::int8_t*>(ptr), count, seed, static_cast<int>(ilo),
          static_cast<int>(ihi));
      break;
    }
  }
  AIBENCH_CUDA_CHECK(cudaGetLastError());
  AIBENCH_CUDA_CHECK(cudaStreamSynchronize(0));
}

}  // namespace aibench_cuda
