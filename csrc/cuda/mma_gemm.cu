// aibench's tensor-core GEMM for bf16/fp16 (Ampere-style, runs on sm_80 and later).
//
// Block tile 128x256, 8 warps as 2x4, each warp 64x64 (4 m16 x 8 n8 mma fragments, 128
// fp32 accumulators per thread). k advances 32 at a time through a 4-stage cp.async
// pipeline in XOR-swizzled shared memory; ldmatrix (A plain, B .trans since B rows are
// n-contiguous) feeds mma.sync.m16n8k16. Edges: the cp.async path zero-fills chunks outside
// the matrix (src-size 0); shapes whose rows are not 16-byte aligned use the generic path,
// which fills the same shared tiles with guarded element loads.
//
// Dispatch (MmaGemm's constructor): on compute capability 9.0, with a module built for sm_90a
// and 16-byte rows and pointers (k, n multiples of 8), the Hopper kernel of wgmma_gemm.cu
// (TMA + wgmma, same 128x256 tiles and grid) runs instead; variant "mma_sync" / "wgmma" (or
// AIBENCH_MMA_GEMM_VARIANT) forces one. describe() names the kernel that runs.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <climits>
#include <cstdio>
#include <cstdlib>

#include "cuda/check.cuh"
#include "cuda/mma_gemm.cuh"
#include "cuda/mma_layout.cuh"
#include "cuda/ptx.cuh"
#include "cuda/wgmma_gemm.cuh"

namespace aibench_cuda {
namespace {

using namespace mma_cfg;

template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}
__device__ __forceinline__ void st_shared_16(std::uint32_t dst, std::uint32_t x, std::uint32_t y,
                                             std::uint32_t z, std::uint32_t w) {
  asm volatile("st.shared.v4.u32 [%0], {%1, %2, %3, %4};\n" ::"r"(dst), "r"(x), "r"(y), "r"(z),
               "r"(w)
               : "memory");
}

// Eight 16-bit elements starting at src[col], zero where col + e >= limit (or !row_ok).
__device__ __forceinline__ void load_guarded_8(const std::uint16_t* __restrict__ src, int col,
                                               int limit, bool row_ok, std::uint32_t (&v)[4]) {
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    std::uint32_t lo = (row_ok && col + 2 * e < limit) ? src[2 * e] : 0u;
    std::uint32_t hi = (row_ok && col + 2 * e + 1 < limit) ? src[2 * e + 1] : 0u;
    v[e] = lo | (hi << 16);
  }
}

// Copies k tile `kt` of A (BM x BK) and B (BK x BN) into the stage at shared address `stage`.
template <bool ALIGNED>
__device__ __forceinline__ void load_tile(std::uint32_t stage, int kt, const CopyPlan& plan,
                                          const std::uint16_t* __restrict__ A,
                                          const std::uint16_t* __restrict__ B, int N, int K) {
#pragma unroll
  for (int i = 0; i < A_CHUNKS_PER_THREAD; ++i) {
    unsigned long long src;
    int gk, dst;
    bool row_ok;
    a_copy(plan, i, kt, K, src, gk, row_ok, dst);
    if constexpr (ALIGNED) {
      const bool ok = row_ok && gk < K;  // K % 8 == 0: a chunk is all in or all out
      cp_async_16(stage + dst, ok ? A + src : A, ok);
    } else {
      std::uint32_t v[4];
      load_guarded_8(row_ok ? A + src : A, gk, K, row_ok, v);
      st_shared_16(stage + dst, v[0], v[1], v[2], v[3]);
    }
  }
#pragma unroll
  for (int i = 0; i < B_CHUNKS_PER_THREAD; ++i) {
    unsigned long long src;
    int gk, dst;
    b_copy(plan, i, kt, N, src, gk, dst);
    const bool row_ok = gk < K && plan.b_cols_left > 0;
    if constexpr (ALIGNED) {
      cp_async_16(stage + A_STAGE_BYTES + dst, row_ok ? B + src : B, row_ok);  // N % 8 == 0
    } else {
      std::uint32_t v[4];
      load_guarded_8(row_ok ? B + src : B, 0, plan.b_cols_left, row_ok, v);
      st_shared_16(stage + A_STAGE_BYTES + dst, v[0], v[1], v[2], v[3]);
    }
  }
}

template <bool FP16, bool ALIGNED>
__global__ void __launch_bounds__(THREADS, 1)
    mma_gemm_kernel(const std::uint16_t* __restrict__ A, const std::uint16_t* __restrict__ B,
                    void* __restrict__ C, int M, int N, int K, bool c_pairs) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  extern __shared__ __align__(128) unsigned char smem_raw[];
  const std::uint32_t smem = static_cast<std::uint32_t>(__cvta_generic_to_shared(smem_raw));
  const int tid = threadIdx.x;
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int warp_m = warp / WARPS_N;
  const int warp_n = warp % WARPS_N;

  const int grid_m = (M + BM - 1) / BM;
  const int grid_n = (N + BN - 1) / BN;
  int bm, bn;
  block_coords(blockIdx.x, grid_m, grid_n, bm, bn);
  const int row0 = bm * BM;
  const int col0 = bn * BN;
  const int ktiles = (K + BK - 1) / BK;
  const CopyPlan plan = make_copy_plan(tid, M, N, K, row0, col0);

  float acc[MI][NI][4];
#pragma unroll
  for (int i = 0; i < MI; ++i)
#pragma unroll
    for (int j = 0; j < NI; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;

  // Prologue: STAGES-1 tiles in flight. One commit group per tile, empty ones included,
  // so that wait_group<STAGES-2> below always means "tile kt has landed".
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < ktiles) load_tile<ALIGNED>(smem + s * STAGE_BYTES, s, plan, A, B, N, K);
    cp_async_commit();
  }

  for (int kt = 0; kt < ktiles; ++kt) {
    cp_async_wait<STAGES - 2>();
    __syncthreads();  // tile kt visible to all; everyone is done with tile kt-1's stage
    const int next = kt + STAGES - 1;
    if (next < ktiles)
      load_tile<ALIGNED>(smem + (next % STAGES) * STAGE_BYTES, next, plan, A, B, N, K);
    cp_async_commit();

    const std::uint32_t sa = smem + (kt % STAGES) * STAGE_BYTES;
    const std::uint32_t sb = sa + A_STAGE_BYTES;
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
      std::uint32_t af[MI][4];
      std::uint32_t bf[NI / 2][4];
#pragma unroll
      for (int i = 0; i < MI; ++i) ldmatrix_x4(af[i], sa + a_ldmatrix_offset(warp_m, i, kk, lane));
#pragma unroll
      for (int j = 0; j < NI / 2; ++j)
        ldmatrix_x4_trans(bf[j], sb + b_ldmatrix_offset(warp_n, j, kk, lane));
#pragma unroll
      for (int i = 0; i < MI; ++i)
#pragma unroll
        for (int j = 0; j < NI; ++j)
          mma_16816<FP16>(acc[i][j], af[i], bf[j / 2][(j % 2) * 2], bf[j / 2][(j % 2) * 2 + 1]);
    }
  }
  cp_async_wait<0>();

  // Accumulator d0,d1: row lane/4, columns 2*(lane%4)+{0,1}; d2,d3: the same 8 rows below.
  const int g = lane >> 2;
  const int t2 = (lane & 3) * 2;
#pragma unroll
  for (int i = 0; i < MI; ++i) {
#pragma unroll
    for (int j = 0; j < NI; ++j) {
      const int row = row0 + warp_m * WM + i * 16 + g;
      const int col = col0 + warp_n * WN + j * 8 + t2;
      store_pair<FP16>(C, M, N, row, col, acc[i][j][0], acc[i][j][1], c_pairs);
      store_pair<FP16>(C, M, N, row + 8, col, acc[i][j][2], acc[i][j][3], c_pairs);
    }
  }
#else
  __trap();  // built for an architecture without cp.async / bf16 mma
#endif
}

using KernelFn = void (*)(const std::uint16_t*, const std::uint16_t*, void*, int, int, int, bool);

KernelFn pick_kernel(bool fp16, bool aligned) {
  if (fp16) return aligned ? mma_gemm_kernel<true, true> : mma_gemm_kernel<true, false>;
  return aligned ? mma_gemm_kernel<false, true> : mma_gemm_kernel<false, false>;
}

}  // namespace

MmaGemm::MmaGemm(int device, std::int64_t m, std::int64_t n, std::int64_t k,
                 const std::string& dtype, std::uintptr_t a, std::uintptr_t b, std::uintptr_t c,
                 const std::string& variant)
    : CudaOp(device), a_(a), b_(b), c_(c) {
  std::string chosen = variant;
  const char* env_variant = std::getenv("AIBENCH_MMA_GEMM_VARIANT");
  const bool from_env = chosen == "auto" && env_variant != nullptr && *env_variant != '\0';
  if (from_env) chosen = env_variant;
  if (chosen != "auto" && chosen != "mma_sync" && chosen != "wgmma")
    throw_value("MmaGemm variant must be 'auto', 'mma_sync' or 'wgmma', got '" + chosen + "'" +
                (from_env ? " (from AIBENCH_MMA_GEMM_VARIANT)" : ""));
  const std::string variant_note =
      from_env ? " (variant " + chosen + " from AIBENCH_MMA_GEMM_VARIANT)" : "";
  const DType dt = parse_dtype(dtype);
  if (dt != DType::bf16 && dt != DType::fp16)
    throw_value("MmaGemm supports dtype 'bf16' or 'fp16', got '" + dtype + "'");
  // 2^30 keeps every int index in the kernel (tile rounding, k offsets) free of overflow.
  constexpr std::int64_t kMaxDim = std::int64_t{1} << 30;
  if (m < 1 || n < 1 || k < 1 || m > kMaxDim || n > kMaxDim || k > kMaxDim)
    throw_value("MmaGemm needs 1 <= m, n, k <= 2^30, got m=" + std::to_string(m) +
                " n=" + std::to_string(n) + " k=" + std::to_string(k));
  const std::int64_t blocks = ((m + BM - 1) / BM) * ((n + BN - 1) / BN);
  if (blocks > INT_MAX) throw_value("MmaGemm: matrix too large for one grid");
  if (!a || !b || !c) throw_value("MmaGemm: null pointer");
  if (a % 2 || b % 2 || c % 2) throw_value("MmaGemm: pointers must be 2-byte aligned");
  m_ = static_cast<int>(m);
  n_ = static_cast<int>(n);
  k_ = static_cast<int>(k);
  fp16_ = dt == DType::fp16;
  aligned_ = k % 8 == 0 && n % 8 == 0 && a % 16 == 0 && b % 16 == 0;
  c_pairs_ = n % 2 == 0 && c % 4 == 0;
  grid_ = static_cast<unsigned>(blocks);
  if (chosen == "wgmma" && !aligned_)
    throw_value("MmaGemm variant 'wgmma' needs k and n multiples of 8 and 16-byte aligned A and "
                "B pointers" + variant_note);

  check_device(device);
  DeviceGuard guard(device);
  const int cc = compute_capability(device);
  if (cc < 80)
    throw_unsupported("MmaGemm needs compute capability >= 8.0, device " + std::to_string(device) +
                          " has " + std::to_string(cc / 10) + "." + std::to_string(cc % 10),
                      "MmaGemm");
  int optin = 0;
  AIBENCH_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  if (optin < SMEM_BYTES)
    throw_unsupported("MmaGemm needs " + std::to_string(SMEM_BYTES) +
                          " bytes of shared memory per block, device allows " +
                          std::to_string(optin),
                      "MmaGemm");

  // Hopper: the wgmma + TMA kernel where it can run (wgmma_gemm.cu), unless told otherwise.
  std::string wgmma_not_used;
  if (chosen != "mma_sync") {
    wgmma_not_used = aligned_ ? wgmma_gemm_unavailable_reason(device)
                              : "k, n not multiples of 8 or A, B not 16-byte aligned";
    if (wgmma_not_used.empty()) {
      wgmma_ = std::make_unique<WgmmaGemm>(m_, n_, k_, fp16_, a, b, c, c_pairs_, grid_);
      describe_ = wgmma_->describe() + variant_note;
      return;
    }
    if (chosen == "wgmma")
      throw_unsupported("MmaGemm variant 'wgmma' cannot run: " + wgmma_not_used + variant_note,
                        "MmaGemm");
  }

  KernelFn kernel = pick_kernel(fp16_, aligned_);
  // Fails with cudaErrorNoKernelImageForDevice when the build lacks this architecture.
  cudaFuncAttributes attr{};
  AIBENCH_CUDA_CHECK(cudaFuncGetAttributes(&attr, kernel));
  AIBENCH_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, SMEM_BYTES));

  char buf[400];
  std::snprintf(buf, sizeof(buf),
                "mma.sync m16n8k16 %s, fp32 accumulate; block %dx%dx%d, %d warps (%dx%d) of "
                "%dx%d, %d-stage pipeline, %d KiB swizzled smem; %s; %d registers, %zu bytes "
                "local, %d blocks",
                fp16_ ? "fp16" : "bf16", BM, BN, BK, THREADS / 32, WARPS_M, WARPS_N, WM, WN,
                STAGES, SMEM_BYTES / 1024,
                aligned_ ? "cp.async 16B zero-fill loads" : "generic guarded loads (unaligned rows)",
                attr.numRegs, attr.localSizeBytes, static_cast<int>(grid_));
  describe_ = buf;
  describe_ += chosen == "mma_sync" ? "; variant mma_sync" + variant_note
                                    : "; auto: wgmma not used (" + wgmma_not_used + ")";
}

MmaGemm::~MmaGemm() = default;

void MmaGemm::launch(cudaStream_t stream) {
  if (wgmma_) {
    wgmma_->launch(stream);
    return;
  }
  KernelFn kernel = pick_kernel(fp16_, aligned_);
  kernel<<<grid_, THREADS, SMEM_BYTES, stream>>>(reinterpret_cast<const std::uint16_t*>(a_),
                                                 reinterpret_cast<const std::uint16_t*>(b_),
                                                 reinterpret_cast<void*>(c_), m_, n_, k_, c_pairs_);
}

}  // namespace aibench_cuda
