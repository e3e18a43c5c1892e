// The blocked GEMM loops and the packing, shared by every ISA path. Compiled without ISA
// flags: packing is memory-bound, and only the micro-kernel behind the function pointer
// needs the wide vectors.
#include "gemm/gemm.hpp"

#include <algorithm>
#include <cstring>

#include <omp.h>

#include "common/scratch.hpp"

namespace aibench::gemm {
namespace {

thread_local Scratch scratch;

// Packs the rows x kc block of A at `a` into micro-panels of mr rows: micro-panel r holds,
// for each p in [0, kc), the mr values A[r*mr + i][p] side by side, which is the order the
// micro-kernel broadcasts them in. Rows past `rows` are zero, so edge tiles need no mask.
template <class T>
void pack_a(int64_t rows, int64_t kc, const T* a, int64_t lda, int64_t mr, T* dst) {
  for (int64_t r0 = 0; r0 < rows; r0 += mr, dst += mr * kc) {
    const int64_t valid = std::min(mr, rows - r0);
    for (int64_t i = 0; i < mr; ++i) {
      if (i < valid) {
        const T* src = a + (r0 + i) * lda;
        for (int64_t p = 0; p < kc; ++p) dst[p * mr + i] = src[p];
      } else {
        for (int64_t p = 0; p < kc; ++p) dst[p * mr + i] = T(0);
      }
    }
  }
}

// Packs the kc x cols micro-panel of B at `b` (cols <= nr): for each p, the nr values
// B[p][0 .. nr) contiguously, zero past `cols`.
template <class T>
void pack_b_micro_panel(int64_t kc, int64_t cols, const T* b, int64_t ldb, int64_t nr, T* dst) {
  for (int64_t p = 0; p < kc; ++p, dst += nr) {
    std::memcpy(dst, b + p * ldb, static_cast<size_t>(cols) * sizeof(T));
    std::fill(dst + cols, dst + nr, T(0));
  }
}

template <class T>
void gemm_blocked(const KernelSpec<T>& kernel, int64_t m, int64_t n, int64_t k, const T* a,
                  int64_t lda, const T* b, int64_t ldb, T* c, int64_t ldc, int threads) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {  // empty sum
    for (int64_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, T(0));
    return;
  }
  const Blocking& blk = kernel.blocking;
  const int64_t mr = blk.mr, nr = blk.nr;
  const int num_threads = resolve_threads(threads);

  // Row blocks of A: the fewest of at most about MC rows, their count a multiple of the
  // thread count, each a whole number of MR-row panels and within one panel of the
  // others, so that every thread gets the same work.
  const int64_t row_panels = ceil_div(m, mr);
  const int64_t row_blocks =
      std::min(round_up(ceil_div(m, blk.mc), num_threads), row_panels);
  const int64_t mc = ceil_div(row_panels, row_blocks) * mr;  // largest row block
  // Too few rows to give every thread a block (small m): each row block's B
  // micro-panels are split between threads instead.
  const int64_t col_splits = ceil_div(num_threads, row_blocks);
  const int64_t work_items = row_blocks * col_splits;

  const int64_t kc_max = std::min(blk.kc, k);
  const int64_t nc_max = round_up(std::min(blk.nc, n), nr);
  // One allocation: the shared B panel, then per thread an A block and an edge tile, each
  // part starting on a 64-byte boundary.
  const int64_t align_elems = kAlignBytes / static_cast<int64_t>(sizeof(T));
  const int64_t b_panel_elems = round_up(kc_max * nc_max, align_elems);
  const int64_t per_thread_elems = round_up(mc * kc_max + mr * nr, align_elems);
  T* const buffer = static_cast<T*>(
      scratch.get(sizeof(T) * static_cast<size_t>(b_panel_elems + num_threads * per_thread_elems)));
  T* const b_panel = buffer;

#pragma omp parallel num_threads(num_threads)
  {
    T* const a_block = buffer + b_panel_elems + omp_get_thread_num() * per_thread_elems;
    T* const edge_tile = a_block + mc * kc_max;

    for (int64_t jc = 0; jc < n; jc += blk.nc) {
      const int64_t nc = std::min(blk.nc, n - jc);
      const int64_t b_micro_panels = ceil_div(nc, nr);
      for (int64_t pc = 0; pc < k; pc += blk.kc) {
        const int64_t kc = std::min(blk.kc, k - pc);
        const bool accumulate = pc > 0;  // the first k block writes C, later ones add to it

        // Both work-sharing loops are dynamic: on a busy machine a thread that shares its
        // core with another process takes less work instead of holding up the barrier.
#pragma omp for schedule(dynamic)
        for (int64_t q = 0; q < b_micro_panels; ++q) {
          pack_b_micro_panel(kc, std::min(nr, nc - q * nr), b + pc * ldb + jc + q * nr, ldb, nr,
                             b_panel + q * nr * kc);
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
          for (int64_t q = q_begin; q < q_end; ++q) {
            const int64_t j = jc + q * nr;
            const int64_t cols = std::min(nr, n - j);
            const T* b_micro_panel = b_panel + q * nr * kc;
            for (int64_t r = 0; r < rows; r += mr) {
              const int64_t tile_rows = std::min(mr, rows - r);
              const T* a_micro_panel = a_block + r * kc;
              T* c_tile = c + (ic + r) * ldc + j;
              if (tile_rows == mr && cols == nr) {
                kernel.micro_kernel(kc, a_micro_panel, b_micro_panel, c_tile, ldc, accumulate);
                continue;
              }
              // Edge of C: compute the full padded tile aside, store only its valid part.
              kernel.micro_kernel(kc, a_micro_panel, b_micro_panel, edge_tile, nr, false);
              for (int64_t i = 0; i < tile_rows; ++i) {
                for (int64_t jj = 0; jj < cols; ++jj) {
                  const T v = edge_tile[i * nr + jj];
                  c_tile[i * ldc + jj] = accumulate ? c_tile[i * ldc + jj] + v : v;
                }
              }
            }
          }
        }  // implicit barrier: nobody still reads the B panel when the next one is packed
      }
    }
  }
}

}  // namespace

void gemm(const KernelSpec<float>& kernel, int64_t m, int64_t n, int64_t k, const float* a,
          int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int threads) {
  gemm_blocked(kernel, m, n, k, a, lda, b, ldb, c, ldc, threads);
}

void gemm(const KernelSpec<double>& kernel, int64_t m, int64_t n, int64_t k, const double* a,
          int64_t lda, const double* b, int64_t ldb, double* c, int64_t ldc, int threads) {
  gemm_blocked(kernel, m, n, k, a, lda, b, ldb, c, ldc, threads);
}

}  // namespace aibench::gemm
