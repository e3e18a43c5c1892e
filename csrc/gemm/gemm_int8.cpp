// AVX512_VNNI micro-kernel (compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni).
// Everything here is in an anonymous namespace: see the ODR rule in gemm.hpp.
//
// VPDPBUSD: each int32 lane of the accumulator adds the four products of unsigned bytes
// of its first source with the signed bytes of its second, wrapping modulo 2^32 (the
// saturating VPDPBUSDS is not used). A is s8, so it is packed as u8 = a + 128 and
// sum_k (a + 128) * b = sum_k a * b + 128 * sum_k b: the accumulators start from
// -128 * sum_k b (per column, computed when B is packed and stored after the B
// micro-panel), so the tile is exactly sum_k a * b modulo 2^32, i.e. exact whenever the
// true product fits in int32.
//
// Register tile: MR rows x NV zmm vectors (16 int32 columns each). Each group of 4 k
// loads NV vectors of the B micro-panel and, per row, broadcasts one 32-bit lane of 4 A
// bytes and does NV dot products.
#include <immintrin.h>

#include "gemm/gemm.hpp"

namespace aibench::gemm::avx512_vnni {
namespace {

template <int MR, int NV>
void micro_kernel(int64_t kq, const uint32_t* a, const uint32_t* b, int32_t* c, int64_t ldc,
                  bool accumulate) {
  // The C tile is only touched after the k loop (written even when not accumulated):
  // start fetching it now so that the loop hides the miss.
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + v * 16), _MM_HINT_T0);
    }
  // The correction -128 * colsum(B) follows the kq groups of the B micro-panel.
  const uint32_t* corr = b + kq * NV * 16;
  __m512i acc[MR][NV];
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) {
    const __m512i start = _mm512_loadu_si512(corr + v * 16);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) acc[i][v] = start;
  }

  for (int64_t q = 0; q < kq; ++q, a += MR, b += NV * 16) {
    __m512i b_row[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) b_row[v] = _mm512_loadu_si512(b + v * 16);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const __m512i a_quad = _mm512_set1_epi32(static_cast<int>(a[i]));
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_dpbusd_epi32(acc[i][v], a_quad, b_row[v]);
    }
  }

#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      int32_t* dst = c + i * ldc + v * 16;
      const __m512i sum =
          accumulate ? _mm512_add_epi32(_mm512_loadu_si512(dst), acc[i][v]) : acc[i][v];
      _mm512_storeu_si512(dst, sum);
    }
  }
}

// Measured on Zen 4 at 2048^3, one core, CPU time: the kernel alone runs at 98% of the
// VPDPBUSD peak with its panels in L1/L2; in the blocked product the tiles 6 x 64,
// 8 x 48, 4 x 96 and 14 x 32 and KC 1024..4096, MC 96..336 were all within 3-4%.
// KC = 2048 (512 groups of 4) keeps the packed A block (MC x KC bytes) the size of the
// fp32 one and makes one pass over C for k <= 2048.
constexpr int kMr = 6, kNv = 4;  // 6 x 64: 24 accumulators + 4 B vectors + 1 broadcast
constexpr int64_t kKc = 2048, kMc = 336, kNc = 4096;

}  // namespace

Int8KernelSpec int8_kernel() {
  return {{kMr, kNv * 16, kKc, kMc, kNc}, &micro_kernel<kMr, kNv>};
}

}  // namespace aibench::gemm::avx512_vnni
