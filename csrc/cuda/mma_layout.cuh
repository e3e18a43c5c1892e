// Tile geometry and shared-memory addressing of aibench's tensor-core GEMM (mma_gemm.cu).
// Kept apart, __host__ __device__, so that a host emulation without a GPU
// can check the index arithmetic that the kernel runs: csrc/cuda/mma_layout_check.cpp.
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

// Per-thread copy plan, computed once per block: a thread's A copies are A_COPY_ROW_STRIDE
// rows apart in the same chunk column, its B copies B_COPY_ROW_STRIDE k rows apart in the
// same chunk column, so one offset per matrix plus strides addresses them all, and moving
// to the next k tile adds BK columns (A) or BK rows (B).
constexpr int A_COPY_ROW_STRIDE = THREADS / (BK / 8);  // 64
constexpr int B_COPY_ROW_STRIDE = THREADS / (BN / 8);  // 8

struct CopyPlan {
  unsigned long long a_off;  // element offset in A of the first chunk at k tile 0
  unsigned long long b_off;  // element offset in B of the first chunk at k tile 0
  int a_k;                   // k column of the A chunk inside a tile
  int a_rows_left;           // M - row of the first A chunk (the chunk i row is valid if > i*stride)
  int b_k;                   // k row of the first B chunk inside a tile
  int b_cols_left;           // N - first column of the B chunk
  int a_dst;                 // stage-relative shared offsets of the first chunks
  int b_dst;
};

AIBENCH_HD CopyPlan make_copy_plan(int tid, int M, int N, int K, int row0, int col0) {
  CopyPlan p;
  int r, c;
  a_copy_coords(tid, 0, r, c);
  p.a_k = c * 8;
  p.a_rows_left = M - (row0 + r);
  p.a_off = p.a_rows_left > 0 ? static_cast<unsigned long long>(row0 + r) * K + p.a_k : 0ull;
  p.a_dst = a_offset(r, c);
  b_copy_coords(tid, 0, r, c);
  p.b_k = r;
  p.b_cols_left = N - (col0 + c * 8);
  p.b_off = p.b_cols_left > 0 ? static_cast<unsigned long long>(r) * N + col0 + c * 8 : 0ull;
  p.b_dst = b_offset(r, c);
  return p;
}

// A copy i of k tile kt: source element offset, its k column, whether the row exists, and
// the stage-relative shared offset.
AIBENCH_HD void a_copy(const CopyPlan& p, int i, int kt, int K, unsigned long long& src, int& gk,
                       bool& row_ok, int& dst) {
  gk = kt * BK + p.a_k;
  row_ok = i * A_COPY_ROW_STRIDE < p.a_rows_left;
  src = p.a_off + static_cast<unsigned long long>(i) * A_COPY_ROW_STRIDE * K + kt * BK;
  dst = p.a_dst + i * A_COPY_ROW_STRIDE * A_ROW_BYTES;
}

// B copy i of k tile kt: source element offset, its k row, and the shared offset; the
// columns left in the row are p.b_cols_left.
AIBENCH_HD void b_copy(const CopyPlan& p, int i, int kt, int N, unsigned long long& src, int& gk,
                       int& dst) {
  gk = kt * BK + p.b_k + i * B_COPY_ROW_STRIDE;
  src = p.b_off + static_cast<unsigned long long>(kt * BK + i * B_COPY_ROW_STRIDE) * N;
  dst = p.b_dst + i * B_COPY_ROW_STRIDE * B_ROW_BYTES;
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
