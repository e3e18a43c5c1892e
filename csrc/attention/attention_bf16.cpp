// bf16 attention tile on AVX512_BF16 (compiled with -mavx512f -mavx512bw -mavx512vl
// -mavx512dq -mavx512bf16 -mfma). Everything here is in an anonymous namespace: see the ODR
// rule in gemm/gemm.hpp.
//
// VDPBF16PS (_mm512_dpbf16_ps) adds, per fp32 lane, the products of one PAIR of bf16 along
// the reduction dimension: acc[i] += a[2i]·b[2i] + a[2i+1]·b[2i+1]. Hence the layouts:
//   Q·Kᵀ (reduction over d):  Qᵀ packed once per query tile as qtp[d/2][i] = (Q[i][d], Q[i][d+1]);
//                              K pairs (K[j][d], K[j][d+1]) broadcast straight from K's rows.
//   P·V (reduction over keys): Pᵀ (fp32, after the softmax) rounded to bf16 and packed as
//                              pp[j/2][i] = (P[i][j], P[i][j+1]); V packed once per call as
//                              vp[j/2][d] = (V[j][d], V[j+1][d]), rows padded to kPadD pairs.
// The first element of a pair is the low half of the 32-bit word. An odd head dim or
// key count is completed with a zero element.
// Scratch of one tile (4-byte words): qtp ceil(D/2) x kBlockQ, st kBlockK x kBlockQ (fp32),
// pp kBlockK/2 x kBlockQ, ob kBlockQ x Dpad (fp32), m, l, alpha, tmax kBlockQ each.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "attention/attention.hpp"

namespace aibench::attention::avx512_bf16 {
namespace {

#include "attention/attention_vec_avx512.inc"
#include "attention/attention_simd.inc"

static_assert(kBlockK % 2 == 0, "bf16 tiles hold whole key pairs");

// permutexvar_epi16 index interleaving the low 16 words (first elements) with the high 16
// (second elements): out[2i] = in[i], out[2i+1] = in[16 + i].
alignas(64) const uint16_t kInterleave[32] = {0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,
                                              21, 6, 22, 7, 23, 8,  24, 9,  25, 10, 26,
                                              11, 27, 12, 28, 13, 29, 14, 30, 15, 31};

inline __m512i interleave_index() { return _mm512_load_si512(kInterleave); }

inline uint32_t load_pair(const uint16_t* p) {
  uint32_t x;
  __builtin_memcpy(&x, p, sizeof x);
  return x;
}

inline __m512bh as_bh(__m512i x) { return (__m512bh)x; }

// ---- Q·Kᵀ: Sᵀ[j][i] = Σ_d K[j][d]·Q[i][d], fp32 accumulation ----

// MR key rows (k, rows D apart) x 64 queries (qtp, rows kBlockQ apart) into st, times c;
// raises tmax to the column max.
template <int MR>
void qk_micro_bf16(const uint16_t* k, int64_t D, const uint32_t* qtp, float* st, float c,
                   float* tmax) {
  constexpr int NV = static_cast<int>(kBlockQ / 16);
  __m512 acc[MR][NV];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int x = 0; x < NV; ++x) acc[r][x] = _mm512_setzero_ps();
  const int64_t pairs = D / 2;
  for (int64_t p = 0; p < pairs; ++p) {
    __m512bh qv[NV];
#pragma GCC unroll 8
    for (int x = 0; x < NV; ++x) qv[x] = as_bh(_mm512_loadu_si512(qtp + p * kBlockQ + x * 16));
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512bh kb = as_bh(_mm512_set1_epi32(static_cast<int>(load_pair(k + r * D + 2 * p))));
#pragma GCC unroll 8
      for (int x = 0; x < NV; ++x) acc[r][x] = _mm512_dpbf16_ps(acc[r][x], kb, qv[x]);
    }
  }
  if (D & 1) {  // last pair: (K[j][D-1], 0)
    __m512bh qv[NV];
#pragma GCC unroll 8
    for (int x = 0; x < NV; ++x) qv[x] = as_bh(_mm512_loadu_si512(qtp + pairs * kBlockQ + x * 16));
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512bh kb = as_bh(_mm512_set1_epi32(static_cast<int>(k[r * D + D - 1])));
#pragma GCC unroll 8
      for (int x = 0; x < NV; ++x) acc[r][x] = _mm512_dpbf16_ps(acc[r][x], kb, qv[x]);
    }
  }
  store_scores<MR, NV>(acc, st, c, tmax);
}

template <int MR>
void qk_rest_bf16(int64_t rows, const uint16_t* k, int64_t D, const uint32_t* qtp, float* st,
                  float c, float* tmax) {
  if constexpr (MR >= 1) {
    if (rows == MR) {
      qk_micro_bf16<MR>(k, D, qtp, st, c, tmax);
    } else {
      qk_rest_bf16<MR - 1>(rows, k, D, qtp, st, c, tmax);
    }
  }
}

constexpr int kMrQkBf16 = 6;

// t0: see keys_needed; key rows no query of the tile can see are skipped.
void qk_tile_bf16(const uint16_t* k, int64_t nk, int64_t t0, int64_t D, const uint32_t* qtp,
                  float* st, float c, float* tmax) {
  reset_tmax(tmax);
  nk = keys_needed(0, kBlockQ, t0, nk);
  int64_t j = 0;
  for (; j + kMrQkBf16 <= nk; j += kMrQkBf16)
    qk_micro_bf16<kMrQkBf16>(k + j * D, D, qtp, st + j * kBlockQ, c, tmax);
  if (j < nk) qk_rest_bf16<kMrQkBf16 - 1>(nk - j, k + j * D, D, qtp, st + j * kBlockQ, c, tmax);
}

// ---- Pᵀ (fp32) -> bf16 key pairs pp[j/2][i], the softmax's sink ----

struct PackPairs {
  uint32_t* pp;
  __m512i idx;  // interleave_index()
  void operator()(int64_t vq, int64_t j, __m512 p0, __m512 p1) const {
    // cvtne2ps_pbh(hi, lo): words 0..15 = lo, 16..31 = hi, rounded to nearest even.
    const __m512i both = (__m512i)_mm512_cvtne2ps_pbh(p1, p0);
    _mm512_storeu_si512(pp + (j / 2) * kBlockQ + vq * 16, _mm512_permutexvar_epi16(idx, both));
  }
};

// ---- P·V: O[i][:] = O[i][:]·alpha[i] + Σ_j P[i][j]·V[j][:] over key pairs ----

template <int MR, int NV>
void pv_micro_bf16(const uint32_t* pp, const uint32_t* vp, int64_t ldv, int64_t npairs, float* o,
                   int64_t ldo, const float* alpha) {
  __m512 acc[MR][NV];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    const __m512 a = _mm512_set1_ps(alpha[r]);
#pragma GCC unroll 8
    for (int x = 0; x < NV; ++x) acc[r][x] = _mm512_mul_ps(_mm512_loadu_ps(o + r * ldo + x * 16), a);
  }
  for (int64_t jp = 0; jp < npairs; ++jp) {
    __m512bh vv[NV];
#pragma GCC unroll 8
    for (int x = 0; x < NV; ++x) vv[x] = as_bh(_mm512_loadu_si512(vp + jp * ldv + x * 16));
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512bh pb = as_bh(_mm512_set1_epi32(static_cast<int>(pp[jp * kBlockQ + r])));
#pragma GCC unroll 8
      for (int x = 0; x < NV; ++x) acc[r][x] = _mm512_dpbf16_ps(acc[r][x], pb, vv[x]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int x = 0; x < NV; ++x) _mm512_storeu_ps(o + r * ldo + x * 16, acc[r][x]);
}

constexpr int kMrPvBf16 = 6, kNvPvBf16 = 4;

template <int NV>
void pv_column_bf16(const uint32_t* pp, const uint32_t* vp, int64_t ldv, int64_t nk, int64_t t0,
                    float* o, int64_t ldo, const float* alpha) {
  constexpr int MR = kMrPvBf16;
  constexpr int kRest = static_cast<int>(kBlockQ % MR);
  int64_t i = 0;
  for (; i + MR <= kBlockQ; i += MR) {
    const int64_t npairs = (keys_needed(i, MR, t0, nk) + 1) / 2;
    pv_micro_bf16<MR, NV>(pp + i, vp, ldv, npairs, o + i * ldo, ldo, alpha + i);
  }
  if constexpr (kRest > 0) {
    const int64_t npairs = (keys_needed(i, kRest, t0, nk) + 1) / 2;
    pv_micro_bf16<kRest, NV>(pp + i, vp, ldv, npairs, o + i * ldo, ldo, alpha + i);
  }
}

template <int NV>
void pv_column_rest_bf16(int64_t nv, const uint32_t* pp, const uint32_t* vp, int64_t ldv,
                         int64_t nk, int64_t t0, float* o, int64_t ldo, const float* alpha) {
  if constexpr (NV >= 1) {
    if (nv == NV) {
      pv_column_bf16<NV>(pp, vp, ldv, nk, t0, o, ldo, alpha);
    } else {
      pv_column_rest_bf16<NV - 1>(nv, pp, vp, ldv, nk, t0, o, ldo, alpha);
    }
  }
}

// nk keys (key pairs rounded up); vp rows hold ldv >= ldo pairs; o has ldo = Dpad
// columns, all computed. t0: see keys_needed.
void pv_tile_bf16(const uint32_t* pp, const uint32_t* vp, int64_t ldv, int64_t nk, int64_t t0,
                  float* o, int64_t ldo, const float* alpha) {
  constexpr int NV = kNvPvBf16;
  const int64_t nvec = ldo / 16;
  int64_t x = 0;
  for (; x + NV <= nvec; x += NV)
    pv_column_bf16<NV>(pp, vp + x * 16, ldv, nk, t0, o + x * 16, ldo, alpha);
  if (x < nvec)
    pv_column_rest_bf16<NV - 1>(nvec - x, pp, vp + x * 16, ldv, nk, t0, o + x * 16, ldo, alpha);
}

// ---- The tile ----

size_t scratch_bytes(int64_t D) {
  const int64_t pairs = (D + 1) / 2;
  return 4 * static_cast<size_t>(pairs * kBlockQ + kBlockK * kBlockQ + kBlockK / 2 * kBlockQ +
                                 kBlockQ * pad_d(D) + 4 * kBlockQ);
}

void tile(const Problem& p, const VLayout& vl, int64_t b, int64_t h, int64_t q0, void* scratch) {
  const int64_t D = p.head_dim, Sq = p.seq_q, Sk = p.seq_k, Dpad = pad_d(D);
  const int64_t pairs = (D + 1) / 2;
  const int64_t hk = h / (p.heads / p.kv_heads);
  const int64_t off = Sk - Sq;
  const int64_t nq = Sq - q0 < kBlockQ ? Sq - q0 : kBlockQ;
  const uint16_t* q = static_cast<const uint16_t*>(p.q) + ((b * p.heads + h) * Sq + q0) * D;
  uint16_t* out = static_cast<uint16_t*>(p.o) + ((b * p.heads + h) * Sq + q0) * D;
  const uint16_t* k = static_cast<const uint16_t*>(p.k) + (b * p.kv_heads + hk) * Sk * D;
  const uint32_t* vp = static_cast<const uint32_t*>(vl.base) + (b * p.kv_heads + hk) * vl.head_stride;

  uint32_t* qtp = static_cast<uint32_t*>(scratch);
  float* st = reinterpret_cast<float*>(qtp + pairs * kBlockQ);
  uint32_t* pp = reinterpret_cast<uint32_t*>(st + kBlockK * kBlockQ);
  float* ob = reinterpret_cast<float*>(pp + kBlockK / 2 * kBlockQ);
  float* m = ob + kBlockQ * Dpad;
  float* l = m + kBlockQ;
  float* alpha = l + kBlockQ;
  float* tmax = alpha + kBlockQ;

  for (int64_t i = 0; i < nq; ++i) {
    const uint16_t* qi = q + i * D;
    for (int64_t dp = 0; dp < D / 2; ++dp) qtp[dp * kBlockQ + i] = load_pair(qi + 2 * dp);
    if (D & 1) qtp[(pairs - 1) * kBlockQ + i] = qi[D - 1];
  }
  if (nq < kBlockQ)
    for (int64_t dp = 0; dp < pairs; ++dp)
      for (int64_t i = nq; i < kBlockQ; ++i) qtp[dp * kBlockQ + i] = 0;
  for (int64_t i = 0; i < kBlockQ; ++i) {
    m[i] = -__builtin_inff();
    l[i] = 0.0f;
  }
  __builtin_memset(ob, 0, sizeof(float) * static_cast<size_t>(kBlockQ * Dpad));

  const float c = p.scale * kLog2e;
  const __m512i idx = interleave_index();
  const int64_t kend = visible_end(p, q0, nq);
  for (int64_t j0 = 0; j0 < kend; j0 += kBlockK) {
    const int64_t nk = Sk - j0 < kBlockK ? Sk - j0 : kBlockK;
    const bool masked = p.causal && j0 + nk - 1 > q0 + off;
    const int64_t t0 = masked ? j0 - off - q0 : -(kBlockK + kBlockQ);
    qk_tile_bf16(k + j0 * D, nk, t0, D, qtp, st, c, tmax);
    softmax_tile(st, nk, tmax, m, l, alpha, masked, t0, PackPairs{pp, idx});
    pv_tile_bf16(pp, vp + (j0 / 2) * vl.ld, vl.ld, nk, t0, ob, Dpad, alpha);
  }

  for (int64_t i = 0; i < nq; ++i) {
    const float inv = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
    const __m512 iv = _mm512_set1_ps(inv);
    const float* row = ob + i * Dpad;
    uint16_t* dst = out + i * D;
    for (int64_t d = 0; d < D; d += 16) {
      const int64_t n = D - d < 16 ? D - d : 16;
      const __mmask16 mask = static_cast<__mmask16>((1u << n) - 1u);
      const __m256i y = (__m256i)_mm512_cvtneps_pbh(_mm512_mul_ps(_mm512_loadu_ps(row + d), iv));
      _mm256_mask_storeu_epi16(dst + d, mask, y);
    }
  }
}

// V of one kv head (seq_k x D bf16) -> key pairs [pair_begin, pair_end), rows of ld words.
void pack_v(const Problem& p, const void* v_head, int64_t pair_begin, int64_t pair_end, int64_t ld,
            void* dst_head) {
  const int64_t D = p.head_dim, Sk = p.seq_k;
  const uint16_t* v = static_cast<const uint16_t*>(v_head);
  uint32_t* dst = static_cast<uint32_t*>(dst_head);
  const __m512i idx = interleave_index();
  for (int64_t jp = pair_begin; jp < pair_end; ++jp) {
    const uint16_t* a = v + 2 * jp * D;
    const bool has_b = 2 * jp + 1 < Sk;
    for (int64_t d = 0; d < ld; d += 16) {
      const int64_t n = D - d <= 0 ? 0 : (D - d < 16 ? D - d : 16);
      const __mmask16 mask = static_cast<__mmask16>((1u << n) - 1u);
      const __m256i av = _mm256_maskz_loadu_epi16(mask, a + d);
      const __m256i bv = has_b ? _mm256_maskz_loadu_epi16(mask, a + D + d) : _mm256_setzero_si256();
      const __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(av), bv, 1);
      _mm512_storeu_si512(dst + jp * ld + d, _mm512_permutexvar_epi16(idx, both));
    }
  }
}

}  // namespace

Kernel bf16_kernel() { return {&tile, &scratch_bytes, &pack_v, kPadD}; }

}  // namespace aibench::attention::avx512_bf16
