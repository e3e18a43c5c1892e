// aibench's Hopper GEMM: warp-specialised wgmma + TMA, the sm_90a path of MmaGemm.
//
// Row-major C(m,n) = A(m,k) * B(k,n), bf16/fp16 in and out, fp32 accumulation.
// Block tile 128x256, k 64 per stage, 4 stages (48 KiB each), 384 threads = 3 warpgroups:
//   warpgroup 0 (producer, 40 registers after setmaxnreg): one thread issues the TMA loads
//     (cp.async.bulk.tensor.2d) of each stage -- A as one 64x128 box (k-contiguous rows of
//     128 bytes), B as four 64x64 boxes (n-contiguous rows of 128 bytes) -- into 128-byte
//     swizzled shared memory, completing on the stage's "full" mbarrier (expect_tx).
//   warpgroups 1, 2 (consumers, 232 registers): each owns 64 rows of the tile and issues
//     four wgmma.mma_async.m64n256k16 per stage (A K-major, B MN-major i.e. transposed,
//     both from shared memory through 128B-swizzle descriptors), keeps one stage's wgmma
//     group in flight (wait_group 1) and then releases the previous stage on its "empty"
//     mbarrier (every consumer thread arrives: count 256).
// Edges: TMA zero-fills the parts of a box outside the matrix (m, n and k tails), the
// epilogue stores from the accumulator registers with bounds checks. The grid and the
// block order are MmaGemm's (same 128x256 tiles, grouped raster).
// Every mbarrier wait gives up with __trap() after ~2^34 clock cycles (seconds) so that a
// broken pipeline fails loudly instead of hanging.
//
// The kernel body exists only in the sm_90a compilation (__CUDA_ARCH_FEAT_SM90_ALL); the
// host code uses it only when CMake defined AIBENCH_HAVE_SM90A, the device is compute
// capability 9.0, and a probe kernel from this same file reports that the driver loaded the
// sm_90a code for the device.
#include <cuda.h>  // CUtensorMap and its enums only: the driver entry point comes at run time
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cudaTypedefs.h>

#include <cstdio>
#include <map>
#include <mutex>

#include "cuda/check.cuh"
#include "cuda/mma_layout.cuh"  // block_coords: the same grouped raster as MmaGemm
#include "cuda/ptx.cuh"
#include "cuda/wgmma_gemm.cuh"

namespace aibench_cuda {

struct WgmmaGemm::Maps {
  CUtensorMap a;
  CUtensorMap b;
};

namespace {

using namespace wgmma_cfg;

constexpr int CONSUMER_THREADS = 128 * CONSUMERS;
constexpr int PRODUCER_REGS = 40;
constexpr int CONSUMER_REGS = 232;
static_assert(128 * PRODUCER_REGS + CONSUMER_THREADS * CONSUMER_REGS <= 65536,
              "setmaxnreg budgets exceed the register file");
static_assert(BM == 64 * CONSUMERS, "each consumer warpgroup owns 64 rows");
static_assert(BM == mma_cfg::BM && BN == mma_cfg::BN,
              "MmaGemm sizes the grid and orders the blocks with its own tile shape");

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define AIBENCH_WGMMA_DEVICE 1
#endif

#ifdef AIBENCH_WGMMA_DEVICE

__device__ __forceinline__ std::uint32_t smem_u32(const void* p) {
  return static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void mbar_init(std::uint32_t bar, std::uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_arrive_expect_tx(std::uint32_t bar, std::uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void mbar_arrive(std::uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ bool mbar_try_wait(std::uint32_t bar, std::uint32_t parity) {
  std::uint32_t done;
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
      "selp.u32 %0, 1, 0, p;\n"
      "}\n"
      : "=r"(done)
      : "r"(bar), "r"(parity)
      : "memory");
  return done != 0;
}
// Waits until the phase with this parity has completed; traps after ~2^34 cycles.
__device__ __forceinline__ void mbar_wait(std::uint32_t bar, std::uint32_t parity) {
  if (mbar_try_wait(bar, parity)) return;
  const long long start = clock64();
  while (!mbar_try_wait(bar, parity)) {
    if (clock64() - start > (1ll << 34)) __trap();
  }
}

// 2-D TMA load of the box at (c0 = innermost coordinate, c1) into shared memory at dst,
// completing `bytes` of transactions on bar. Out-of-bounds elements are written as zero.
__device__ __forceinline__ void tma_load_2d(std::uint32_t dst, const CUtensorMap* map, int c0,
                                            int c1, std::uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%2, %3}], [%4];\n" ::"r"(dst),
      "l"(reinterpret_cast<std::uint64_t>(map)), "r"(c0), "r"(c1), "r"(bar)
      : "memory");
}

// wgmma shared-memory matrix descriptor, 128-byte swizzle (layout type 1 in bits 62-63).
// Start address, leading and stride byte offsets are in 16-byte units (14 bits each).
__device__ __forceinline__ std::uint64_t sw128_desc(std::uint32_t addr, std::uint32_t lbo_bytes,
                                                    std::uint32_t sbo_bytes) {
  return static_cast<std::uint64_t>((addr >> 4) & 0x3FFF) |
         (static_cast<std::uint64_t>((lbo_bytes >> 4) & 0x3FFF) << 16) |
         (static_cast<std::uint64_t>((sbo_bytes >> 4) & 0x3FFF) << 32) |
         (std::uint64_t{1} << 62);
}

__device__ __forceinline__ void wgmma_fence() {
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void wgmma_commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// Keeps the compiler from moving accumulator reads/writes across wgmma fences and waits.
__device__ __forceinline__ void fence_operand(float& r) { asm volatile("" : "+f"(r)::"memory"); }

// d(64x256, fp32) += A(64x16, K-major, from desc_a) * B(16x256, MN-major, from desc_b).
// Operands after the descriptors: scale-d (predicate p = 1: accumulate), scale-a = 1,
// scale-b = 1, transpose-a = 0 (A is K-major), transpose-b = 1 (B is MN-major).
template <bool FP16>
__device__ __forceinline__ void wgmma_m64n256k16(float (&d)[128], std::uint64_t desc_a,
                                                 std::uint64_t desc_b) {
  if constexpr (FP16) {
    asm volatile(
        "{\n"
        ".reg .pred p;\n"
        "setp.ne.b32 p, %130, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n256k16.f32.f16.f16\n"
        "{"
        "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
        "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
        "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, "
        "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, "
        "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, "
        "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, "
        "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127"
        "},\n"
        " %128, %129, p, 1, 1, 0, 1;\n"
        "}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
          "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
          "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
          "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
          "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]),
          "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]),
          "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]),
          "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]),
          "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]),
          "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]),
          "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]),
          "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]),
          "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
        : "l"(desc_a), "l"(desc_b), "r"(1)
        : "memory");
  } else {
    asm volatile(
        "{\n"
        ".reg .pred p;\n"
        "setp.ne.b32 p, %130, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16\n"
        "{"
        "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
        "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
        "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, "
        "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, "
        "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, "
        "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, "
        "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127"
        "},\n"
        " %128, %129, p, 1, 1, 0, 1;\n"
        "}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
          "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
          "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
          "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
          "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]),
          "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]),
          "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]),
          "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]),
          "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]),
          "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]),
          "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]),
          "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]),
          "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
        : "l"(desc_a), "l"(desc_b), "r"(1)
        : "memory");
  }
}

#endif  // AIBENCH_WGMMA_DEVICE

template <bool FP16>
__global__ void __launch_bounds__(THREADS, 1)
    wgmma_gemm_kernel(const __grid_constant__ CUtensorMap map_a,
                      const __grid_constant__ CUtensorMap map_b, void* __restrict__ C, int M,
                      int N, int K, bool c_pairs) {
#ifdef AIBENCH_WGMMA_DEVICE
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  __shared__ __align__(8) std::uint64_t full_bar[STAGES];
  __shared__ __align__(8) std::uint64_t empty_bar[STAGES];

  // 128B-swizzle atoms must start on 1024-byte boundaries (TMA writes and the wgmma
  // descriptors both assume it): round the dynamic buffer up (SMEM_BYTES has the slack).
  const std::uint32_t smem = (smem_u32(smem_raw) + 1023u) & ~1023u;

  const int grid_m = (M + BM - 1) / BM;
  const int grid_n = (N + BN - 1) / BN;
  int bm, bn;
  mma_cfg::block_coords(blockIdx.x, grid_m, grid_n, bm, bn);
  const int row0 = bm * BM;
  const int col0 = bn * BN;
  const int ktiles = (K + BK - 1) / BK;

  if (threadIdx.x == 0) {
#pragma unroll
    for (int s = 0; s < STAGES; ++s) {
      mbar_init(smem_u32(&full_bar[s]), 1);
      mbar_init(smem_u32(&empty_bar[s]), CONSUMER_THREADS);
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();

  const int wg = threadIdx.x / 128;
  if (wg == 0) {
    // Producer warpgroup: give registers to the consumers, then one thread streams tiles.
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(PRODUCER_REGS));
    if (threadIdx.x == 0) {
      for (int kt = 0; kt < ktiles; ++kt) {
        const int s = kt % STAGES;
        const int round = kt / STAGES;
        // Stage s was last used for tile kt - STAGES: wait until every consumer released it
        // (phase round-1 of its empty barrier completed).
        if (round > 0) mbar_wait(smem_u32(&empty_bar[s]), (round - 1) & 1);
        const std::uint32_t full = smem_u32(&full_bar[s]);
        const std::uint32_t sa = smem + s * STAGE_BYTES;
        const std::uint32_t sb = sa + A_STAGE_BYTES;
        // Full boxes are always credited, out-of-bounds parts included (written as zeros).
        mbar_arrive_expect_tx(full, STAGE_BYTES);
        tma_load_2d(sa, &map_a, kt * BK, row0, full);
#pragma unroll
        for (int j = 0; j < BN / B_BOX_N; ++j)
          tma_load_2d(sb + j * B_BOX_BYTES, &map_b, col0 + j * B_BOX_N, kt * BK, full);
      }
    }
  } else {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(CONSUMER_REGS));
    const int cw = wg - 1;  // consumer index: rows cw*64 .. cw*64+63 of the tile
    float acc[128];
#pragma unroll
    for (int i = 0; i < 128; ++i) acc[i] = 0.0f;

    for (int kt = 0; kt < ktiles; ++kt) {
      const int s = kt % STAGES;
      mbar_wait(smem_u32(&full_bar[s]), (kt / STAGES) & 1);
      const std::uint32_t sa = smem + s * STAGE_BYTES + cw * (64 * BK * 2);
      const std::uint32_t sb = smem + s * STAGE_BYTES + A_STAGE_BYTES;
#pragma unroll
      for (int i = 0; i < 128; ++i) fence_operand(acc[i]);
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < BK / 16; ++kk) {
        // A, K-major: rows of 128 bytes, 8-row groups 1024 bytes apart (SBO); a k16 step is
        // 32 bytes along the row (the hardware applies the swizzle to the final address).
        // LBO is unused for swizzled K-major layouts (set to 16 bytes, as CUTLASS does).
        const std::uint64_t da = sw128_desc(sa + kk * 32, 16, 1024);
        // B, MN-major: 64-column boxes 8 KiB apart (LBO), 8-k-row groups 1024 bytes apart
        // (SBO); a k16 step is 16 rows of 128 bytes.
        const std::uint64_t db = sw128_desc(sb + kk * 16 * 128, B_BOX_BYTES, 1024);
        wgmma_m64n256k16<FP16>(acc, da, db);
      }
      wgmma_commit();
#pragma unroll
      for (int i = 0; i < 128; ++i) fence_operand(acc[i]);
      // At most this stage's group still in flight: the previous stage has been read.
      wgmma_wait<1>();
      if (kt > 0) mbar_arrive(smem_u32(&empty_bar[(kt - 1) % STAGES]));
    }
    wgmma_wait<0>();
#pragma unroll
    for (int i = 0; i < 128; ++i) fence_operand(acc[i]);

    // Accumulator layout of m64nNk16 (per warp w of the warpgroup, lane l): register i holds
    // row 16w + 8*((i>>1)&1) + l/4, column 8*(i>>2) + 2*(l%4) + (i&1).
    const int t = threadIdx.x % 128;
    const int warp = t / 32;
    const int lane = t % 32;
    const int row = row0 + cw * 64 + warp * 16 + lane / 4;
    const int col = col0 + 2 * (lane % 4);
#pragma unroll
    for (int j = 0; j < 32; ++j) {
      store_pair<FP16>(C, M, N, row, col + 8 * j, acc[4 * j], acc[4 * j + 1], c_pairs);
      store_pair<FP16>(C, M, N, row + 8, col + 8 * j, acc[4 * j + 2], acc[4 * j + 3], c_pairs);
    }
  }
#else
  __trap();  // not sm_90a code: the host never launches this (see wgmma_gemm_unavailable_reason)
#endif
}

// Writes 1 when the code the driver loaded for this device is the sm_90a compilation.
__global__ void wgmma_probe_kernel(int* out) {
#ifdef AIBENCH_WGMMA_DEVICE
  *out = 1;
#else
  *out = 0;
#endif
}

__device__ int g_wgmma_probe;

using KernelFn = void (*)(CUtensorMap, CUtensorMap, void*, int, int, int, bool);

KernelFn pick_kernel(bool fp16) { return fp16 ? wgmma_gemm_kernel<true> : wgmma_gemm_kernel<false>; }

PFN_cuTensorMapEncodeTiled_v12000 encode_tiled_fn() {
  static std::mutex mutex;
  static PFN_cuTensorMapEncodeTiled_v12000 fn = nullptr;
  std::lock_guard<std::mutex> lock(mutex);
  if (fn) return fn;
  void* p = nullptr;
  cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
  AIBENCH_CUDA_CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000,
                                                      cudaEnableDefault, &found));
  if (found != cudaDriverEntryPointSuccess || p == nullptr)
    throw_unsupported("the driver has no cuTensorMapEncodeTiled", "WgmmaGemm");
  fn = reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(p);
  return fn;
}

// Row-major rows x cols matrix of 16-bit elements at ptr; boxes of box_cols x box_rows,
// 128-byte swizzle, out-of-bounds elements read as zero.
void encode_map(CUtensorMap* map, bool fp16, std::uintptr_t ptr, std::uint64_t rows,
                std::uint64_t cols, std::uint32_t box_cols, std::uint32_t box_rows,
                const char* what) {
  const cuuint64_t dims[2] = {cols, rows};
  const cuuint64_t strides[1] = {cols * 2};  // bytes between rows (multiple of 16: cols % 8 == 0)
  const cuuint32_t box[2] = {box_cols, box_rows};
  const cuuint32_t elem_strides[2] = {1, 1};
  const CUresult r = encode_tiled_fn()(
      map, fp16 ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16 : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2,
      reinterpret_cast<void*>(ptr), dims, strides, box, elem_strides,
      CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
      CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS)
    throw CudaError("CUresult " + std::to_string(static_cast<int>(r)) +
                    ": cuTensorMapEncodeTiled failed for " + what + " (in WgmmaGemm)");
}

}  // namespace

bool wgmma_gemm_built() {
#ifdef AIBENCH_HAVE_SM90A
  return true;
#else
  return false;
#endif
}

std::string wgmma_gemm_unavailable_reason(int device) {
  if (!wgmma_gemm_built())
    return "module built without sm_90a code (add 90a to AIBENCH_CUDA_ARCHITECTURES)";
  const int cc = compute_capability(device);
  if (cc != 90)
    return "sm_90a code needs compute capability 9.0, device has " + std::to_string(cc / 10) +
           "." + std::to_string(cc % 10);
  int optin = 0;
  AIBENCH_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  if (optin < SMEM_BYTES + 1024)  // + the static part (barriers, padded to the 1024 alignment)
    return "needs " + std::to_string(SMEM_BYTES + 1024) + " bytes of shared memory per block, device allows " +
           std::to_string(optin);

  // Which code did the driver load for this device? Once per device and process.
  static std::mutex mutex;
  static std::map<int, std::string> probed;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = probed.find(device);
  if (it != probed.end()) return it->second;
  std::string reason;
  int* flag = nullptr;
  AIBENCH_CUDA_CHECK(cudaGetSymbolAddress(reinterpret_cast<void**>(&flag), g_wgmma_probe));
  AIBENCH_CUDA_CHECK(cudaMemset(flag, 0xff, sizeof(int)));
  wgmma_probe_kernel<<<1, 1>>>(flag);
  const cudaError_t launched = cudaGetLastError();
  if (launched != cudaSuccess) {
    reason = std::string("probe kernel failed to launch: ") + cudaGetErrorName(launched);
  } else {
    int value = -1;
    AIBENCH_CUDA_CHECK(cudaMemcpy(&value, flag, sizeof(int), cudaMemcpyDeviceToHost));
    if (value == 0)
      reason = "the driver loaded code other than sm_90a for this device";
    else if (value != 1)
      reason = "probe kernel did not run (flag " + std::to_string(value) + ")";
  }
  if (reason.empty()) {
    try {
      (void)encode_tiled_fn();
    } catch (const CudaError& e) {
      reason = e.what();
    }
  }
  probed[device] = reason;
  return reason;
}

WgmmaGemm::WgmmaGemm(int m, int n, int k, bool fp16, std::uintptr_t a, std::uintptr_t b,
                     std::uintptr_t c, bool c_pairs, unsigned grid)
    : maps_(new Maps{}), m_(m), n_(n), k_(k), fp16_(fp16), c_pairs_(c_pairs), grid_(grid), c_(c) {
  if (k % 8 || n % 8 || a % 16 || b % 16)
    throw_value("WgmmaGemm needs k and n multiples of 8 and 16-byte aligned A and B");
  encode_map(&maps_->a, fp16, a, static_cast<std::uint64_t>(m), static_cast<std::uint64_t>(k),
             BK, BM, "A");
  encode_map(&maps_->b, fp16, b, static_cast<std::uint64_t>(k), static_cast<std::uint64_t>(n),
             B_BOX_N, BK, "B");
  KernelFn kernel = pick_kernel(fp16_);
  cudaFuncAttributes attr{};
  AIBENCH_CUDA_CHECK(cudaFuncGetAttributes(&attr, kernel));
  AIBENCH_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, SMEM_BYTES));
  char buf[400];
  std::snprintf(buf, sizeof(buf),
                "wgmma m64n256k16 %s (sm_90a), fp32 accumulate; block %dx%dx%d, 1 producer + %d "
                "consumer warpgroups, %d-stage TMA + mbarrier pipeline, 128B-swizzled smem "
                "(%d KiB); TMA zero-fill edges; %d registers at entry (setmaxnreg %d/%d), %zu "
                "bytes local, %d blocks",
                fp16_ ? "fp16" : "bf16", BM, BN, BK, CONSUMERS, STAGES, SMEM_BYTES / 1024,
                attr.numRegs, PRODUCER_REGS, CONSUMER_REGS, attr.localSizeBytes,
                static_cast<int>(grid_));
  describe_ = buf;
}

WgmmaGemm::~WgmmaGemm() = default;

void WgmmaGemm::launch(cudaStream_t stream) {
  KernelFn kernel = pick_kernel(fp16_);
  kernel<<<grid_, THREADS, SMEM_BYTES, stream>>>(maps_->a, maps_->b, reinterpret_cast<void*>(c_),
                                                 m_, n_, k_, c_pairs_);
}

}  // namespace aibench_cuda
