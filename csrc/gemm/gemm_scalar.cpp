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

// 4 x 8 fp32 and 4 x 4 fp64: eight 128-bit accumulators, half of SSE2's 16 registers.
constexpr int kMrFp32 = 4, kNrFp32 = 8;
constexpr int kMrFp64 = 4, kNrFp64 = 4;

}  // namespace

KernelSpec<float> fp32_kernel() {
  return {{kMrFp32, kNrFp32, 256, 256, 4096}, &micro_kernel<float, kMrFp32, kNrFp32>};
}

KernelSpec<double> fp64_kernel() {
  return {{kMrFp64, kNrFp64, 256, 128, 4096}, &micro_kernel<double, kMrFp64, kNrFp64>};
}

}  // namespace aibench::gemm::scalar
