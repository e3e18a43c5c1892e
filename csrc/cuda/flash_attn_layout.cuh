// Tile geometry, shared-memory addressing, fragment maps and masking rules of aibench's
// FlashAttention-2 forward kernel (flash_attn.cu). Kept apart, __host__ __device__ and free
// of CUDA headers, so that the host emulation csrc/cuda/flash_attn_check.cpp runs the very
// index arithmetic the kernel runs, on a machine without a GPU.
#pragma once

#ifdef __CUDACC__
#define AIBENCH_FA_HD __host__ __device__ __forceinline__
#else
#define AIBENCH_FA_HD inline
#endif

namespace aibench_cuda {
namespace fa_cfg {

constexpr int BM = 128;              // query rows per thread block
constexpr int BN = 64;               // keys per K/V tile
constexpr int WARP_ROWS = 16;        // query rows per warp (one m16 fragment)
constexpr int WARPS = BM / WARP_ROWS;  // 8
constexpr int THREADS = 32 * WARPS;    // 256
constexpr int STAGES = 2;            // K/V double buffer
constexpr int SN = BN / 8;           // n8 fragments of one S tile row block (8)
constexpr int PK = BN / 16;          // k16 steps of P.V (4)

// Per head dimension D (64 or 128): every Q/K/V/O row is D bf16/fp16 values, 2*D bytes,
// D/8 16-byte chunks.
template <int D>
struct Geometry {
  static_assert(D == 64 || D == 128, "head_dim must be 64 or 128");
  static constexpr int CHUNKS = D / 8;                  // 16-byte chunks per row
  static constexpr int ROW_BYTES = D * 2;               // 128 or 256
  static constexpr int Q_BYTES = BM * ROW_BYTES;        // 16 or 32 KiB
  static constexpr int KV_TILE_BYTES = BN * ROW_BYTES;  // 8 or 16 KiB
  static constexpr int K_OFFSET = Q_BYTES;              // K stage s: K_OFFSET + s*KV_TILE_BYTES
  static constexpr int V_OFFSET = Q_BYTES + STAGES * KV_TILE_BYTES;
  static constexpr int SMEM_BYTES = Q_BYTES + 2 * STAGES * KV_TILE_BYTES;  // 48 or 96 KiB
  static constexpr int COPY_ROW_STRIDE = THREADS / CHUNKS;  // rows between a thread's copies
  static constexpr int Q_COPIES = BM / COPY_ROW_STRIDE;     // 16-byte copies per thread
  static constexpr int KV_COPIES = BN / COPY_ROW_STRIDE;
  static constexpr int KD = D / 16;  // k16 steps of Q.K^T (Q A fragments per warp)
  static constexpr int ON = D / 8;   // n8 fragments of the O accumulator
  static_assert(THREADS % CHUNKS == 0, "a thread keeps one chunk column");
  static_assert(Q_COPIES * COPY_ROW_STRIDE == BM && KV_COPIES * COPY_ROW_STRIDE == BN,
                "tiles must split evenly over the threads");
};

// Byte offset of 16-byte chunk `chunk` of row `row` in a Q, K or V tile. XOR of the chunk's
// low 3 bits with the row's low 3 bits: the 8 rows that one ldmatrix phase reads (8
// consecutive rows, same logical chunk) land in 8 different 16-byte bank groups, and so do
// 8 consecutive chunks of one row (the cp.async stores of 8 consecutive threads).
AIBENCH_FA_HD int tile_offset(int row, int chunk, int row_bytes) {
  return row * row_bytes + ((chunk ^ (row & 7)) << 4);
}

// Global-to-shared copies: copy i of thread tid moves chunk `chunk` of tile row `row`.
// The chunk column is the same for all of a thread's copies; rows step by COPY_ROW_STRIDE.
template <int D>
AIBENCH_FA_HD void copy_coords(int tid, int i, int& row, int& chunk) {
  chunk = tid % Geometry<D>::CHUNKS;
  row = tid / Geometry<D>::CHUNKS + i * Geometry<D>::COPY_ROW_STRIDE;
}

// ldmatrix.x4 row addresses (byte offsets inside a tile), lane l giving row l%8 of matrix l/8.
// Q (A operand, m16 x k16 at head-dim step kd, rows of warp w): matrices (rows 0-7, k 0-7),
// (rows 8-15, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 8-15) = registers a0..a3.
template <int D>
AIBENCH_FA_HD int q_ldmatrix_offset(int warp, int kd, int lane) {
  const int row = warp * WARP_ROWS + (lane & 15);
  const int chunk = kd * 2 + (lane >> 4);
  return tile_offset(row, chunk, Geometry<D>::ROW_BYTES);
}
// K (B operand of S = Q K^T, "col": key rows are head-dim contiguous, so no .trans), keys
// 16*nj..16*nj+15 at head-dim step kd: matrices (keys 0-7, d 0-7), (keys 0-7, d 8-15),
// (keys 8-15, d 0-7), (keys 8-15, d 8-15) = b0, b1 of S fragment 2*nj, b0, b1 of 2*nj+1.
template <int D>
AIBENCH_FA_HD int k_ldmatrix_offset(int nj, int kd, int lane) {
  const int row = nj * 16 + (lane & 7) + ((lane >> 4) << 3);
  const int chunk = kd * 2 + ((lane >> 3) & 1);
  return tile_offset(row, chunk, Geometry<D>::ROW_BYTES);
}
// V (B operand of O += P V, rows are keys = the k dimension, head-dim contiguous: .trans),
// keys 16*kk.. at head-dim columns 16*dj..16*dj+15: matrices (keys 0-7, d 0-7),
// (keys 8-15, d 0-7), (keys 0-7, d 8-15), (keys 8-15, d 8-15) = b0, b1 of O fragment 2*dj,
// b0, b1 of O fragment 2*dj+1.
template <int D>
AIBENCH_FA_HD int v_ldmatrix_offset(int kk, int dj, int lane) {
  const int row = kk * 16 + (lane & 15);
  const int chunk = dj * 2 + (lane >> 4);
  return tile_offset(row, chunk, Geometry<D>::ROW_BYTES);
}

// mma.m16n8k16 accumulator element e (0..3) of lane: row (lane/4) + 8*(e/2), column
// 2*(lane%4) + e%2 of the 16x8 fragment.
AIBENCH_FA_HD int acc_row(int lane, int e) { return (lane >> 2) + 8 * (e >> 1); }
AIBENCH_FA_HD int acc_col(int lane, int e) { return 2 * (lane & 3) + (e & 1); }

// P reuse: A register r (0..3) of P.V step kk packs accumulator elements {e, e+1} with
// e = p_src_elem(r) of S fragment p_src_frag(kk, r) (low half = element e). A registers are
// a0 (row g, k 2t..), a1 (row g+8, k 2t..), a2 (row g, k 2t+8..), a3 (row g+8, k 2t+8..),
// and S fragment f covers keys 8f..8f+7, so k 16kk+2t.. is fragment 2kk, 16kk+8+2t.. is 2kk+1.
AIBENCH_FA_HD int p_src_frag(int kk, int r) { return 2 * kk + (r >> 1); }
AIBENCH_FA_HD int p_src_elem(int r) { return (r & 1) * 2; }

// Query tile handled by block x of a grid of gx query tiles: causal grids start with the
// last (longest) tiles so that the heavy blocks are scheduled first.
AIBENCH_FA_HD int query_tile(int bx, int gx, bool causal) { return causal ? gx - 1 - bx : bx; }

// Exclusive end of the keys that query `row` sees: all of them, or with the causal mask
// aligned bottom-right, keys j <= row + (sk - sq). May be <= 0 (the row sees no key).
AIBENCH_FA_HD int key_end(int row, int sq, int sk, bool causal) {
  if (!causal) return sk;
  const int end = row + (sk - sq) + 1;
  return end < sk ? end : sk;
}

// Number of K/V tiles the query tile starting at row m0 visits: all, or with the causal
// mask only up to the tile holding the last key its last (real) row sees.
AIBENCH_FA_HD int kv_tiles(int m0, int sq, int sk, bool causal) {
  const int all = (sk + BN - 1) / BN;
  if (!causal) return all;
  const int last_row = (m0 + BM < sq ? m0 + BM : sq) - 1;
  const int end = key_end(last_row, sq, sk, true);
  if (end <= 0) return 0;
  const int tiles = (end + BN - 1) / BN;
  return tiles < all ? tiles : all;
}

// Whether K/V tile starting at key n0 needs the per-element mask for some row of the query
// tile at m0: it runs past the last key, or (causal) its last key lies beyond what the
// tile's first row sees. Otherwise every row of the tile sees every key of the K/V tile.
AIBENCH_FA_HD bool tile_needs_mask(int n0, int m0, int sq, int sk, bool causal) {
  if (n0 + BN > sk) return true;
  return causal && n0 + BN > key_end(m0, sq, sk, true);
}

}  // namespace fa_cfg
}  // namespace aibench_cuda
