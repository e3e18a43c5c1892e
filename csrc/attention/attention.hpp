// CPU scaled dot-product attention forward, fused in the FlashAttention style:
//
//   O = softmax(Q·Kᵀ·scale + causal mask)·V
//   q (B, H, Sq, D), k and v (B, Hkv, Sk, D), o (B, H, Sq, D): row-major, contiguous.
//   Grouped-query attention: query head h reads kv head h / (H / Hkv).
//   Causal alignment is bottom-right (FlashAttention 2): query i sees keys j <= i + Sk - Sq;
//   a query that sees no key outputs zeros.
//
// One work item (OpenMP, dynamic: causal items are unequal) is one (batch, head, query
// tile of kBlockQ rows). It walks the K/V tiles of kBlockK keys with the online softmax
// (running max m and sum l per query, the accumulator rescaled by exp(m_old - m_new)),
// so the Sq x Sk score matrix never exists. Inside a tile the scores are kept transposed,
// Sᵀ (keys x queries), so that the softmax over keys is a vertical (lane-wise) max and
// sum with no horizontal reduction:
//
//   Sᵀ[j][i] = Σ_d K[j][d]·Qᵀ[d][i]    K rows read in place, Qᵀ packed once per query tile
//   Pᵀ = exp2(Sᵀ·scale·log2 e - m)      fp32, lane = query
//   O[i][:] = O[i][:]·alpha[i] + Σ_j Pᵀ[j][i]·V[j][:]   O (kBlockQ x Dpad, fp32) per tile
//
// fp32: fp32 in/out and math, paths scalar / avx2 / avx512 (the gemm's ISA selection).
// bf16: bf16 in/out (uint16 bits); Q·Kᵀ and P·V on VDPBF16PS with fp32 accumulation,
// softmax in fp32, P rounded to bf16 for P·V, output rounded to nearest even. The
// instruction multiplies pairs along the reduction: Q is packed as (d, d+1) pairs per
// query, K pairs are read in place, V is packed once per call as (key, key+1) pairs per
// column, P as (key, key+1) pairs per query.
//
// The per-ISA files follow the ODR rule of gemm/gemm.hpp: everything they define is in an
// anonymous namespace, this header only declares.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace aibench::attention {

enum class Dtype { fp32, bf16 };

// Query rows per work item and keys per K/V tile (both paths, all ISAs; kBlockK even for
// the bf16 key pairs). The kernel scratch of one thread is about
// (2·D + kBlockK + 4)·kBlockQ floats: 80 KiB at D = 128, within a 1 MiB L2.
constexpr int64_t kBlockQ = 64;
constexpr int64_t kBlockK = 64;
// Rows of V (fp32) or of the packed V pairs (bf16) are padded to a multiple of this many
// elements, so that the P·V kernel loads whole vectors.
constexpr int64_t kPadD = 16;
constexpr int64_t kMaxHeadDim = 256;

// One forward, validated by the caller.
struct Problem {
  Dtype dtype;
  int64_t batch, heads, kv_heads, seq_q, seq_k, head_dim;
  bool causal;
  float scale;
  const void* q;
  const void* k;
  const void* v;
  void* o;
};

// V as the tile kernel reads it: kv head g starts at base + g·head_stride elements,
// rows ld elements apart (fp32: floats of one key; bf16: uint32 pairs of two keys).
struct VLayout {
  const void* base;
  int64_t ld;
  int64_t head_stride;
};

// Computes the query tile starting at row q0 of (batch b, head h).
using TileFn = void (*)(const Problem& p, const VLayout& v, int64_t b, int64_t h, int64_t q0,
                        void* scratch);
// bf16: packs the key pairs [pair_begin, pair_end) of one kv head (v_head: seq_k x D bf16)
// into dst_head (rows of ld uint32 pairs, zero beyond D and beyond seq_k).
using PackVFn = void (*)(const Problem& p, const void* v_head, int64_t pair_begin,
                         int64_t pair_end, int64_t ld, void* dst_head);

struct Kernel {
  TileFn tile;
  size_t (*scratch_bytes)(int64_t head_dim);
  PackVFn pack_v;      // nullptr: fp32, V read in place (copied with padded rows when
  int64_t v_granule;   //   head_dim is not a multiple of v_granule)
  // An fp32 kernel serving bf16 on a CPU without VDPBF16PS: forward() widens Q, K, V to
  // fp32 (exact), runs the fp32 kernel (fp32 math throughout, P not rounded) and rounds
  // O to bf16 once, to nearest even.
  bool widens_bf16 = false;
};

// Per-ISA kernels, defined in attention_<isa>.cpp.
namespace scalar {
Kernel fp32_kernel();
}  // namespace scalar
#if AIBENCH_X86
namespace avx2 {
Kernel fp32_kernel();
}  // namespace avx2
namespace avx512 {
Kernel fp32_kernel();
}  // namespace avx512
namespace avx512_bf16 {
Kernel bf16_kernel();
}  // namespace avx512_bf16
#endif

// ---- Selection and driver (attention_driver.cpp) ----

// Names of the paths this CPU can run (under AIBENCH_CPU_ISA) for dtype "fp32" or
// "bf16", slowest first: "scalar", "avx2", "avx512", and for bf16 then "avx512_bf16"
// (VDPBF16PS; the others widen to fp32). Throws std::invalid_argument for another dtype.
std::vector<std::string> paths(const std::string& dtype);
// "auto" (the last of paths(dtype)) or one of paths(dtype). Throws std::invalid_argument.
Kernel select_kernel(Dtype dtype, const std::string& isa);

// Runs one forward. threads <= 0: OpenMP's default thread count.
void forward(const Kernel& kernel, const Problem& p, int threads);

}  // namespace aibench::attention
