// AVX-512 reduce path (compiled with -mavx512f -mavx512bw -mavx512vl -mavx512dq).
// Everything is in an anonymous namespace: see the ODR rule in reduce.hpp. bf16 rounding
// is done with integer ops (AVX-512F), not AVX512_BF16, so every AVX-512 CPU runs it.
#include <immintrin.h>

#include "collectives/reduce.hpp"
#include "collectives/reduce_scalar_ops.hpp"

namespace aibench::collectives::avx512 {
namespace {

void sum_fp32(void* out_, const void* a_, const void* b_, int64_t n) {
  auto* out = static_cast<float*>(out_);
  const auto* a = static_cast<const float*>(a_);
  const auto* b = static_cast<const float*>(b_);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 x0 = _mm512_add_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
    const __m512 x1 = _mm512_add_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
    _mm512_storeu_ps(out + i, x0);
    _mm512_storeu_ps(out + i + 16, x1);
  }
  sum_tail_fp32(out, a, b, i, n);
}

void sum_fp64(void* out_, const void* a_, const void* b_, int64_t n) {
  auto* out = static_cast<double*>(out_);
  const auto* a = static_cast<const double*>(a_);
  const auto* b = static_cast<const double*>(b_);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512d x0 = _mm512_add_pd(_mm512_loadu_pd(a + i), _mm512_loadu_pd(b + i));
    const __m512d x1 = _mm512_add_pd(_mm512_loadu_pd(a + i + 8), _mm512_loadu_pd(b + i + 8));
    _mm512_storeu_pd(out + i, x0);
    _mm512_storeu_pd(out + i + 8, x1);
  }
  sum_tail_fp64(out, a, b, i, n);
}

inline __m512 load_bf16(const uint16_t* p) {
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// 16 fp32 -> 16 bf16, round to nearest even, NaN kept quiet (as float_to_bf16).
inline void store_bf16(uint16_t* p, __m512 x) {
  const __m512i bits = _mm512_castps_si512(x);
  const __m512i hi = _mm512_srli_epi32(bits, 16);
  const __m512i lsb = _mm512_and_si512(hi, _mm512_set1_epi32(1));
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(bits, _mm512_set1_epi32(0x7fff)), lsb), 16);
  const __mmask16 unordered = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  r = _mm512_mask_mov_epi32(r, unordered, _mm512_or_si512(hi, _mm512_set1_epi32(0x40)));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi32_epi16(r));
}

void sum_bf16(void* out_, const void* a_, const void* b_, int64_t n) {
  auto* out = static_cast<uint16_t*>(out_);
  const auto* a = static_cast<const uint16_t*>(a_);
  const auto* b = static_cast<const uint16_t*>(b_);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 x0 = _mm512_add_ps(load_bf16(a + i), load_bf16(b + i));
    const __m512 x1 = _mm512_add_ps(load_bf16(a + i + 16), load_bf16(b + i + 16));
    store_bf16(out + i, x0);
    store_bf16(out + i + 16, x1);
  }
  sum_tail_bf16(out, a, b, i, n);
}

inline __m512 load_fp16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

inline void store_fp16(uint16_t* p, __m512 x) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p),
                      _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

void sum_fp16(void* out_, const void* a_, const void* b_, int64_t n) {
  auto* out = static_cast<uint16_t*>(out_);
  const auto* a = static_cast<const uint16_t*>(a_);
  const auto* b = static_cast<const uint16_t*>(b_);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 x0 = _mm512_add_ps(load_fp16(a + i), load_fp16(b + i));
    const __m512 x1 = _mm512_add_ps(load_fp16(a + i + 16), load_fp16(b + i + 16));
    store_fp16(out + i, x0);
    store_fp16(out + i + 16, x1);
  }
  sum_tail_fp16(out, a, b, i, n);
}

}  // namespace

SumKernels sum_kernels() { return {&sum_fp32, &sum_fp64, &sum_bf16, &sum_fp16}; }

}  // namespace aibench::collectives::avx512
