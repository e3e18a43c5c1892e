// The blocked GEMM loops and the packing, shared by every ISA path and by the widening
// bf16 / int8 paths. Compiled without ISA flags: packing is memory-bound, and only the
// micro-kernel behind the function pointer needs the wide vectors.
#include "gemm/gemm.hpp"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include <omp.h>

#include "common/bf16.hpp"
#include "common/scratch.hpp"

namespace aibench::gemm {

Blocking blocking_for_caches(int64_t mr, int64_t nr, int64_t lane_bytes) {
  const CacheSizes caches = cache_sizes();
  // kc: the B micro-panel (kc x nr) is the operand the micro-kernel reuses from L1, while
  // the A micro-panel streams through from L2; it may fill L1. Half of L1 (BLIS's model)
  // measured 0.79x OpenBLAS at 2048^3 fp32 on Zen 3 against 0.96x for all of it: twice
  // the k blocks means twice the passes over C. A multiple of 8 (whole lines of lanes).
  int64_t kc = caches.l1d / (nr * lane_bytes) / 8 * 8;
  kc = std::clamp<int64_t>(kc, 128, 1024);
  // mc: the A block (mc x kc) stays in L2 and is re-read for every B micro-panel; room is
  // left for two L1s' worth of B micro-panels passing through.
  int64_t mc = std::max<int64_t>(caches.l2 - 2 * caches.l1d, caches.l2 / 4) / (kc * lane_bytes) / mr * mr;
  mc = std::clamp<int64_t>(mc, mr, 1024 / mr * mr);
  // nc: the shared B panel in a quarter of the L3 the core sees, at most 4096 columns
  // (more only lengthens the pass over C between two B panels).
  int64_t nc = caches.l3 / 4 / (kc * lane_bytes) / nr * nr;
  nc = std::clamp<int64_t>(nc, nr, 4096 / nr * nr);
  return {mr, nr, kc, mc, nc};
}

namespace {

thread_local Scratch scratch;

// B micro-panels packed at a time: 8 micro-panels read 8 * nr values of each row of B
// (512 bytes and more), runs long enough for the hardware prefetchers.
constexpr int64_t kPackChunk = 8;

// How a group of G consecutive k values of one operand (a row of A: stride 1; a column
// of B: stride ldb) becomes one packed lane. count < G at the end of k: the missing
// values are zero.
template <class In, class Lane>
struct Widen;

template <class T>
struct Widen<T, T> {  // fp32, fp64: the value itself
  static constexpr int64_t G = 1;
  static T lane(const T* v, int64_t /*stride*/, int64_t /*count*/) { return v[0]; }
};

template <>
struct Widen<uint16_t, float> {  // bf16 bits -> the same value in fp32 (exact)
  static constexpr int64_t G = 1;
  static float lane(const uint16_t* v, int64_t /*stride*/, int64_t /*count*/) {
    return bf16_to_float(v[0]);
  }
};

template <>
struct Widen<int8_t, uint32_t> {  // two int8 -> two int16 (exact) in one 32-bit lane
  static constexpr int64_t G = 2;
  static uint32_t lane(const int8_t* v, int64_t stride, int64_t count) {
    const uint32_t lo = static_cast<uint16_t>(static_cast<int16_t>(v[0]));
    const uint32_t hi = count > 1 ? static_cast<uint16_t>(static_cast<int16_t>(v[stride])) : 0u;
    return lo | (hi << 16);
  }
};

// Packs the rows x kc block of A at `a` into micro-panels of mr rows: micro-panel r holds,
// for each k group q, the mr lanes of rows r*mr + i side by side, which is the order the
// micro-kernel broadcasts them in. Rows past `rows` are zero, so edge tiles need no mask.
template <class In, class Lane>
void pack_a(int64_t rows, int64_t kc, const In* a, int64_t lda, int64_t mr, Lane* dst) {
  using W = Widen<In, Lane>;
  const int64_t kq = ceil_div(kc, W::G);
  for (int64_t r0 = 0; r0 < rows; r0 += mr, dst += mr * kq) {
    const int64_t valid = std::min(mr, rows - r0);
    for (int64_t i = 0; i < mr; ++i) {
      if (i >= valid) {
        for (int64_t q = 0; q < kq; ++q) dst[q * mr + i] = Lane(0);
        continue;
      }
      const In* src = a + (r0 + i) * lda;
      for (int64_t q = 0; q < kq; ++q) {
        dst[q * mr + i] = W::lane(src + q * W::G, 1, std::min(W::G, kc - q * W::G));
      }
    }
  }
}

// dst[0, count) = src[0, count). A whole micro-panel row is 64, 128 or 256 bytes on every
// path: those sizes become inline vector moves, where a call to memcpy per row would
// cost more than the copy (packing B does about k * n / nr of them).
template <class T>
void copy_lanes(T* dst, const T* src, int64_t count) {
  switch (count * static_cast<int64_t>(sizeof(T))) {
    case 64: std::memcpy(dst, src, 64); return;
    case 128: std::memcpy(dst, src, 128); return;
    case 256: std::memcpy(dst, src, 256); return;
    default:
      for (int64_t j = 0; j < count; ++j) dst[j] = src[j];
  }
}

// Packs B micro-panels [q_begin, q_end) of the kc x nc block at `b` (micro-panel q: the
// nr columns from q*nr; zero past nc) into `panel`, micro-panel q at (q - q_begin) * nr * kq. B is read row by row across all these micro-panels, so that the reads are
// long contiguous runs (one micro-panel at a time would read nr values per row, one
// page apart: no prefetcher follows that).
template <class In, class Lane>
void pack_b(int64_t kc, int64_t nc, int64_t q_begin, int64_t q_end, const In* b, int64_t ldb,
            int64_t nr, Lane* panel) {
  using W = Widen<In, Lane>;
  const int64_t kq = ceil_div(kc, W::G);
  for (int64_t q = 0; q < kq; ++q) {
    const In* row = b + q * W::G * ldb;
    const int64_t count = std::min(W::G, kc - q * W::G);
    for (int64_t mp = q_begin; mp < q_end; ++mp) {
      const int64_t j0 = mp * nr;
      const int64_t cols = std::min(nr, nc - j0);
      Lane* d = panel + (mp - q_begin) * nr * kq + q * nr;
      if constexpr (std::is_same_v<In, Lane>) {
        copy_lanes(d, row + j0, cols);
      } else {
        for (int64_t j = 0; j < cols; ++j) d[j] = W::lane(row + j0 + j, ldb, count);
      }
      std::fill(d + cols, d + nr, Lane(0));
    }
  }
}

// The micro-kernel over one packed A block (rows x kq) and `micro_panels` packed B
// micro-panels from b_panel, into C at c (the first micro-panel's column; n_left columns
// of C from there). Edge tiles are computed into edge_tile and only their valid part is
// stored.
template <class Lane, class Out>
void compute_block(const KernelSpec<Lane, Out>& kernel, int64_t rows, int64_t kq, int64_t n_left,
                   int64_t micro_panels, const Lane* a_block, const Lane* b_panel, Out* c,
                   int64_t ldc, bool accumulate, Out* edge_tile) {
  const int64_t mr = kernel.blocking.mr, nr = kernel.blocking.nr;
  for (int64_t q = 0; q < micro_panels; ++q) {
    const int64_t cols = std::min(nr, n_left - q * nr);
    const Lane* b_micro_panel = b_panel + q * nr * kq;
    for (int64_t r = 0; r < rows; r += mr) {
      const int64_t tile_rows = std::min(mr, rows - r);
      const Lane* a_micro_panel = a_block + r * kq;
      Out* c_tile = c + r * ldc + q * nr;
      if (tile_rows == mr && cols == nr) {
        kernel.micro_kernel(kq, a_micro_panel, b_micro_panel, c_tile, ldc, accumulate);
        continue;
      }
      kernel.micro_kernel(kq, a_micro_panel, b_micro_panel, edge_tile, nr, false);
      for (int64_t i = 0; i < tile_rows; ++i) {
        for (int64_t jj = 0; jj < cols; ++jj) {
          const Out v = edge_tile[i * nr + jj];
          c_tile[i * ldc + jj] = accumulate ? c_tile[i * ldc + jj] + v : v;
        }
      }
    }
  }
}

// Matrix-vector products (gemm.hpp, Gemv), threads split over the long dimension.
template <class T>
void gemv_one_column(const Gemv<T>& gemv, int64_t m, int64_t k, const T* a, int64_t lda,
                     const T* b, int64_t ldb, T* c, int64_t ldc, int num_threads) {
  const T* x = b;
  if (ldb != 1) {  // a strided column of B: gather it once (k values)
    T* gathered = static_cast<T*>(scratch.get(sizeof(T) * static_cast<size_t>(k)));
    for (int64_t p = 0; p < k; ++p) gathered[p] = b[p * ldb];
    x = gathered;
  }
  const int64_t chunks = std::min<int64_t>(num_threads, ceil_div(m, 4));
#pragma omp parallel for num_threads(num_threads) schedule(static)
  for (int64_t t = 0; t < chunks; ++t) {
    const int64_t begin = m * t / chunks, end = m * (t + 1) / chunks;
    gemv.dot_rows(end - begin, k, a + begin * lda, lda, x, c + begin * ldc, ldc);
  }
}

template <class T>
void gemv_one_row(const Gemv<T>& gemv, int64_t n, int64_t k, const T* a, const T* b,
                  int64_t ldb, T* c, int num_threads) {
  // Column ranges of whole cache lines, one per thread: each streams its part of every
  // row of B. Where n is too short to give every thread a range, k is split instead and
  // the partial rows are summed.
  constexpr int64_t kLine = kAlignBytes / static_cast<int64_t>(sizeof(T));
  const int64_t col_chunks = std::min<int64_t>(num_threads, ceil_div(n, 4 * kLine));
  if (col_chunks >= num_threads || k < 64 * num_threads) {
#pragma omp parallel for num_threads(num_threads) schedule(static)
    for (int64_t t = 0; t < col_chunks; ++t) {
      const int64_t begin = round_up(n * t / col_chunks, kLine);
      const int64_t end = t + 1 == col_chunks ? n : round_up(n * (t + 1) / col_chunks, kLine);
      if (end > begin) gemv.axpy_rows(k, end - begin, a, b + begin, ldb, c + begin, false);
    }
    return;
  }
  const int64_t k_chunks = num_threads;
  T* partial = static_cast<T*>(scratch.get(sizeof(T) * static_cast<size_t>(k_chunks * n)));
#pragma omp parallel num_threads(num_threads)
  {
#pragma omp for schedule(static)
    for (int64_t t = 0; t < k_chunks; ++t) {
      const int64_t begin = k * t / k_chunks, end = k * (t + 1) / k_chunks;
      gemv.axpy_rows(end - begin, n, a + begin, b + begin * ldb, ldb, partial + t * n, false);
    }
#pragma omp for schedule(static)
    for (int64_t j = 0; j < n; ++j) {
      T sum = partial[j];
      for (int64_t t = 1; t < k_chunks; ++t) sum += partial[t * n + j];
      c[j] = sum;
    }
  }
}

// A few columns of C (2 <= n <= kFewColumns): B^T (n x k, small) is gathered once, then
// every thread dots its rows of A (whole groups of four) with those n columns: A is read
// once, in memory order, and no work is spent on padding.
template <class T>
void gemm_few_columns(const Gemv<T>& gemv, int64_t m, int64_t n, int64_t k, const T* a,
                      int64_t lda, const T* b, int64_t ldb, T* c, int64_t ldc, int num_threads) {
  T* bt = static_cast<T*>(scratch.get(sizeof(T) * static_cast<size_t>(n * k)));
  for (int64_t p = 0; p < k; ++p) {
    for (int64_t j = 0; j < n; ++j) bt[j * k + p] = b[p * ldb + j];
  }
  const int64_t chunks = std::min<int64_t>(num_threads, ceil_div(m, 4));
#pragma omp parallel for num_threads(num_threads) schedule(static)
  for (int64_t t = 0; t < chunks; ++t) {
    const int64_t begin = round_up(m * t / chunks, 4);
    const int64_t end = t + 1 == chunks ? m : round_up(m * (t + 1) / chunks, 4);
    if (end > begin) gemv.dot_cols(end - begin, n, k, a + begin * lda, lda, bt, c + begin * ldc, ldc);
  }
}

template <class In, class Lane, class Out>
void gemm_blocked(const KernelSpec<Lane, Out>& kernel, int64_t m, int64_t n, int64_t k,
                  const In* a, int64_t lda, const In* b, int64_t ldb, Out* c, int64_t ldc,
                  int threads) {
  constexpr int64_t G = Widen<In, Lane>::G;
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {  // empty sum
    for (int64_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, Out(0));
    return;
  }
  const int num_threads = resolve_threads(threads);
  if constexpr (std::is_same_v<In, Lane> && std::is_same_v<Lane, Out>) {
    if (n == 1 && kernel.gemv.dot_rows != nullptr) {
      return gemv_one_column(kernel.gemv, m, k, a, lda, b, ldb, c, ldc, num_threads);
    }
    if (m == 1 && kernel.gemv.axpy_rows != nullptr) {
      return gemv_one_row(kernel.gemv, n, k, a, b, ldb, c, num_threads);
    }
    if (n <= kFewColumns && kernel.gemv.dot_cols != nullptr) {
      return gemm_few_columns(kernel.gemv, m, n, k, a, lda, b, ldb, c, ldc, num_threads);
    }
  }
  const Blocking& blk = kernel.blocking;
  const int64_t mr = blk.mr, nr = blk.nr;
  const int64_t kc_step = blk.kc * G;  // blk.kc counts lanes

  // Two ways to share the work between threads:
  //  - rows (the common case): the B panel is packed together, then each thread takes
  //    row blocks of about MC rows (their count a multiple of the thread count, each a
  //    whole number of MR-row panels) and runs them against the whole panel;
  //  - columns (few rows: all of A fits in one MC block, in L2): every thread
  //    packs the whole of A (small) and its own share of the B micro-panels, a few at a
  //    time, and computes those columns of C. No thread waits for another, and B goes
  //    from memory to the micro-kernel through L2 only (a shared panel would be written
  //    to L3 and read back, which costs more than the few rows of A save).
  const int64_t row_panels = ceil_div(m, mr);
  const int64_t n_micro_panels = ceil_div(n, nr);
  const bool by_columns = m <= blk.mc && n_micro_panels >= 2 * num_threads;
  const int64_t row_blocks =
      by_columns ? 1 : std::min(round_up(ceil_div(m, blk.mc), num_threads), row_panels);
  const int64_t mc = ceil_div(row_panels, row_blocks) * mr;  // largest row block (columns: all of A)
  // Rows, with too few rows to give every thread a block: each row block's B
  // micro-panels are split between threads instead (they share the packed panel).
  const int64_t col_splits = by_columns ? 1 : ceil_div(num_threads, row_blocks);
  const int64_t work_items = row_blocks * col_splits;

  const int64_t kq_max = std::min(blk.kc, ceil_div(k, G));
  const int64_t nc_max = round_up(std::min(blk.nc, n), nr);
  // One allocation: the shared B panel (rows), then per thread an A block, an edge tile
  // and (columns) room for kPackChunk B micro-panels, each on a 64-byte boundary.
  const int64_t align_lanes = kAlignBytes / static_cast<int64_t>(sizeof(Lane));
  const int64_t a_block_lanes = round_up(mc * kq_max, align_lanes);
  const int64_t edge_lanes = round_up(mr * nr * static_cast<int64_t>(sizeof(Out)), kAlignBytes) /
                             static_cast<int64_t>(sizeof(Lane));
  const int64_t own_b_lanes = by_columns ? round_up(kPackChunk * nr * kq_max, align_lanes) : 0;
  const int64_t shared_b_lanes = by_columns ? 0 : round_up(kq_max * nc_max, align_lanes);
  const int64_t per_thread_lanes = a_block_lanes + edge_lanes + own_b_lanes;
  Lane* const buffer = static_cast<Lane*>(scratch.get(
      sizeof(Lane) * static_cast<size_t>(shared_b_lanes + num_threads * per_thread_lanes)));

#pragma omp parallel num_threads(num_threads)
  {
    const int tid = omp_get_thread_num();
    const int team = omp_get_num_threads();  // may be fewer than asked (OMP_THREAD_LIMIT)
    Lane* const a_block = buffer + shared_b_lanes + tid * per_thread_lanes;
    Out* const edge_tile = reinterpret_cast<Out*>(a_block + a_block_lanes);
    Lane* const own_b_panel = a_block + a_block_lanes + edge_lanes;

    for (int64_t jc = 0; jc < n; jc += blk.nc) {
      const int64_t nc = std::min(blk.nc, n - jc);
      const int64_t b_micro_panels = ceil_div(nc, nr);
      for (int64_t pc = 0; pc < k; pc += kc_step) {
        const int64_t kc = std::min(kc_step, k - pc);
        const int64_t kq = ceil_div(kc, G);
        const bool accumulate = pc > 0;  // the first k block writes C, later ones add to it
        const In* b_block = b + pc * ldb + jc;

        if (by_columns) {
          // This thread's micro-panels, a few at a time: packed, then used at once while
          // they are still in L2.
          const int64_t q_begin = b_micro_panels * tid / team;
          const int64_t q_end = b_micro_panels * (tid + 1) / team;
          pack_a(m, kc, a + pc, lda, mr, a_block);
          for (int64_t q0 = q_begin; q0 < q_end; q0 += kPackChunk) {
            const int64_t q1 = std::min(q0 + kPackChunk, q_end);
            pack_b(kc, nc, q0, q1, b_block, ldb, nr, own_b_panel);
            compute_block(kernel, m, kq, nc - q0 * nr, q1 - q0, a_block, own_b_panel,
                          c + jc + q0 * nr, ldc, accumulate, edge_tile);
          }
          continue;
        }

        // Rows. Each thread packs a contiguous range of the B micro-panels (so that it
        // reads long runs of each row of B); both work-sharing loops are dynamic: on a
        // busy machine a thread that shares its core with another process takes less
        // work instead of holding up the barrier.
#pragma omp for schedule(dynamic)
        for (int64_t q0 = 0; q0 < b_micro_panels; q0 += kPackChunk) {
          pack_b(kc, nc, q0, std::min(q0 + kPackChunk, b_micro_panels), b_block, ldb, nr,
                 buffer + q0 * nr * kq);
        }  // implicit barrier: the B panel is complete before anyone reads it

        int64_t packed_row_block = -1;
#pragma omp for schedule(dynamic)
        for (int64_t item = 0; item < work_items; ++item) {
          const int64_t row_block = item / col_splits;
          const int64_t split = item % col_splits;
          const int64_t ic = row_panels * row_block / row_blocks * mr;
          const int64_t rows = std::min(row_panels * (row_block + 1) / row_blocks * mr, m) - ic;
          if (row_block != packed_row_block) {  // a thread's splits of one block share its pack
            pack_a(rows, kc, a + ic * lda + pc, lda, mr, a_block);
            packed_row_block = row_block;
          }
          const int64_t q_begin = b_micro_panels * split / col_splits;
          const int64_t q_end = b_micro_panels * (split + 1) / col_splits;
          compute_block(kernel, rows, kq, nc - q_begin * nr, q_end - q_begin, a_block,
                        buffer + q_begin * nr * kq, c + ic * ldc + jc + q_begin * nr, ldc,
                        accumulate, edge_tile);
        }  // implicit barrier: nobody still reads the B panel when the next one is packed
      }
    }
  }
}

// bf16 output of the widening path: the fp32 product goes here first, then is rounded.
thread_local Scratch bf16_out_scratch;

}  // namespace

void gemm(const KernelSpec<float>& kernel, int64_t m, int64_t n, int64_t k, const float* a,
          int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int threads) {
  gemm_blocked(kernel, m, n, k, a, lda, b, ldb, c, ldc, threads);
}

void gemm(const KernelSpec<double>& kernel, int64_t m, int64_t n, int64_t k, const double* a,
          int64_t lda, const double* b, int64_t ldb, double* c, int64_t ldc, int threads) {
  gemm_blocked(kernel, m, n, k, a, lda, b, ldb, c, ldc, threads);
}

void gemm_bf16_widened(const KernelSpec<float>& kernel, int64_t m, int64_t n, int64_t k,
                       const uint16_t* a, int64_t lda, const uint16_t* b, int64_t ldb, float* c,
                       int64_t ldc, int threads) {
  gemm_blocked(kernel, m, n, k, a, lda, b, ldb, c, ldc, threads);
}

void gemm_bf16_widened(const KernelSpec<float>& kernel, int64_t m, int64_t n, int64_t k,
                       const uint16_t* a, int64_t lda, const uint16_t* b, int64_t ldb,
                       uint16_t* c, int64_t ldc, int threads) {
  if (m <= 0 || n <= 0) return;
  float* sum = static_cast<float*>(bf16_out_scratch.get(sizeof(float) * static_cast<size_t>(m * n)));
  gemm_blocked(kernel, m, n, k, a, lda, b, ldb, sum, n, threads);
#pragma omp parallel for num_threads(resolve_threads(threads)) schedule(static)
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = float_to_bf16_rne(sum[i * n + j]);
  }
}

void gemm_int8_widened(const Int16PairKernelSpec& kernel, int64_t m, int64_t n, int64_t k,
                       const int8_t* a, int64_t lda, const int8_t* b, int64_t ldb, int32_t* c,
                       int64_t ldc, int threads) {
  gemm_blocked(kernel, m, n, k, a, lda, b, ldb, c, ldc, threads);
}

}  // namespace aibench::gemm
