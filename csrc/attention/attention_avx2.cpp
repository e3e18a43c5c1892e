// AVX2 + FMA fp32 attention tile (compiled with -mavx2 -mfma). Everything here is in an
// anonymous namespace: see the ODR rule in gemm/gemm.hpp.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "attention/attention.hpp"

namespace aibench::attention::avx2 {
namespace {

struct Vec {
  using R = __m256;
  using M = __m256;  // all-ones lanes
  static constexpr int W = 8;
  // 16 ymm registers: 6 x 2 accumulators, 2 loaded vectors, 1 broadcast.
  static constexpr int kMrQk = 6, kNvQk = 2;  // 6 keys x 16 queries
  static constexpr int kMrPv = 6, kNvPv = 2;  // 6 queries x 16 head-dim columns

  static R load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, R x) { _mm256_storeu_ps(p, x); }
  static R set1(float x) { return _mm256_set1_ps(x); }
  static R zero() { return _mm256_setzero_ps(); }
  static R add(R a, R b) { return _mm256_add_ps(a, b); }
  static R sub(R a, R b) { return _mm256_sub_ps(a, b); }
  static R mul(R a, R b) { return _mm256_mul_ps(a, b); }
  static R max(R a, R b) { return _mm256_max_ps(a, b); }
  static R fmadd(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }

  static M lanes_ge(int32_t first, int32_t t) {
    const __m256i idx = _mm256_add_epi32(_mm256_set1_epi32(first),
                                         _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    return _mm256_castsi256_ps(_mm256_cmpgt_epi32(idx, _mm256_set1_epi32(t - 1)));
  }
  static R keep_or_neginf(M m, R x) { return _mm256_blendv_ps(_mm256_set1_ps(-__builtin_inff()), x, m); }
  static R neginf_to_zero(R x) {
    return _mm256_andnot_ps(_mm256_cmp_ps(x, _mm256_set1_ps(-__builtin_inff()), _CMP_EQ_OQ), x);
  }

  // As the AVX-512 exp2; 2^n built in the exponent bits (n in [-126, 127]).
  static R exp2(R x) {
    const R live = _mm256_cmp_ps(x, _mm256_set1_ps(-126.0f), _CMP_NLT_UQ);
    x = _mm256_max_ps(_mm256_set1_ps(-126.0f), x);  // NaN (second operand) passes
    x = _mm256_min_ps(_mm256_set1_ps(127.0f), x);
    const R n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const R f = _mm256_sub_ps(x, n);
    R y = _mm256_set1_ps(1.3264719163998961e-3f);
    y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(9.671513922512531e-3f));
    y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(5.550733953714371e-2f));
    y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(2.4022242426872253e-1f));
    y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(6.931470036506653e-1f));
    y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(1.0f));
    const __m256i e = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_and_ps(_mm256_mul_ps(y, _mm256_castsi256_ps(e)), live);
  }
};

#include "attention/attention_simd.inc"

void tile(const Problem& p, const VLayout& vl, int64_t b, int64_t h, int64_t q0, void* scratch) {
  fp32_tile(p, vl, b, h, q0, scratch);
}

}  // namespace

Kernel fp32_kernel() { return {&tile, &fp32_scratch_bytes, nullptr, kPadD}; }

}  // namespace aibench::attention::avx2
