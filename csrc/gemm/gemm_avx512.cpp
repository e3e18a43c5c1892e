// AVX-512F micro-kernels (compiled with -mavx512f -mavx512dq -mavx512bw -mavx512vl -mfma).
// Everything here is in an anonymous namespace: see the ODR rule in gemm.hpp.
//
// Register tile: MR rows x NV zmm vectors of C. Each k step loads one row of the B
// micro-panel (NV vectors) and, per row of A, broadcasts one value and does NV FMAs.
// The 32 zmm registers hold MR*NV accumulators, NV B vectors and the broadcast. The
// kernel alone runs at the FMA peak when its panels sit in L1.
#include <immintrin.h>

#include "gemm/gemm.hpp"

namespace aibench::gemm::avx512 {
namespace {

template <int MR, int NV>
void micro_kernel_fp32(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                       bool accumulate) {
  // The C tile is only touched after the k loop; start fetching it now so that the
  // loop hides the miss (C is far larger than the caches).
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + v * 16), _MM_HINT_T0);
    }
  }
  __m512 acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();

  for (int64_t p = 0; p < kc; ++p, a += MR, b += NV * 16) {
    __m512 b_row[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) b_row[v] = _mm512_loadu_ps(b + v * 16);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const __m512 a_value = _mm512_set1_ps(a[i]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(a_value, b_row[v], acc[i][v]);
    }
  }

#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      float* dst = c + i * ldc + v * 16;
      const __m512 sum = accumulate ? _mm512_add_ps(_mm512_loadu_ps(dst), acc[i][v]) : acc[i][v];
      _mm512_storeu_ps(dst, sum);
    }
  }
}

template <int MR, int NV>
void micro_kernel_fp64(int64_t kc, const double* a, const double* b, double* c, int64_t ldc,
                       bool accumulate) {
  // The C tile is only touched after the k loop; start fetching it now so that the
  // loop hides the miss (C is far larger than the caches).
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + v * 8), _MM_HINT_T0);
    }
  }
  __m512d acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_pd();

  for (int64_t p = 0; p < kc; ++p, a += MR, b += NV * 8) {
    __m512d b_row[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) b_row[v] = _mm512_loadu_pd(b + v * 8);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const __m512d a_value = _mm512_set1_pd(a[i]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_pd(a_value, b_row[v], acc[i][v]);
    }
  }

#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      double* dst = c + i * ldc + v * 8;
      const __m512d sum = accumulate ? _mm512_add_pd(_mm512_loadu_pd(dst), acc[i][v]) : acc[i][v];
      _mm512_storeu_pd(dst, sum);
    }
  }
}

// Tiles and blocks measured on Zen 4 (AVX-512 on 256-bit units, 1 MiB L2 per core) at
// 2048^3: a few rows by a wide row of B (6 x 64 fp32, 6 x 32 fp64: 24 accumulators)
// beat taller, narrower tiles (14 x 32, 12 x 32, 8 x 48) by 5-10%. KC = 512 halves the
// passes over C against 256; the A block (MC x KC) stays within L2.
constexpr int kMrFp32 = 6, kNvFp32 = 4;  // 6 x 64 tile
constexpr int kMrFp64 = 6, kNvFp64 = 4;  // 6 x 32 tile

}  // namespace

// GEMV is bound by memory bandwidth, which 256-bit loads already saturate: the AVX2
// kernels serve this path too.
KernelSpec<float> fp32_kernel() {
  return {{kMrFp32, kNvFp32 * 16, 512, 336, 4096}, &micro_kernel_fp32<kMrFp32, kNvFp32>,
          avx2::fp32_gemv()};
}

KernelSpec<double> fp64_kernel() {
  return {{kMrFp64, kNvFp64 * 8, 512, 192, 4096}, &micro_kernel_fp64<kMrFp64, kNvFp64>,
          avx2::fp64_gemv()};
}

}  // namespace aibench::gemm::avx512
