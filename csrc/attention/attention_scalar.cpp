// Scalar fp32 attention tile (compiled without ISA flags): the reference path and the
// fallback for CPUs without AVX2. Row by row, the same online softmax over K tiles as the
// vector paths, with std::exp.
#include <cmath>

#include "attention/attention.hpp"

namespace aibench::attention::scalar {
namespace {

size_t scratch_bytes(int64_t head_dim) {
  return sizeof(float) * static_cast<size_t>(head_dim + kBlockK);
}

void tile(const Problem& p, const VLayout& vl, int64_t b, int64_t h, int64_t q0, void* scratch) {
  const int64_t D = p.head_dim, Sq = p.seq_q, Sk = p.seq_k;
  const int64_t hk = h / (p.heads / p.kv_heads);
  const int64_t off = Sk - Sq;  // bottom-right causal alignment
  const float* q = static_cast<const float*>(p.q) + ((b * p.heads + h) * Sq) * D;
  float* o = static_cast<float*>(p.o) + ((b * p.heads + h) * Sq) * D;
  const float* k = static_cast<const float*>(p.k) + ((b * p.kv_heads + hk) * Sk) * D;
  const float* v = static_cast<const float*>(vl.base) + (b * p.kv_heads + hk) * vl.head_stride;
  float* acc = static_cast<float*>(scratch);
  float* s = acc + D;

  const int64_t q1 = q0 + kBlockQ < Sq ? q0 + kBlockQ : Sq;
  for (int64_t i = q0; i < q1; ++i) {
    const float* qi = q + i * D;
    for (int64_t d = 0; d < D; ++d) acc[d] = 0.0f;
    float m = -INFINITY, l = 0.0f;
    int64_t kend = p.causal ? i + off + 1 : Sk;  // keys [0, kend) are visible
    if (kend > Sk) kend = Sk;
    for (int64_t j0 = 0; j0 < kend; j0 += kBlockK) {
      const int64_t nk = kend - j0 < kBlockK ? kend - j0 : kBlockK;
      float mt = m;
      for (int64_t j = 0; j < nk; ++j) {
        const float* kj = k + (j0 + j) * D;
        float dot = 0.0f;
        for (int64_t d = 0; d < D; ++d) dot += qi[d] * kj[d];
        s[j] = dot * p.scale;
        mt = s[j] > mt ? s[j] : mt;
      }
      const float alpha = std::exp(m - mt);  // m = -inf on the first tile: 0
      float sum = 0.0f;
      for (int64_t d = 0; d < D; ++d) acc[d] *= alpha;
      for (int64_t j = 0; j < nk; ++j) {
        const float pj = std::exp(s[j] - mt);
        sum += pj;
        const float* vj = v + (j0 + j) * vl.ld;
        for (int64_t d = 0; d < D; ++d) acc[d] += pj * vj[d];
      }
      l = l * alpha + sum;
      m = mt;
    }
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    for (int64_t d = 0; d < D; ++d) o[i * D + d] = acc[d] * inv;
  }
}

}  // namespace

Kernel fp32_kernel() { return {&tile, &scratch_bytes, nullptr, 1}; }

}  // namespace aibench::attention::scalar
