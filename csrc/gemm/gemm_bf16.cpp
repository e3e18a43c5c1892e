// AVX512_BF16 micro-kernels (compiled with -mavx512f -mavx512bw -mavx512vl -mavx512dq
// -mavx512bf16 -mfma). Everything here is in an anonymous namespace: see the ODR rule in
// gemm.hpp.
//
// VDPBF16PS: each fp32 lane of the accumulator adds a.lo * b.lo + a.hi * b.hi, where a
// and b hold a pair of bf16 in that 32-bit lane (products exact in fp32, sums rounded
// to fp32; DAZ/FTZ and round-to-nearest-even are fixed by the instruction). The packed
// panels hold k pairs (gemm_lowp.cpp), so one instruction does 16 columns x 2 k.
//
// Register tile: MR rows x NV zmm vectors (16 fp32 columns each). Each k pair loads NV
// vectors of the B micro-panel and, per row, broadcasts one 32-bit A pair and does NV
// dot products: MR*NV accumulators + NV B vectors + 1 broadcast <= 32 zmm registers.
#include <immintrin.h>

#include "gemm/gemm.hpp"

namespace aibench::gemm::avx512_bf16 {
namespace {

template <int MR, int NV>
inline __attribute__((always_inline)) void tile_product(int64_t kq, const uint32_t* a,
                                                        const uint32_t* b, __m512 (&acc)[MR][NV]) {
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();

  for (int64_t q = 0; q < kq; ++q, a += MR, b += NV * 16) {
    __m512bh b_row[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) b_row[v] = (__m512bh)_mm512_loadu_si512(b + v * 16);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const __m512bh a_pair = (__m512bh)_mm512_set1_epi32(static_cast<int>(a[i]));
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], a_pair, b_row[v]);
    }
  }
}

template <int MR, int NV>
void prefetch_tile(const void* c, int64_t ld_bytes) {
  const char* p = static_cast<const char*>(c);
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) _mm_prefetch(p + i * ld_bytes + v * 64, _MM_HINT_T0);
}

template <int MR, int NV>
void micro_kernel_fp32_out(int64_t kq, const uint32_t* a, const uint32_t* b, float* c,
                           int64_t ldc, bool accumulate) {
  if (accumulate) prefetch_tile<MR, NV>(c, ldc * 4);
  __m512 acc[MR][NV];
  tile_product<MR, NV>(kq, a, b, acc);
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      float* dst = c + i * ldc + v * 16;
      _mm512_storeu_ps(dst, accumulate ? _mm512_add_ps(_mm512_loadu_ps(dst), acc[i][v]) : acc[i][v]);
    }
  }
}

// Rounds the fp32 sum (plus the earlier k blocks' sum, if any) to bf16 once, with
// VCVTNEPS2BF16 (round to nearest even).
template <int MR, int NV>
void micro_kernel_bf16_out(int64_t kq, const uint32_t* a, const uint32_t* b, const float* acc_in,
                           int64_t ld_acc, uint16_t* c, int64_t ldc) {
  if (acc_in != nullptr) prefetch_tile<MR, NV>(acc_in, ld_acc * 4);
  __m512 acc[MR][NV];
  tile_product<MR, NV>(kq, a, b, acc);
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      __m512 sum = acc[i][v];
      if (acc_in != nullptr) sum = _mm512_add_ps(_mm512_loadu_ps(acc_in + i * ld_acc + v * 16), sum);
      const __m256bh rounded = _mm512_cvtneps_pbh(sum);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + i * ldc + v * 16), (__m256i)rounded);
    }
  }
}

// 6 x 64 like the fp32 tile (24 accumulators), measured on Zen 4 at 2048^3: see the
// report in gemm_int8.cpp's neighbour gemm_avx512.cpp for the fp32 reasoning. KC = 1024
// k (512 pairs) keeps the packed A block (MC x KC x 2 bytes) the size of the fp32 one.
constexpr int kMr = 6, kNv = 4;

}  // namespace

Bf16KernelSpec bf16_kernel() {
  return {{kMr, kNv * 16, 1024, 336, 4096}, &micro_kernel_fp32_out<kMr, kNv>,
          &micro_kernel_bf16_out<kMr, kNv>};
}

}  // namespace aibench::gemm::avx512_bf16
