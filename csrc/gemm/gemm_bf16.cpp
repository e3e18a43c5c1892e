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

#include <utility>

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
  prefetch_tile<MR, NV>(c, ldc * 4);  // C is touched only after the k loop: hide the miss
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
  prefetch_tile<MR, NV / 2>(c, ldc * 2);  // bf16 C: half the bytes
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

// Measured on Zen 4 (1 MiB L2 per core) at 2048^3, one core, CPU time: the kernel alone
// runs at 98% of the VDPBF16PS peak with its panels in L1/L2; in the blocked product the
// tiles 6 x 64, 8 x 48, 4 x 96 and 12 x 32 were within 3% of each other, and KC = 2048
// (1024 pairs) with MC = 192 beat KC = 512..1024 with MC = 336 by 2-4% (one pass over C
// for k <= 2048; A block + B micro-panel about 1 MiB). Software prefetch of B, huge pages
// for the packed buffers and vectorised packing changed nothing measurable.
constexpr int kMr = 6, kNv = 4;  // 6 x 64: 24 accumulators + 4 B vectors + 1 broadcast
constexpr int64_t kKc = 2048, kMc = 192, kNc = 4096;

// Register-only loops for bf16_dot_over_fma (gemm_lowp.cpp): kRateAccumulators
// independent accumulators per iteration, no memory touched; each returns a value that
// depends on every accumulator, so that the compiler keeps them all. The operands are
// small normal numbers: no overflow, no denormals over any run length measured.
constexpr int kRateAccumulators = 12;

template <int... J>
double dot_loop_impl(int64_t iters, std::integer_sequence<int, J...>) {
  // bf16 0.001 (0x3A83) in both halves of every 32-bit lane
  const __m512bh x = (__m512bh)_mm512_set1_epi32(0x3A833A83);
  __m512 acc[] = {_mm512_set1_ps(1.0f + J * 1e-3f)...};
  for (int64_t i = 0; i < iters; ++i) {
    ((acc[J] = _mm512_dpbf16_ps(acc[J], x, x)), ...);
  }
  return (0.0 + ... + _mm512_cvtss_f32(acc[J]));
}

template <int... J>
double fma_loop_impl(int64_t iters, std::integer_sequence<int, J...>) {
  const __m512 x = _mm512_set1_ps(1e-3f);
  __m512 acc[] = {_mm512_set1_ps(1.0f + J * 1e-3f)...};
  for (int64_t i = 0; i < iters; ++i) {
    ((acc[J] = _mm512_fmadd_ps(x, x, acc[J])), ...);
  }
  return (0.0 + ... + _mm512_cvtss_f32(acc[J]));
}

}  // namespace

double dot_rate_loop(int64_t iters) {
  return dot_loop_impl(iters, std::make_integer_sequence<int, kRateAccumulators>{});
}
double fma_rate_loop(int64_t iters) {
  return fma_loop_impl(iters, std::make_integer_sequence<int, kRateAccumulators>{});
}
int rate_loop_accumulators() { return kRateAccumulators; }

Bf16KernelSpec bf16_kernel() {
  return {{kMr, kNv * 16, kKc, kMc, kNc}, &micro_kernel_fp32_out<kMr, kNv>,
          &micro_kernel_bf16_out<kMr, kNv>};
}

}  // namespace aibench::gemm::avx512_bf16
