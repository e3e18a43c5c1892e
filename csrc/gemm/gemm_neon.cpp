// aarch64 NEON micro-kernels: the baseline ("scalar") path on aarch64, where NEON is part
// of the architecture (no run-time check needed). Compiled only on aarch64 (CMakeLists.txt);
// gemm_scalar.cpp's portable tiles serve every other architecture.
// Everything here is in an anonymous namespace: see the ODR rule in gemm.hpp.
//
// Register tile: MR rows x NV 128-bit vectors of C. Each k step loads one row of the B
// micro-panel (NV vectors) and the MR values of the A micro-panel (MR / lanes vectors),
// and does MR x NV FMAs by lane (FMLA v.4s, v.4s, v.s[i]): no broadcast instructions.
// 32 vector registers: fp32 8 x 12 uses 24 accumulators + 3 B + 2 A; fp64 6 x 8 uses
// 24 accumulators + 4 B + 3 A.
#include <arm_neon.h>

#include "gemm/gemm.hpp"

namespace aibench::gemm::neon {
namespace {

template <int MR, int NV>
void micro_kernel_fp32(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                       bool accumulate) {
  static_assert(MR % 4 == 0, "A is loaded four rows at a time");
  float32x4_t acc[MR][NV];
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < NV; ++v) acc[i][v] = vdupq_n_f32(0.0f);

  for (int64_t p = 0; p < kc; ++p, a += MR, b += NV * 4) {
    float32x4_t b_row[NV];
    for (int v = 0; v < NV; ++v) b_row[v] = vld1q_f32(b + v * 4);
    for (int i4 = 0; i4 < MR / 4; ++i4) {
      const float32x4_t a4 = vld1q_f32(a + i4 * 4);
      for (int v = 0; v < NV; ++v) {
        acc[i4 * 4 + 0][v] = vfmaq_laneq_f32(acc[i4 * 4 + 0][v], b_row[v], a4, 0);
        acc[i4 * 4 + 1][v] = vfmaq_laneq_f32(acc[i4 * 4 + 1][v], b_row[v], a4, 1);
        acc[i4 * 4 + 2][v] = vfmaq_laneq_f32(acc[i4 * 4 + 2][v], b_row[v], a4, 2);
        acc[i4 * 4 + 3][v] = vfmaq_laneq_f32(acc[i4 * 4 + 3][v], b_row[v], a4, 3);
      }
    }
  }

  for (int i = 0; i < MR; ++i) {
    for (int v = 0; v < NV; ++v) {
      float* dst = c + i * ldc + v * 4;
      vst1q_f32(dst, accumulate ? vaddq_f32(vld1q_f32(dst), acc[i][v]) : acc[i][v]);
    }
  }
}

template <int MR, int NV>
void micro_kernel_fp64(int64_t kc, const double* a, const double* b, double* c, int64_t ldc,
                       bool accumulate) {
  static_assert(MR % 2 == 0, "A is loaded two rows at a time");
  float64x2_t acc[MR][NV];
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < NV; ++v) acc[i][v] = vdupq_n_f64(0.0);

  for (int64_t p = 0; p < kc; ++p, a += MR, b += NV * 2) {
    float64x2_t b_row[NV];
    for (int v = 0; v < NV; ++v) b_row[v] = vld1q_f64(b + v * 2);
    for (int i2 = 0; i2 < MR / 2; ++i2) {
      const float64x2_t a2 = vld1q_f64(a + i2 * 2);
      for (int v = 0; v < NV; ++v) {
        acc[i2 * 2 + 0][v] = vfmaq_laneq_f64(acc[i2 * 2 + 0][v], b_row[v], a2, 0);
        acc[i2 * 2 + 1][v] = vfmaq_laneq_f64(acc[i2 * 2 + 1][v], b_row[v], a2, 1);
      }
    }
  }

  for (int i = 0; i < MR; ++i) {
    for (int v = 0; v < NV; ++v) {
      double* dst = c + i * ldc + v * 2;
      vst1q_f64(dst, accumulate ? vaddq_f64(vld1q_f64(dst), acc[i][v]) : acc[i][v]);
    }
  }
}

constexpr int kMrFp32 = 8, kNvFp32 = 3;  // 8 x 12 tile
constexpr int kMrFp64 = 6, kNvFp64 = 4;  // 6 x 8 tile

}  // namespace

KernelSpec<float> fp32_kernel() {
  return {blocking_for_caches(kMrFp32, kNvFp32 * 4, sizeof(float)), &micro_kernel_fp32<kMrFp32, kNvFp32>};
}

KernelSpec<double> fp64_kernel() {
  return {blocking_for_caches(kMrFp64, kNvFp64 * 2, sizeof(double)),
          &micro_kernel_fp64<kMrFp64, kNvFp64>};
}

}  // namespace aibench::gemm::neon
