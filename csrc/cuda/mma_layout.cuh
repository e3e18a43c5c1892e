// Tile geometry and shared-memory addressing of aibench's tensor-core GEMM (mma_gemm.cu).
// Kept apart, __host__ __device__, so that a host emulation (tests/cuda_emulate_mma.cu)
// can check the index arithmetic that the kernel runs.
#pragma once

#ifdef __CUDACC__
#define AIBENCH_HD __host__ __device__ __forceinline__
#else
#define AIBENCH_HD inline
#endif

namespace aibench_cuda {
namespace mma_cfg {

constexpr int BM = 128;        // block tile rows (M)
constexpr int BN = 256;        // block tile columns (N)
constexpr int BK = 32;         // k per pipeline stage
constexpr int STAGES = 4;      // cp.async pipeline depth
constexpr int WARPS_M = 2;     // warp grid inside a block
constexpr int WARPS_N = 4;
constexpr int THREADS = 32 * WARPS_M * WARPS_N;
constexpr int WM = BM / WARPS_M;  // 64: warp tile rows
constexpr int WN = BN / WARPS_N;  // 64: warp tile columns
constexpr int MI = WM / 16;       // m16 fragments per warp
constexpr int NI = WN / 8;        // n8 fragments per warp
constexpr int GROUP_M = 8;        // block rows per raster group (L2 reuse)

constexpr int A_ROW_BYTES = BK * 2;                 // 64: one A tile row (k-contiguous)
constexpr int B_ROW_BYTES = BN * 2;                 // 512: one B tile row (n-contiguous)
constexpr int A_STAGE_BYTES = BM * A_ROW_BYTES;     // 8 KiB
constexpr int B_STAGE_BYTES = BK * B_ROW_BYTES;     // 16 KiB
constexpr int STAGE_BYTES = A_STAGE_BYTES + B_STAGE_BYTES;
constexpr int SMEM_BYTES = STAGES * STAGE_BYTES;    // 96 KiB
constexpr int A_CHUNKS_PER_THREAD = BM * BK / 8 / THREADS;  // 16-byte chunks: 2
constexpr int B_CHUNKS_PER_THREAD = BK * BN / 8 / THREADS;  // 4

static_assert(A_CHUNKS_PER_THREAD * THREADS * 8 == BM * BK, "A tile must split evenly");
static_assert(B_CHUNKS_PER_THREAD * THREADS * 8 == BK * BN, "B tile must split evenly");
static_assert(BK == 32 && BN == 256, "the swizzles below assume 64-byte A rows, 512-byte B rows");

// Byte offset of 16-byte chunk `chunk` (8 elements) of A tile row `row`. A row holds 4
// chunks; XOR with bits 1-2 of the row makes the 8 rows read by one ldmatrix phase hit 8
// different bank groups.
AIBENCH_HD int a_offset(int row, int chunk) {
  return row * A_ROW_BYTES + ((chunk ^ ((row >> 1) & 3)) << 4);
}

// Byte offset of 16-byte chunk `chunk` (0..31) of B tile row `row` (a k index). XOR of the
// chunk's low 3 bits with the row's low 3 bits spreads 8 consecutive k rows over all banks.
AIBENCH_HD int b_offset(int row, int chunk) {
  return row * B_ROW_BYTES + ((chunk ^ (row & 7)) << 4);
}

// Global-to-shared copy assignment: which A/B chunk thread `tid` copies in its i-th copy.
AIBENCH_HD void a_copy_coords(int tid, int i, int& row, int& chunk) {
  int id = tid + i * THREADS;
  row = id >> 2;
  chunk = id & 3;
}
AIBENCH_HD void b_copy_coords(int tid, int i, int& row, int& chunk) {
  int id = tid + i * THREADS;
  row = id >> 5;
  chunk = id & 31;
}

// ldmatrix.x4 row addresses. A (m16 x k16 fragment mi at k offset kk): lanes 0-15 give rows
// 0-15 at k kk..kk+7, lanes 16-31 the same rows at kk+8..kk+15, so the four 8x8 matrices are
// the mma A registers a0..a3.
AIBENCH_HD int a_ldmatrix_offset(int warp_m, int mi, int kk, int lane) {
  int row = warp_m * WM + mi * 16 + (lane & 15);
  int chunk = (kk >> 3) + (lane >> 4);
  return a_offset(row, chunk);
}
// B (.trans, k16 x n16 = two n8 fragments nj*2, nj*2+1): lanes 0-7 k 0-7 / n 0-7, lanes
// 8-15 k 8-15 / n 0-7, lanes 16-23 k 0-7 / n 8-15, lanes 24-31 k 8-15 / n 8-15: registers
// b0, b1 of fragment 2*nj, then b0, b1 of fragment 2*nj+1.
AIBENCH_HD int b_ldmatrix_offset(int warp_n, int nj, int kk, int lane) {
  int row = kk + (lane & 15);
  int chunk = (warp_n * WN + nj * 16) / 8 + (lane >> 4);
  return b_offset(row, chunk);
}

// Grouped raster: consecutive blocks sweep GROUP_M block rows column by column, so blocks
// running together share A rows and B columns in L2.
AIBENCH_HD void block_coords(int pid, int grid_m, int grid_n, int& bm, int& bn) {
  int per_group = GROUP_M * grid_n;
  int group = pid / per_group;
  int first_m = group * GROUP_M;
  int rows = grid_m - first_m < GROUP_M ? grid_m - first_m : GROUP_M;
  int in_group = pid % per_group;
  bm = first_m + in_group % rows;
  bn = in_group / rows;
}

}  // namespace mma_cfg
}  // namespace aibench_cuda
