// Portable micro-kernels: plain C++ loops over a small register tile, compiled with the
// baseline flags (the compiler may vectorise the inner loop with SSE2 or NEON). This is
// the path for CPUs without AVX2 and for aarch64.
// Everything here is in an anonymous namespace: see the ODR rule in gemm.hpp.
#include "gemm/gemm.hpp"

namespace aibench::gemm::scalar {
namespace {

template <class T, int MR, int NR>
void micro_kernel(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, bool accumulate) {
  T acc[MR][NR] = {};
  for (int64_t p = 0; p < kc; ++p, a += MR, b += NR) {
    for (int i = 0; i < MR; ++i) {
      for (int j = 0; j < NR; ++j) acc[i][j] += a[i] * b[j];
    }
  }
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < NR; ++j) {
      c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc[i][j] : acc[i][j];
    }
  }
}

// int8 widened to int16: each lane two int16 k values; their products summed in int32.
template <int MR, int NR>
void micro_kernel_int16_pairs(int64_t kq, const uint32_t* a, const uint32_t* b, int32_t* c,
                              int64_t ldc, bool accumulate) {
  int32_t acc[MR][NR] = {};
  for (int64_t q = 0; q < kq; ++q, a += MR, b += NR) {
    for (int i = 0; i < MR; ++i) {
      const int32_t a0 = static_cast<int16_t>(a[i] & 0xFFFFu), a1 = static_cast<int16_t>(a[i] >> 16);
      for (int j = 0; j < NR; ++j) {
        acc[i][j] += a0 * static_cast<int16_t>(b[j] & 0xFFFFu) + a1 * static_cast<int16_t>(b[j] >> 16);
      }
    }
  }
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < NR; ++j) {
      c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc[i][j] : acc[i][j];
    }
  }
}

// 4 x 8 fp32 and 4 x 4 fp64: eight 128-bit accumulators, half of SSE2's 16 registers.
constexpr int kMrFp32 = 4, kNrFp32 = 8;
constexpr int kMrFp64 = 4, kNrFp64 = 4;

}  // namespace

KernelSpec<float> fp32_kernel() {
  return {blocking_for_caches(kMrFp32, kNrFp32, sizeof(float)), &micro_kernel<float, kMrFp32, kNrFp32>};
}

KernelSpec<double> fp64_kernel() {
  return {blocking_for_caches(kMrFp64, kNrFp64, sizeof(double)),
          &micro_kernel<double, kMrFp64, kNrFp64>};
}

Int16PairKernelSpec int16_pair_kernel() {
  return {blocking_for_caches(kMrFp32, kNrFp32, sizeof(uint32_t)),
          &micro_kernel_int16_pairs<kMrFp32, kNrFp32>};
}

}  // namespace aibench::gemm::scalar
