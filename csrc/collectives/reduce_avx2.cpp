// AVX2 + F16C reduce path (compiled with -mavx2 -mf16c). Everything is in an
// anonymous namespace: see the ODR rule in reduce.hpp. Loops do two vectors per step
// (the sum is bound by memory bandwidth, not by the adder); tails go scalar.
#include <immintrin.h>

#include "collectives/reduce.hpp"
#include "collectives/reduce_scalar_ops.hpp"

namespace aibench::collectives::avx2 {
namespace {

void sum_fp32(void* out_, const void* a_, const void* b_, int64_t n) {
  auto* out = static_cast<float*>(out_);
  const auto* a = static_cast<const float*>(a_);
  const auto* b = static_cast<const float*>(b_);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 x0 = _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    const __m256 x1 = _mm256_add_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
    _mm256_storeu_ps(out + i, x0);
    _mm256_storeu_ps(out + i + 8, x1);
  }
  sum_tail_fp32(out, a, b, i, n);
}

void sum_fp64(void* out_, const void* a_, const void* b_, int64_t n) {
  auto* out = static_cast<double*>(out_);
  const auto* a = static_cast<const double*>(a_);
  const auto* b = static_cast<const double*>(b_);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256d x0 = _mm256_add_pd(_mm256_loadu_pd(a + i), _mm256_loadu_pd(b + i));
    const __m256d x1 = _mm256_add_pd(_mm256_loadu_pd(a + i + 4), _mm256_loadu_pd(b + i + 4));
    _mm256_storeu_pd(out + i, x0);
    _mm256_storeu_pd(out + i + 4, x1);
  }
  sum_tail_fp64(out, a, b, i, n);
}

inline __m256 load_bf16(const uint16_t* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

// 8 fp32 -> 8 bf16, round to nearest even, NaN kept quiet (as float_to_bf16).
inline void store_bf16(uint16_t* p, __m256 x) {
  const __m256i bits = _mm256_castps_si256(x);
  const __m256i hi = _mm256_srli_epi32(bits, 16);
  const __m256i lsb = _mm256_and_si256(hi, _mm256_set1_epi32(1));
  __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(bits, _mm256_set1_epi32(0x7fff)), lsb), 16);
  const __m256i nan = _mm256_or_si256(hi, _mm256_set1_epi32(0x40));
  const __m256 unordered = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
  r = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(r), _mm256_castsi256_ps(nan), unordered));
  const __m128i packed = _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), packed);
}

void sum_bf16(void* out_, const void* a_, const void* b_, int64_t n) {
  auto* out = static_cast<uint16_t*>(out_);
  const auto* a = static_cast<const uint16_t*>(a_);
  const auto* b = static_cast<const uint16_t*>(b_);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 x0 = _mm256_add_ps(load_bf16(a + i), load_bf16(b + i));
    const __m256 x1 = _mm256_add_ps(load_bf16(a + i + 8), load_bf16(b + i + 8));
    store_bf16(out + i, x0);
    store_bf16(out + i + 8, x1);
  }
  sum_tail_bf16(out, a, b, i, n);
}

inline __m256 load_fp16(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

inline void store_fp16(uint16_t* p, __m256 x) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

void sum_fp16(void* out_, const void* a_, const void* b_, int64_t n) {
  auto* out = static_cast<uint16_t*>(out_);
  const auto* a = static_cast<const uint16_t*>(a_);
  const auto* b = static_cast<const uint16_t*>(b_);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 x0 = _mm256_add_ps(load_fp16(a + i), load_fp16(b + i));
    const __m256 x1 = _mm256_add_ps(load_fp16(a + i + 8), load_fp16(b + i + 8));
    store_fp16(out + i, x0);
    store_fp16(out + i + 8, x1);
  }
  sum_tail_fp16(out, a, b, i, n);
}

}  // namespace

SumKernels sum_kernels() { return {&sum_fp32, &sum_fp64, &sum_bf16, &sum_fp16}; }

}  // namespace aibench::collectives::avx2
