// Host emulation of aibench's tensor-core GEMM (mma_gemm.cu), for machines without a GPU.
// Not part of the module: tests/test_cuda_kernels.py compiles and runs it
//   c++ -std=c++17 -O2 -Icsrc csrc/cuda/mma_layout_check.cpp && ./a.out
// It runs the kernel's schedule thread by thread with the same index helpers
// (mma_layout.cuh), emulates cp.async, ldmatrix(.trans) and mma.m16n8k16 as the PTX ISA
// defines their fragments, and checks: the product against a reference for odd shapes on
// both load paths, every C element written exactly once, every block tile visited once,
// shared-memory accesses in bounds and aligned, and ldmatrix / 16-byte shared stores free
// of bank conflicts. Exit status 0 when all hold.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <set>
#include <vector>

#include "cuda/mma_layout.cuh"

using namespace aibench_cuda::mma_cfg;

namespace {

int failures = 0;

#define CHECK(cond, ...)                          \
  do {                                            \
    if (!(cond)) {                                \
      if (failures < 20) {                        \
        std::printf("FAIL %s:%d: ", __FILE__, __LINE__); \
        std::printf(__VA_ARGS__);                 \
        std::printf("\n");                        \
      }                                           \
      ++failures;                                 \
    }                                             \
  } while (0)

// Banks touched by 16-byte accesses at these byte offsets (one 8-thread phase): conflict-free
// when the 8 accesses cover all 32 banks.
void check_phase_banks(const int* offsets, const char* what) {
  std::set<int> banks;
  for (int i = 0; i < 8; ++i)
    for (int w = 0; w < 4; ++w) banks.insert((offsets[i] / 4 + w) % 32);
  CHECK(banks.size() == 32, "%s: bank conflict (%zu banks for 8 x 16 bytes)", what, banks.size());
}

struct Smem {
  std::vector<std::uint16_t> h = std::vector<std::uint16_t>(SMEM_BYTES / 2, 0xdead);
  void store16(int off, const std::uint16_t* v) {
    CHECK(off >= 0 && off + 16 <= SMEM_BYTES && off % 16 == 0, "smem store at %d", off);
    if (off < 0 || off + 16 > SMEM_BYTES) return;
    std::memcpy(&h[off / 2], v, 16);
  }
  // One 8x8 b16 matrix row (16 bytes) as ldmatrix reads it.
  const std::uint16_t* row(int off) {
    CHECK(off >= 0 && off + 16 <= SMEM_BYTES && off % 16 == 0, "ldmatrix row at %d", off);
    static std::uint16_t zero[8] = {0};
    if (off < 0 || off + 16 > SMEM_BYTES) return zero;
    return &h[off / 2];
  }
};

// ldmatrix.x4 (.trans): lane l gives the address of row l%8 of matrix l/8; lane i receives
// in register j the pair (row i/4, cols 2(i%4), 2(i%4)+1) of matrix j, or with .trans the
// pair (rows 2(i%4), 2(i%4)+1, col i/4).
void ldmatrix_x4(Smem& s, const int (&addr)[32], bool trans, std::uint16_t (&out)[32][4][2]) {
  for (int j = 0; j < 4; ++j) {
    check_phase_banks(&addr[8 * j], trans ? "ldmatrix.trans" : "ldmatrix");
    for (int i = 0; i < 32; ++i) {
      for (int h = 0; h < 2; ++h) {
        int r = trans ? 2 * (i % 4) + h : i / 4;
        int c = trans ? i / 4 : 2 * (i % 4) + h;
        out[i][j][h] = s.row(addr[8 * j + r])[c];
      }
    }
  }
}

// mma.m16n8k16.row.col: g = lane/4, t = lane%4. A regs: a0 (g, 2t..), a1 (g+8, 2t..),
// a2 (g, 2t+8..), a3 (g+8, 2t+8..). B regs: b0 (k 2t.., n g), b1 (k 2t+8.., n g).
// D: d0,d1 (g, 2t..), d2,d3 (g+8, 2t..).
void mma(const std::uint16_t (&a)[32][4][2], const std::uint16_t (&b)[32][2][2],
         double (&d)[32][4]) {
  double A[16][16], B[16][8];
  for (int l = 0; l < 32; ++l) {
    int g = l / 4, t = l % 4;
    for (int h = 0; h < 2; ++h) {
      A[g][2 * t + h] = static_cast<std::int16_t>(a[l][0][h]);
      A[g + 8][2 * t + h] = static_cast<std::int16_t>(a[l][1][h]);
      A[g][2 * t + 8 + h] = static_cast<std::int16_t>(a[l][2][h]);
      A[g + 8][2 * t + 8 + h] = static_cast<std::int16_t>(a[l][3][h]);
      B[2 * t + h][g] = static_cast<std::int16_t>(b[l][0][h]);
      B[2 * t + 8 + h][g] = static_cast<std::int16_t>(b[l][1][h]);
    }
  }
  for (int l = 0; l < 32; ++l) {
    int g = l / 4, t = l % 4;
    for (int e = 0; e < 4; ++e) {
      int row = g + (e >= 2 ? 8 : 0), col = 2 * t + (e & 1);
      for (int k = 0; k < 16; ++k) d[l][e] += A[row][k] * B[k][col];
    }
  }
}

void run_case(int M, int N, int K, bool aligned) {
  std::printf("case M=%d N=%d K=%d %s\n", M, N, K, aligned ? "cp.async" : "generic");
  std::vector<std::uint16_t> A(static_cast<std::size_t>(M) * K), B(static_cast<std::size_t>(K) * N);
  std::uint32_t x = 12345;
  auto next = [&] {
    x = x * 1664525u + 1013904223u;
    return static_cast<std::uint16_t>(static_cast<std::int16_t>((x >> 24) % 7) - 3);
  };
  for (auto& v : A) v = next();
  for (auto& v : B) v = next();
  std::vector<double> C(static_cast<std::size_t>(M) * N, 0.0);
  std::vector<int> writes(C.size(), 0);

  const int grid_m = (M + BM - 1) / BM, grid_n = (N + BN - 1) / BN;
  std::vector<int> visited(static_cast<std::size_t>(grid_m) * grid_n, 0);
  const int ktiles = (K + BK - 1) / BK;

  for (int pid = 0; pid < grid_m * grid_n; ++pid) {
    int bm, bn;
    block_coords(pid, grid_m, grid_n, bm, bn);
    CHECK(bm >= 0 && bm < grid_m && bn >= 0 && bn < grid_n, "block %d -> (%d,%d)", pid, bm, bn);
    if (!(bm >= 0 && bm < grid_m && bn >= 0 && bn < grid_n)) continue;
    visited[static_cast<std::size_t>(bm) * grid_n + bn]++;
    const int row0 = bm * BM, col0 = bn * BN;
    Smem smem;
    static double acc[THREADS / 32][MI][NI][32][4];
    std::memset(acc, 0, sizeof(acc));

    // As the kernel copies: through the per-thread CopyPlan. Each copy is also checked
    // against the direct coordinates of a_copy_coords / b_copy_coords.
    auto load_tile = [&](int stage, int kt) {
      const int sa = stage * STAGE_BYTES, sb = sa + A_STAGE_BYTES, k0 = kt * BK;
      for (int warp = 0; warp < THREADS / 32; ++warp) {
        CopyPlan plans[32];
        for (int lane = 0; lane < 32; ++lane)
          plans[lane] = make_copy_plan(warp * 32 + lane, M, N, K, row0, col0);
        for (int i = 0; i < A_CHUNKS_PER_THREAD; ++i) {
          int offs[32];
          for (int lane = 0; lane < 32; ++lane) {
            int tid = warp * 32 + lane, r, c;
            a_copy_coords(tid, i, r, c);
            CHECK(r >= 0 && r < BM && c >= 0 && c < BK / 8, "A copy coords %d %d", r, c);
            unsigned long long src;
            int gk, dst;
            bool row_ok;
            a_copy(plans[lane], i, kt, K, src, gk, row_ok, dst);
            const int grow = row0 + r;
            CHECK(gk == k0 + c * 8 && row_ok == (grow < M) && dst == a_offset(r, c),
                  "A copy plan disagrees with coordinates (tid %d, copy %d)", tid, i);
            if (row_ok)
              CHECK(src == static_cast<unsigned long long>(grow) * K + gk, "A source offset (tid %d)", tid);
            std::uint16_t v[8] = {0};
            if (aligned) {
              if (row_ok && gk < K) {
                CHECK(gk + 8 <= K, "cp.async A chunk past row end");
                for (int e = 0; e < 8; ++e) v[e] = A[src + e];
              }
            } else {
              for (int e = 0; e < 8; ++e)
                if (row_ok && gk + e < K) v[e] = A[src + e];
            }
            offs[lane] = sa + dst;
            CHECK(offs[lane] >= sa && offs[lane] + 16 <= sb, "A chunk outside its stage");
            smem.store16(offs[lane], v);
          }
          for (int p = 0; p < 4; ++p) check_phase_banks(&offs[8 * p], "A tile store");
        }
        for (int i = 0; i < B_CHUNKS_PER_THREAD; ++i) {
          int offs[32];
          for (int lane = 0; lane < 32; ++lane) {
            int tid = warp * 32 + lane, r, c;
            b_copy_coords(tid, i, r, c);
            CHECK(r >= 0 && r < BK && c >= 0 && c < BN / 8, "B copy coords %d %d", r, c);
            unsigned long long src;
            int gk, dst;
            b_copy(plans[lane], i, kt, N, src, gk, dst);
            const int gcol = col0 + c * 8;
            const bool row_ok = gk < K && plans[lane].b_cols_left > 0;
            CHECK(gk == k0 + r && plans[lane].b_cols_left == N - gcol && dst == b_offset(r, c),
                  "B copy plan disagrees with coordinates (tid %d, copy %d)", tid, i);
            if (row_ok)
              CHECK(src == static_cast<unsigned long long>(gk) * N + gcol, "B source offset (tid %d)", tid);
            std::uint16_t v[8] = {0};
            if (aligned) {
              if (row_ok) {
                CHECK(gcol + 8 <= N, "cp.async B chunk past row end");
                for (int e = 0; e < 8; ++e) v[e] = B[src + e];
              }
            } else {
              for (int e = 0; e < 8; ++e)
                if (row_ok && e < plans[lane].b_cols_left) v[e] = B[src + e];
            }
            offs[lane] = sb + dst;
            CHECK(offs[lane] >= sb && offs[lane] + 16 <= sa + STAGE_BYTES, "B chunk outside its stage");
            smem.store16(offs[lane], v);
          }
          for (int p = 0; p < 4; ++p) check_phase_banks(&offs[8 * p], "B tile store");
        }
      }
    };

    // The kernel's schedule; copies land at once here, which is what wait_group +
    // __syncthreads guarantee on the GPU before a stage is read.
    std::vector<int> stage_tile(STAGES, -1);
    for (int s = 0; s < STAGES - 1; ++s)
      if (s < ktiles) {
        load_tile(s, s);
        stage_tile[s] = s;
      }
    for (int kt = 0; kt < ktiles; ++kt) {
      const int nxt = kt + STAGES - 1;
      if (nxt < ktiles) {
        CHECK(nxt % STAGES != kt % STAGES, "prefetch overwrites the stage being read");
        load_tile(nxt % STAGES, nxt);
        stage_tile[nxt % STAGES] = nxt;
      }
      CHECK(stage_tile[kt % STAGES] == kt, "stage %d holds tile %d, expected %d", kt % STAGES,
            stage_tile[kt % STAGES], kt);
      const int sa = (kt % STAGES) * STAGE_BYTES, sb = sa + A_STAGE_BYTES;
      for (int warp = 0; warp < THREADS / 32; ++warp) {
        const int warp_m = warp / WARPS_N, warp_n = warp % WARPS_N;
        for (int kk = 0; kk < BK; kk += 16) {
          static std::uint16_t af[MI][32][4][2], bq[NI / 2][32][4][2];
          for (int i = 0; i < MI; ++i) {
            int addr[32];
            for (int lane = 0; lane < 32; ++lane) addr[lane] = sa + a_ldmatrix_offset(warp_m, i, kk, lane);
            ldmatrix_x4(smem, addr, false, af[i]);
          }
          for (int j = 0; j < NI / 2; ++j) {
            int addr[32];
            for (int lane = 0; lane < 32; ++lane) addr[lane] = sb + b_ldmatrix_offset(warp_n, j, kk, lane);
            ldmatrix_x4(smem, addr, true, bq[j]);
          }
          for (int i = 0; i < MI; ++i)
            for (int j = 0; j < NI; ++j) {
              std::uint16_t bf[32][2][2];
              for (int lane = 0; lane < 32; ++lane)
                for (int h = 0; h < 2; ++h) {
                  bf[lane][0][h] = bq[j / 2][lane][(j % 2) * 2][h];
                  bf[lane][1][h] = bq[j / 2][lane][(j % 2) * 2 + 1][h];
                }
              double d[32][4];
              for (int lane = 0; lane < 32; ++lane)
                for (int e = 0; e < 4; ++e) d[lane][e] = acc[warp][i][j][lane][e];
              mma(af[i], bf, d);
              for (int lane = 0; lane < 32; ++lane)
                for (int e = 0; e < 4; ++e) acc[warp][i][j][lane][e] = d[lane][e];
            }
        }
      }
    }
    // Epilogue, as the kernel stores it.
    for (int warp = 0; warp < THREADS / 32; ++warp) {
      const int warp_m = warp / WARPS_N, warp_n = warp % WARPS_N;
      for (int lane = 0; lane < 32; ++lane) {
        const int g = lane >> 2, t2 = (lane & 3) * 2;
        for (int i = 0; i < MI; ++i)
          for (int j = 0; j < NI; ++j)
            for (int half = 0; half < 2; ++half) {
              int row = row0 + warp_m * WM + i * 16 + g + 8 * half;
              int col = col0 + warp_n * WN + j * 8 + t2;
              for (int e = 0; e < 2; ++e) {
                if (row < M && col + e < N) {
                  std::size_t at = static_cast<std::size_t>(row) * N + col + e;
                  C[at] = acc[warp][i][j][lane][2 * half + e];
                  writes[at]++;
                }
              }
            }
      }
    }
  }
  for (std::size_t b = 0; b < visited.size(); ++b) CHECK(visited[b] == 1, "block tile %zu visited %d times", b, visited[b]);
  int bad = 0;
  for (int r = 0; r < M; ++r)
    for (int c = 0; c < N; ++c) {
      double ref = 0;
      for (int k = 0; k < K; ++k)
        ref += static_cast<double>(static_cast<std::int16_t>(A[static_cast<std::size_t>(r) * K + k])) *
               static_cast<std::int16_t>(B[static_cast<std::size_t>(k) * N + c]);
      std::size_t at = static_cast<std::size_t>(r) * N + c;
      if (writes[at] != 1 || C[at] != ref) {
        if (bad < 5)
          std::printf("  C[%d,%d] = %g (written %d times), expected %g\n", r, c, C[at], writes[at], ref);
        ++bad;
      }
    }
  CHECK(bad == 0, "M=%d N=%d K=%d: %d wrong elements", M, N, K, bad);
}

}  // namespace

int main() {
  const int shapes[][3] = {{1, 1, 1},     {7, 63, 1000}, {1000, 1, 63}, {129, 257, 72},
                           {256, 256, 256}, {130, 264, 40}, {300, 520, 96}, {1, 8, 8},
                           {17, 520, 200}, {1300, 300, 24}};
  for (const auto& s : shapes) {
    run_case(s[0], s[1], s[2], false);
    if (s[1] % 8 == 0 && s[2] % 8 == 0) run_case(s[0], s[1], s[2], true);
  }
  if (failures) {
    std::printf("%d check(s) failed\n", failures);
    return 1;
  }
  std::printf("all checks passed\n");
  return 0;
}
