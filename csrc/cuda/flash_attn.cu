// aibench's FlashAttention-2 forward kernel for bf16/fp16 (Ampere-style, sm_80 and later).
//
// One thread block per (query tile of BM = 128 rows, head, batch); 8 warps, each owning 16
// query rows. The Q tile is copied once to shared memory (cp.async) and kept in registers as
// mma A fragments (ldmatrix). K/V tiles of BN = 64 keys stream through a 2-stage cp.async
// double buffer: tile j+1 is in flight while tile j is computed. Per tile and warp:
//   S = Q K^T           mma.sync m16n8k16, K fragments by ldmatrix (no .trans: K rows are
//                       head-dim contiguous, the "col" B operand)
//   mask                only on tiles that cross the sequence end or the causal diagonal
//   online softmax      row max over the 4 lanes sharing a row (shuffles), exp2 with
//                       scale*log2(e) folded into one FFMA, O and the row sum rescaled
//   O += P V            P rounded to bf16/fp16 and reused in registers as the A fragment
//                       (the accumulator layout of two n8 fragments is the A layout of one
//                       k16 step), V fragments by ldmatrix.trans
// Causal blocks skip the K/V tiles entirely above the diagonal. The row sum is reduced
// across the 4 lanes once, at the end; O is normalised and stored with row bounds checks.
// Tails: Q/K/V rows past the sequence are zero-filled by cp.async (src-size 0), keys past
// seqlen_k are masked to -inf, and rows that see no key end with a zero sum and write 0.
// Shared memory is XOR-swizzled (flash_attn_layout.cuh): ldmatrix and the cp.async stores
// are free of bank conflicts (checked by the host emulation flash_attn_check.cpp).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <climits>
#include <cmath>
#include <cstdio>

#include "cuda/check.cuh"
#include "cuda/flash_attn.cuh"
#include "cuda/flash_attn_layout.cuh"
#include "cuda/ptx.cuh"

namespace aibench_cuda {
namespace {

using namespace fa_cfg;

__device__ __forceinline__ void cp_async_wait_all() {
  asm volatile("cp.async.wait_group 0;\n" ::: "memory");
}

// 2^x; exact 0 for -inf and for arguments below the smallest normal result.
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// Two floats rounded to nearest into one register: lo in bits 0-15, hi in bits 16-31.
template <bool FP16>
__device__ __forceinline__ std::uint32_t pack2(float lo, float hi) {
  if constexpr (FP16) {
    __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<std::uint32_t*>(&h);
  } else {
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<std::uint32_t*>(&h);
  }
}

// Copies `rows_left`-guarded rows of a [rows x D] tile (global rows `row_stride`=D elements
// apart, starting at `src`) into the swizzled shared tile at `dst`: copy i of this thread.
template <int D, int COPIES>
__device__ __forceinline__ void load_tile(std::uint32_t dst, const std::uint16_t* __restrict__ src,
                                          int rows_left, int tid) {
#pragma unroll
  for (int i = 0; i < COPIES; ++i) {
    int row, chunk;
    copy_coords<D>(tid, i, row, chunk);
    const bool ok = row < rows_left;
    const std::uint16_t* p = ok ? src + static_cast<std::size_t>(row) * D + chunk * 8 : src;
    cp_async_16(dst + tile_offset(row, chunk, Geometry<D>::ROW_BYTES), p, ok);
  }
}

template <int D, bool FP16, bool CAUSAL>
__global__ void __launch_bounds__(THREADS, D == 64 ? 2 : 1)
    flash_attn_fwd_kernel(const std::uint16_t* __restrict__ Q, const std::uint16_t* __restrict__ K,
                          const std::uint16_t* __restrict__ V, std::uint16_t* __restrict__ O,
                          int heads, int group, int sq, int sk, float scale_log2) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  using G = Geometry<D>;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  const std::uint32_t smem = static_cast<std::uint32_t>(__cvta_generic_to_shared(smem_raw));
  const int tid = threadIdx.x;
  const int lane = tid & 31;
  const int warp = tid >> 5;

  const int m0 = query_tile(blockIdx.x, gridDim.x, CAUSAL) * BM;
  const int h = blockIdx.y;
  const int b = blockIdx.z;
  const int kv_heads = heads / group;
  const std::size_t q_head = (static_cast<std::size_t>(b) * heads + h) * sq * D;
  const std::size_t kv_head = (static_cast<std::size_t>(b) * kv_heads + h / group) * sk * D;
  const std::uint16_t* __restrict__ q = Q + q_head + static_cast<std::size_t>(m0) * D;
  const std::uint16_t* __restrict__ k = K + kv_head;
  const std::uint16_t* __restrict__ v = V + kv_head;
  std::uint16_t* __restrict__ o = O + q_head;

  const int n_tiles = kv_tiles(m0, sq, sk, CAUSAL);

  auto load_kv = [&](int stage, int tile) {
    const int n0 = tile * BN;
    const std::size_t off = static_cast<std::size_t>(n0) * D;
    load_tile<D, G::KV_COPIES>(smem + G::K_OFFSET + stage * G::KV_TILE_BYTES, k + off, sk - n0, tid);
    load_tile<D, G::KV_COPIES>(smem + G::V_OFFSET + stage * G::KV_TILE_BYTES, v + off, sk - n0, tid);
  };

  // Prologue: the Q tile and K/V tile 0 in one group.
  load_tile<D, G::Q_COPIES>(smem, q, sq - m0, tid);
  if (n_tiles > 0) load_kv(0, 0);
  cp_async_commit();
  cp_async_wait_all();
  __syncthreads();

  std::uint32_t qf[G::KD][4];
#pragma unroll
  for (int kd = 0; kd < G::KD; ++kd) ldmatrix_x4(qf[kd], smem + q_ldmatrix_offset<D>(warp, kd, lane));

  float acc[G::ON][4];
#pragma unroll
  for (int j = 0; j < G::ON; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[j][e] = 0.0f;
  // Per thread: rows r0 = warp*16 + lane/4 (half 0) and r0 + 8 (half 1).
  float row_max[2] = {-INFINITY, -INFINITY};  // raw scores (before scale)
  float row_sum[2] = {0.0f, 0.0f};            // this thread's share of the row sum

  for (int t = 0; t < n_tiles; ++t) {
    if (t > 0) {
      cp_async_wait_all();  // tile t landed (issued one iteration ago)
      __syncthreads();      // ...for every thread; and all are done with tile t-1's stage
    }
    if (t + 1 < n_tiles) load_kv((t + 1) & 1, t + 1);
    cp_async_commit();

    const std::uint32_t sk_tile = smem + G::K_OFFSET + (t & 1) * G::KV_TILE_BYTES;
    const std::uint32_t sv_tile = smem + G::V_OFFSET + (t & 1) * G::KV_TILE_BYTES;

    // S = Q K^T for this warp's 16 rows and the tile's 64 keys.
    float s[SN][4];
#pragma unroll
    for (int j = 0; j < SN; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[j][e] = 0.0f;
#pragma unroll
    for (int kd = 0; kd < G::KD; ++kd) {
#pragma unroll
      for (int nj = 0; nj < SN / 2; ++nj) {
        std::uint32_t kf[4];
        ldmatrix_x4(kf, sk_tile + k_ldmatrix_offset<D>(nj, kd, lane));
        mma_16816<FP16>(s[2 * nj], qf[kd], kf[0], kf[1]);
        mma_16816<FP16>(s[2 * nj + 1], qf[kd], kf[2], kf[3]);
      }
    }

    const int n0 = t * BN;
    if (tile_needs_mask(n0, m0, sq, sk, CAUSAL)) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int end = key_end(m0 + warp * WARP_ROWS + acc_row(lane, 2 * half), sq, sk, CAUSAL);
#pragma unroll
        for (int j = 0; j < SN; ++j)
#pragma unroll
          for (int e = 0; e < 2; ++e)
            if (n0 + j * 8 + acc_col(lane, e) >= end) s[j][2 * half + e] = -INFINITY;
      }
    }

    // Online softmax, one half (row) at a time.
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float mx = row_max[half];
#pragma unroll
      for (int j = 0; j < SN; ++j) mx = fmaxf(mx, fmaxf(s[j][2 * half], s[j][2 * half + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      // A row that has seen only masked keys keeps max -inf: subtract 0 instead, so that
      // exp2(-inf - 0) = 0 rather than exp2(-inf + inf) = NaN.
      const float m_scaled = mx == -INFINITY ? 0.0f : mx * scale_log2;
      const float alpha = fast_exp2(row_max[half] * scale_log2 - m_scaled);  // 0 when old max is -inf
      row_max[half] = mx;
      float sum = 0.0f;
#pragma unroll
      for (int j = 0; j < SN; ++j)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const float p = fast_exp2(fmaf(s[j][2 * half + e], scale_log2, -m_scaled));
          s[j][2 * half + e] = p;
          sum += p;
        }
      row_sum[half] = row_sum[half] * alpha + sum;
#pragma unroll
      for (int j = 0; j < G::ON; ++j) {
        acc[j][2 * half] *= alpha;
        acc[j][2 * half + 1] *= alpha;
      }
    }

    // O += P V: P from the S accumulators, 16 keys per step.
#pragma unroll
    for (int kk = 0; kk < PK; ++kk) {
      std::uint32_t pa[4];
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int f = p_src_frag(kk, r), e = p_src_elem(r);
        pa[r] = pack2<FP16>(s[f][e], s[f][e + 1]);
      }
#pragma unroll
      for (int dj = 0; dj < G::ON / 2; ++dj) {
        std::uint32_t vf[4];
        ldmatrix_x4_trans(vf, sv_tile + v_ldmatrix_offset<D>(kk, dj, lane));
        mma_16816<FP16>(acc[2 * dj], pa, vf[0], vf[1]);
        mma_16816<FP16>(acc[2 * dj + 1], pa, vf[2], vf[3]);
      }
    }
  }
  cp_async_wait_all();  // nothing is left in flight (the last group is empty); for form

  // Normalise and store: rows r0 and r0 + 8, two adjacent columns per fragment.
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    float l = row_sum[half];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;  // no visible key: zeros
    const int row = m0 + warp * WARP_ROWS + acc_row(lane, 2 * half);
    if (row < sq) {
      std::uint16_t* dst = o + static_cast<std::size_t>(row) * D + acc_col(lane, 0);
#pragma unroll
      for (int j = 0; j < G::ON; ++j)
        *reinterpret_cast<std::uint32_t*>(dst + j * 8) =
            pack2<FP16>(acc[j][2 * half] * inv, acc[j][2 * half + 1] * inv);
    }
  }
#else
  __trap();  // built for an architecture without cp.async / bf16 mma
#endif
}

using KernelFn = void (*)(const std::uint16_t*, const std::uint16_t*, const std::uint16_t*,
                          std::uint16_t*, int, int, int, int, float);

KernelFn pick_kernel(int head_dim, bool fp16, bool causal) {
  if (head_dim == 64) {
    if (fp16) return causal ? flash_attn_fwd_kernel<64, true, true> : flash_attn_fwd_kernel<64, true, false>;
    return causal ? flash_attn_fwd_kernel<64, false, true> : flash_attn_fwd_kernel<64, false, false>;
  }
  if (fp16) return causal ? flash_attn_fwd_kernel<128, true, true> : flash_attn_fwd_kernel<128, true, false>;
  return causal ? flash_attn_fwd_kernel<128, false, true> : flash_attn_fwd_kernel<128, false, false>;
}

int smem_bytes(int head_dim) {
  return head_dim == 64 ? Geometry<64>::SMEM_BYTES : Geometry<128>::SMEM_BYTES;
}

}  // namespace

FlashAttention::FlashAttention(int device, std::int64_t batch, std::int64_t heads,
                               std::int64_t kv_heads, std::int64_t seqlen_q, std::int64_t seqlen_k,
                               std::int64_t head_dim, const std::string& dtype, bool causal,
                               double scale, std::uintptr_t q, std::uintptr_t k, std::uintptr_t v,
                               std::uintptr_t o)
    : CudaOp(device), causal_(causal), q_(q), k_(k), v_(v), o_(o) {
  // --- arguments: all checked before any CUDA call -------------------------------------
  const DType dt = parse_dtype(dtype);  // ValueError for unknown names
  if (dt != DType::bf16 && dt != DType::fp16)
    throw_value("FlashAttention supports dtype 'bf16' or 'fp16', got '" + dtype + "'");
  if (head_dim != 64 && head_dim != 128)
    throw_value("FlashAttention supports head_dim 64 or 128, got " + std::to_string(head_dim));
  // Grid y/z carry heads and batch (at most 65535); 2^30 keeps the kernel's int row and
  // key arithmetic free of overflow.
  if (batch < 1 || batch > 65535)
    throw_value("FlashAttention needs 1 <= batch <= 65535, got " + std::to_string(batch));
  if (heads < 1 || heads > 65535)
    throw_value("FlashAttention needs 1 <= heads <= 65535, got " + std::to_string(heads));
  if (kv_heads < 1 || heads % kv_heads != 0)
    throw_value("FlashAttention needs kv_heads >= 1 dividing heads, got heads=" +
                std::to_string(heads) + " kv_heads=" + std::to_string(kv_heads));
  constexpr std::int64_t kMaxSeq = std::int64_t{1} << 30;
  if (seqlen_q < 1 || seqlen_k < 1 || seqlen_q > kMaxSeq || seqlen_k > kMaxSeq)
    throw_value("FlashAttention needs 1 <= seqlen_q, seqlen_k <= 2^30, got seqlen_q=" +
                std::to_string(seqlen_q) + " seqlen_k=" + std::to_string(seqlen_k));
  if (!(std::isfinite(scale) && scale > 0.0))
    throw_value("FlashAttention needs a finite scale > 0, got " + std::to_string(scale));
  if (!q || !k || !v || !o) throw_value("FlashAttention: null pointer");
  if (q % 16 || k % 16 || v % 16 || o % 16)
    throw_value("FlashAttention: q, k, v and o must be 16-byte aligned");

  batch_ = static_cast<int>(batch);
  heads_ = static_cast<int>(heads);
  group_ = static_cast<int>(heads / kv_heads);
  seqlen_q_ = static_cast<int>(seqlen_q);
  seqlen_k_ = static_cast<int>(seqlen_k);
  head_dim_ = static_cast<int>(head_dim);
  fp16_ = dt == DType::fp16;
  scale_log2_ = static_cast<float>(scale * 1.4426950408889634);  // log2(e)
  grid_x_ = static_cast<unsigned>((seqlen_q + BM - 1) / BM);

  // --- device ---------------------------------------------------------------------------
  check_device(device);
  DeviceGuard guard(device);
  const int cc = compute_capability(device);
  if (cc < 80)
    throw_unsupported("FlashAttention needs compute capability >= 8.0, device " +
                          std::to_string(device) + " has " + std::to_string(cc / 10) + "." +
                          std::to_string(cc % 10),
                      "FlashAttention");
  const int smem = smem_bytes(head_dim_);
  int optin = 0;
  AIBENCH_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  if (optin < smem)
    throw_unsupported("FlashAttention needs " + std::to_string(smem) +
                          " bytes of shared memory per block, device allows " + std::to_string(optin),
                      "FlashAttention");
  KernelFn kernel = pick_kernel(head_dim_, fp16_, causal_);
  // Fails with cudaErrorNoKernelImageForDevice when the build lacks this architecture.
  cudaFuncAttributes attr{};
  AIBENCH_CUDA_CHECK(cudaFuncGetAttributes(&attr, kernel));
  AIBENCH_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  int blocks_per_sm = 0;
  AIBENCH_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks_per_sm, kernel, THREADS, smem));

  char buf[512];
  std::snprintf(buf, sizeof(buf),
                "FlashAttention-2 forward, mma.sync m16n8k16 %s, fp32 accumulate and softmax; "
                "batch %d, heads %d, kv_heads %d, seqlen_q %d, seqlen_k %d, head_dim %d, %s; "
                "query tile %d (%d warps x %d rows), K/V tile %d, %d-stage cp.async, %d KiB "
                "swizzled smem; %d registers, %zu bytes local, %d blocks/SM, grid %ux%dx%d",
                fp16_ ? "fp16" : "bf16", batch_, heads_, heads_ / group_, seqlen_q_, seqlen_k_,
                head_dim_, causal_ ? "causal (bottom-right)" : "not causal", BM, WARPS, WARP_ROWS,
                BN, STAGES, smem / 1024, attr.numRegs, attr.localSizeBytes, blocks_per_sm,
                grid_x_, heads_, batch_);
  describe_ = buf;
}

void FlashAttention::launch(cudaStream_t stream) {
  KernelFn kernel = pick_kernel(head_dim_, fp16_, causal_);
  const dim3 grid(grid_x_, static_cast<unsigned>(heads_), static_cast<unsigned>(batch_));
  kernel<<<grid, THREADS, smem_bytes(head_dim_), stream>>>(
      reinterpret_cast<const std::uint16_t*>(q_), reinterpret_cast<const std::uint16_t*>(k_),
      reinterpret_cast<const std::uint16_t*>(v_), reinterpret_cast<std::uint16_t*>(o_), heads_,
      group_, seqlen_q_, seqlen_k_, scale_log2_);
}

}  // namespace aibench_cuda
