// Host emulation of aibench's FlashAttention forward kernel (flash_attn.cu), for machines
// without a GPU. Not part of the module: tests/test_cuda_attention.py compiles and runs it
//   c++ -std=c++17 -O2 -Icsrc csrc/cuda/flash_attn_check.cpp && ./a.out
// It runs the kernel's schedule block by block, warp by warp and lane by lane with the same
// index helpers (flash_attn_layout.cuh): cp.async copies with zero fill, the 2-stage K/V
// double buffer, ldmatrix (.trans), mma.m16n8k16 as the PTX ISA defines their fragments,
// the masks, the online softmax with its 4-lane shuffles, the reuse of the S accumulators
// as the A fragments of P.V, and the bounds-checked epilogue. Arithmetic is in double (no
// bf16 rounding of P), so the result must match a direct float64 attention to ~1e-12.
// It also checks: every output element written exactly once, every block tile visited once,
// every tile row copied exactly once, shared accesses in bounds, aligned and inside their
// region, no read of shared memory that was never written, the skipped causal tiles hold
// no visible key, unmasked tiles hold no invisible key, and ldmatrix / cp.async stores free
// of bank conflicts. Exit status 0 when all hold.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <set>
#include <vector>

#include "cuda/flash_attn_layout.cuh"

using namespace aibench_cuda::fa_cfg;

namespace {

int failures = 0;

#define CHECK(cond, ...)                                 \
  do {                                                   \
    if (!(cond)) {                                       \
      if (failures < 30) {                               \
        std::printf("FAIL %s:%d: ", __FILE__, __LINE__); \
        std::printf(__VA_ARGS__);                        \
        std::printf("\n");                               \
      }                                                  \
      ++failures;                                        \
    }                                                    \
  } while (0)

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

// 16-byte accesses of one 8-lane phase: conflict-free when they cover all 32 banks.
void check_phase_banks(const int* offsets, const char* what) {
  std::set<int> banks;
  for (int i = 0; i < 8; ++i)
    for (int w = 0; w < 4; ++w) banks.insert((offsets[i] / 4 + w) % 32);
  CHECK(banks.size() == 32, "%s: bank conflict (%zu banks for 8 x 16 bytes)", what, banks.size());
}

// Shared memory as one double per 16-bit element; NaN = never written.
struct Smem {
  int bytes;
  std::vector<double> h;
  explicit Smem(int n) : bytes(n), h(n / 2, kNaN) {}
  void store16(int off, const double* v, int lo, int hi) {
    CHECK(off >= lo && off + 16 <= hi && off % 16 == 0, "smem store at %d outside [%d, %d)", off, lo, hi);
    if (off < 0 || off + 16 > bytes) return;
    for (int e = 0; e < 8; ++e) h[off / 2 + e] = v[e];
  }
  const double* row(int off, int lo, int hi) {
    CHECK(off >= lo && off + 16 <= hi && off % 16 == 0, "ldmatrix row at %d outside [%d, %d)", off, lo, hi);
    static double bad[8] = {kNaN, kNaN, kNaN, kNaN, kNaN, kNaN, kNaN, kNaN};
    if (off < 0 || off + 16 > bytes) return bad;
    for (int e = 0; e < 8; ++e) CHECK(!std::isnan(h[off / 2 + e]), "ldmatrix reads unwritten smem at %d", off);
    return &h[off / 2];
  }
};

// ldmatrix.x4 (.trans): lane l gives the address of row l%8 of matrix l/8; lane i receives
// in register j the pair (row i/4, cols 2(i%4), 2(i%4)+1) of matrix j, or with .trans the
// pair (rows 2(i%4), 2(i%4)+1, col i/4).
void ldmatrix_x4(Smem& s, const int (&addr)[32], bool trans, int lo, int hi, double (&out)[32][4][2]) {
  for (int j = 0; j < 4; ++j) {
    check_phase_banks(&addr[8 * j], trans ? "ldmatrix.trans" : "ldmatrix");
    for (int i = 0; i < 32; ++i)
      for (int h = 0; h < 2; ++h) {
        const int r = trans ? 2 * (i % 4) + h : i / 4;
        const int c = trans ? i / 4 : 2 * (i % 4) + h;
        out[i][j][h] = s.row(addr[8 * j + r], lo, hi)[c];
      }
  }
}

// mma.m16n8k16.row.col: g = lane/4, t = lane%4. A regs: a0 (g, 2t..), a1 (g+8, 2t..),
// a2 (g, 2t+8..), a3 (g+8, 2t+8..). B regs: b0 (k 2t.., n g), b1 (k 2t+8.., n g).
// D: d0,d1 (g, 2t..), d2,d3 (g+8, 2t..).
void mma(const double (&a)[32][4][2], const double (&b)[32][2][2], double (&d)[32][4]) {
  double A[16][16], B[16][8];
  for (int l = 0; l < 32; ++l) {
    const int g = l / 4, t = l % 4;
    for (int h = 0; h < 2; ++h) {
      A[g][2 * t + h] = a[l][0][h];
      A[g + 8][2 * t + h] = a[l][1][h];
      A[g][2 * t + 8 + h] = a[l][2][h];
      A[g + 8][2 * t + 8 + h] = a[l][3][h];
      B[2 * t + h][g] = b[l][0][h];
      B[2 * t + 8 + h][g] = b[l][1][h];
    }
  }
  for (int l = 0; l < 32; ++l) {
    const int g = l / 4, t = l % 4;
    for (int e = 0; e < 4; ++e) {
      const int row = g + (e >= 2 ? 8 : 0), col = 2 * t + (e & 1);
      for (int k = 0; k < 16; ++k) d[l][e] += A[row][k] * B[k][col];
    }
  }
}

// Independent statement of the mask: query i sees key j.
bool visible(int i, int j, int sq, int sk, bool causal) {
  return j >= 0 && j < sk && (!causal || static_cast<long long>(j) <= static_cast<long long>(i) + sk - sq);
}

template <int D>
void run_case(int B, int H, int Hkv, int Sq, int Sk, bool causal) {
  using G = Geometry<D>;
  std::printf("case B=%d H=%d Hkv=%d Sq=%d Sk=%d D=%d %s\n", B, H, Hkv, Sq, Sk, D,
              causal ? "causal" : "full");
  std::uint32_t x = 12345u + static_cast<std::uint32_t>(Sq * 7 + Sk * 131 + D + causal);
  auto next = [&] {
    x = x * 1664525u + 1013904223u;
    return static_cast<double>(static_cast<int>((x >> 24) % 17) - 8) / 8.0;  // [-1, 1] / 8ths
  };
  std::vector<double> Q(static_cast<std::size_t>(B) * H * Sq * D), K(static_cast<std::size_t>(B) * Hkv * Sk * D),
      V(K.size());
  for (auto& v : Q) v = next();
  for (auto& v : K) v = next();
  for (auto& v : V) v = next();
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  const double scale_log2 = scale * 1.4426950408889634;
  std::vector<double> O(Q.size(), kNaN);
  std::vector<int> writes(Q.size(), 0);

  const int gx = (Sq + BM - 1) / BM;
  const int group = H / Hkv;
  std::vector<int> visited(static_cast<std::size_t>(B) * H * gx, 0);

  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h)
      for (int bx = 0; bx < gx; ++bx) {
        const int mt = query_tile(bx, gx, causal);
        CHECK(mt >= 0 && mt < gx, "block %d -> query tile %d", bx, mt);
        if (mt < 0 || mt >= gx) continue;
        visited[(static_cast<std::size_t>(b) * H + h) * gx + mt]++;
        const int m0 = mt * BM;
        const int last_row = (m0 + BM < Sq ? m0 + BM : Sq) - 1;
        const std::size_t q_head = (static_cast<std::size_t>(b) * H + h) * Sq * D;
        const std::size_t kv_head = (static_cast<std::size_t>(b) * Hkv + h / group) * Sk * D;
        const int n_tiles = kv_tiles(m0, Sq, Sk, causal);
        CHECK(n_tiles >= 0 && n_tiles <= (Sk + BN - 1) / BN, "kv_tiles %d", n_tiles);
        // Skipped tiles must hold no key that a real row of this block sees.
        for (int i = m0; i <= last_row; ++i)
          for (int j = n_tiles * BN; j < Sk; ++j)
            CHECK(!visible(i, j, Sq, Sk, causal), "skipped key %d visible to row %d", j, i);

        Smem smem(G::SMEM_BYTES);
        // cp.async copies of one tile, warp by warp, as load_tile() issues them.
        auto load_tile = [&](int base, int region_end, int rows, const double* src, int rows_left,
                             int copies) {
          std::vector<int> covered(static_cast<std::size_t>(rows) * G::CHUNKS, 0);
          for (int warp = 0; warp < WARPS; ++warp)
            for (int i = 0; i < copies; ++i) {
              int offs[32];
              for (int lane = 0; lane < 32; ++lane) {
                const int tid = warp * 32 + lane;
                int row, chunk;
                copy_coords<D>(tid, i, row, chunk);
                CHECK(row >= 0 && row < rows && chunk >= 0 && chunk < G::CHUNKS, "copy coords %d %d", row, chunk);
                if (row < 0 || row >= rows || chunk < 0 || chunk >= G::CHUNKS) return;
                covered[static_cast<std::size_t>(row) * G::CHUNKS + chunk]++;
                const bool ok = row < rows_left;
                double v[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // src-size 0: zeros
                if (ok)
                  for (int e = 0; e < 8; ++e) v[e] = src[static_cast<std::size_t>(row) * D + chunk * 8 + e];
                offs[lane] = base + tile_offset(row, chunk, G::ROW_BYTES);
                smem.store16(offs[lane], v, base, region_end);
              }
              for (int p = 0; p < 4; ++p) check_phase_banks(&offs[8 * p], "cp.async store");
            }
          for (std::size_t c = 0; c < covered.size(); ++c)
            CHECK(covered[c] == 1, "tile chunk %zu copied %d times", c, covered[c]);
        };
        int stage_tile[STAGES] = {-1, -1};
        auto load_kv = [&](int stage, int tile) {
          const int n0 = tile * BN;
          const int kb = G::K_OFFSET + stage * G::KV_TILE_BYTES;
          const int vb = G::V_OFFSET + stage * G::KV_TILE_BYTES;
          load_tile(kb, kb + G::KV_TILE_BYTES, BN, &K[kv_head + static_cast<std::size_t>(n0) * D], Sk - n0, G::KV_COPIES);
          load_tile(vb, vb + G::KV_TILE_BYTES, BN, &V[kv_head + static_cast<std::size_t>(n0) * D], Sk - n0, G::KV_COPIES);
          stage_tile[stage] = tile;
        };
        load_tile(0, G::Q_BYTES, BM, &Q[q_head + static_cast<std::size_t>(m0) * D], Sq - m0, G::Q_COPIES);
        if (n_tiles > 0) load_kv(0, 0);

        static double qf[WARPS][G::KD][32][4][2];
        for (int warp = 0; warp < WARPS; ++warp)
          for (int kd = 0; kd < G::KD; ++kd) {
            int addr[32];
            for (int lane = 0; lane < 32; ++lane) addr[lane] = q_ldmatrix_offset<D>(warp, kd, lane);
            ldmatrix_x4(smem, addr, false, 0, G::Q_BYTES, qf[warp][kd]);
          }
        static double acc[WARPS][G::ON][32][4];
        static double row_max[WARPS][32][2], row_sum[WARPS][32][2];
        for (int w = 0; w < WARPS; ++w)
          for (int l = 0; l < 32; ++l) {
            for (int j = 0; j < G::ON; ++j)
              for (int e = 0; e < 4; ++e) acc[w][j][l][e] = 0.0;
            for (int hf = 0; hf < 2; ++hf) {
              row_max[w][l][hf] = -kInf;
              row_sum[w][l][hf] = 0.0;
            }
          }

        for (int t = 0; t < n_tiles; ++t) {
          // The kernel issues tile t+1 into the other stage before computing tile t; the
          // copies land at once here, which wait_group 0 + __syncthreads guarantee there
          // before tile t+1 is read.
          if (t + 1 < n_tiles) {
            CHECK(((t + 1) & 1) != (t & 1), "prefetch overwrites the stage being read");
            load_kv((t + 1) & 1, t + 1);
          }
          CHECK(stage_tile[t & 1] == t, "stage %d holds tile %d, expected %d", t & 1, stage_tile[t & 1], t);
          const int kb = G::K_OFFSET + (t & 1) * G::KV_TILE_BYTES;
          const int vb = G::V_OFFSET + (t & 1) * G::KV_TILE_BYTES;
          const int n0 = t * BN;
          const bool needs_mask = tile_needs_mask(n0, m0, Sq, Sk, causal);
          if (!needs_mask)
            for (int i = m0; i <= last_row; ++i)
              for (int j = n0; j < n0 + BN; ++j)
                CHECK(visible(i, j, Sq, Sk, causal), "unmasked tile at %d: key %d hidden from row %d", n0, j, i);

          for (int warp = 0; warp < WARPS; ++warp) {
            static double s[SN][32][4];
            for (int j = 0; j < SN; ++j)
              for (int l = 0; l < 32; ++l)
                for (int e = 0; e < 4; ++e) s[j][l][e] = 0.0;
            for (int kd = 0; kd < G::KD; ++kd)
              for (int nj = 0; nj < SN / 2; ++nj) {
                int addr[32];
                for (int lane = 0; lane < 32; ++lane) addr[lane] = kb + k_ldmatrix_offset<D>(nj, kd, lane);
                double kf[32][4][2];
                ldmatrix_x4(smem, addr, false, kb, kb + G::KV_TILE_BYTES, kf);
                double b0[32][2][2], b1[32][2][2];
                for (int l = 0; l < 32; ++l)
                  for (int hh = 0; hh < 2; ++hh) {
                    b0[l][0][hh] = kf[l][0][hh];
                    b0[l][1][hh] = kf[l][1][hh];
                    b1[l][0][hh] = kf[l][2][hh];
                    b1[l][1][hh] = kf[l][3][hh];
                  }
                double d[32][4];
                for (int l = 0; l < 32; ++l)
                  for (int e = 0; e < 4; ++e) d[l][e] = s[2 * nj][l][e];
                mma(qf[warp][kd], b0, d);
                for (int l = 0; l < 32; ++l)
                  for (int e = 0; e < 4; ++e) s[2 * nj][l][e] = d[l][e];
                for (int l = 0; l < 32; ++l)
                  for (int e = 0; e < 4; ++e) d[l][e] = s[2 * nj + 1][l][e];
                mma(qf[warp][kd], b1, d);
                for (int l = 0; l < 32; ++l)
                  for (int e = 0; e < 4; ++e) s[2 * nj + 1][l][e] = d[l][e];
              }
            if (needs_mask)
              for (int lane = 0; lane < 32; ++lane)
                for (int hf = 0; hf < 2; ++hf) {
                  const int end = key_end(m0 + warp * WARP_ROWS + acc_row(lane, 2 * hf), Sq, Sk, causal);
                  for (int j = 0; j < SN; ++j)
                    for (int e = 0; e < 2; ++e)
                      if (n0 + j * 8 + acc_col(lane, e) >= end) s[j][lane][2 * hf + e] = -kInf;
                }
            // Online softmax; the shuffles xor 1 and xor 2 of the kernel.
            for (int hf = 0; hf < 2; ++hf) {
              double mx[32], mx1[32], mx2[32];
              for (int lane = 0; lane < 32; ++lane) {
                mx[lane] = row_max[warp][lane][hf];
                for (int j = 0; j < SN; ++j)
                  mx[lane] = std::fmax(mx[lane], std::fmax(s[j][lane][2 * hf], s[j][lane][2 * hf + 1]));
              }
              for (int lane = 0; lane < 32; ++lane) mx1[lane] = std::fmax(mx[lane], mx[lane ^ 1]);
              for (int lane = 0; lane < 32; ++lane) mx2[lane] = std::fmax(mx1[lane], mx1[lane ^ 2]);
              for (int lane = 0; lane < 32; ++lane) {
                const double m = mx2[lane];
                const double m_scaled = m == -kInf ? 0.0 : m * scale_log2;
                const double alpha = std::exp2(row_max[warp][lane][hf] * scale_log2 - m_scaled);
                CHECK(!std::isnan(alpha), "alpha is NaN");
                row_max[warp][lane][hf] = m;
                double sum = 0.0;
                for (int j = 0; j < SN; ++j)
                  for (int e = 0; e < 2; ++e) {
                    const double p = std::exp2(s[j][lane][2 * hf + e] * scale_log2 - m_scaled);
                    CHECK(!std::isnan(p) && p <= 1.0 + 1e-12, "p = %g", p);
                    s[j][lane][2 * hf + e] = p;
                    sum += p;
                  }
                row_sum[warp][lane][hf] = row_sum[warp][lane][hf] * alpha + sum;
                for (int j = 0; j < G::ON; ++j) {
                  acc[warp][j][lane][2 * hf] *= alpha;
                  acc[warp][j][lane][2 * hf + 1] *= alpha;
                }
              }
            }
            // O += P V with P taken from the S accumulators.
            for (int kk = 0; kk < PK; ++kk) {
              double pa[32][4][2];
              for (int lane = 0; lane < 32; ++lane)
                for (int r = 0; r < 4; ++r) {
                  const int f = p_src_frag(kk, r), e = p_src_elem(r);
                  CHECK(f >= 0 && f < SN && (e == 0 || e == 2), "P source %d %d", f, e);
                  pa[lane][r][0] = s[f][lane][e];
                  pa[lane][r][1] = s[f][lane][e + 1];
                }
              for (int dj = 0; dj < G::ON / 2; ++dj) {
                int addr[32];
                for (int lane = 0; lane < 32; ++lane) addr[lane] = vb + v_ldmatrix_offset<D>(kk, dj, lane);
                double vf[32][4][2];
                ldmatrix_x4(smem, addr, true, vb, vb + G::KV_TILE_BYTES, vf);
                double b0[32][2][2], b1[32][2][2];
                for (int l = 0; l < 32; ++l)
                  for (int hh = 0; hh < 2; ++hh) {
                    b0[l][0][hh] = vf[l][0][hh];
                    b0[l][1][hh] = vf[l][1][hh];
                    b1[l][0][hh] = vf[l][2][hh];
                    b1[l][1][hh] = vf[l][3][hh];
                  }
                mma(pa, b0, acc[warp][2 * dj]);
                mma(pa, b1, acc[warp][2 * dj + 1]);
              }
            }
          }
        }
        // Epilogue.
        for (int warp = 0; warp < WARPS; ++warp)
          for (int hf = 0; hf < 2; ++hf) {
            double l1[32], l2[32];
            for (int lane = 0; lane < 32; ++lane) l1[lane] = row_sum[warp][lane][hf] + row_sum[warp][lane ^ 1][hf];
            for (int lane = 0; lane < 32; ++lane) l2[lane] = l1[lane] + l1[lane ^ 2];
            for (int lane = 0; lane < 32; ++lane) {
              const double inv = l2[lane] > 0.0 ? 1.0 / l2[lane] : 0.0;
              const int row = m0 + warp * WARP_ROWS + acc_row(lane, 2 * hf);
              if (row >= Sq) continue;
              for (int j = 0; j < G::ON; ++j)
                for (int e = 0; e < 2; ++e) {
                  const int col = acc_col(lane, 0) + j * 8 + e;
                  CHECK(col >= 0 && col < D && acc_col(lane, 0) % 2 == 0, "store column %d", col);
                  const std::size_t at = q_head + static_cast<std::size_t>(row) * D + col;
                  O[at] = acc[warp][j][lane][2 * hf + e] * inv;
                  writes[at]++;
                }
            }
          }
      }

  for (std::size_t i = 0; i < visited.size(); ++i) CHECK(visited[i] == 1, "query tile %zu visited %d times", i, visited[i]);
  // Direct reference.
  int bad = 0;
  double worst = 0.0;
  std::vector<double> p(Sk);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h) {
      const std::size_t q_head = (static_cast<std::size_t>(b) * H + h) * Sq * D;
      const std::size_t kv_head = (static_cast<std::size_t>(b) * Hkv + h / group) * Sk * D;
      for (int i = 0; i < Sq; ++i) {
        double m = -kInf;
        for (int j = 0; j < Sk; ++j) {
          if (!visible(i, j, Sq, Sk, causal)) {
            p[j] = -kInf;
            continue;
          }
          double dot = 0.0;
          for (int d = 0; d < D; ++d)
            dot += Q[q_head + static_cast<std::size_t>(i) * D + d] * K[kv_head + static_cast<std::size_t>(j) * D + d];
          p[j] = dot * scale;
          m = std::fmax(m, p[j]);
        }
        double l = 0.0;
        for (int j = 0; j < Sk; ++j) {
          p[j] = p[j] == -kInf ? 0.0 : std::exp(p[j] - m);
          l += p[j];
        }
        for (int d = 0; d < D; ++d) {
          double ref = 0.0;
          if (l > 0.0) {
            for (int j = 0; j < Sk; ++j) ref += p[j] * V[kv_head + static_cast<std::size_t>(j) * D + d];
            ref /= l;
          }
          const std::size_t at = q_head + static_cast<std::size_t>(i) * D + d;
          const double err = std::fabs(O[at] - ref);
          if (!(err <= 1e-10) || writes[at] != 1) {
            if (bad < 5)
              std::printf("  O[b=%d,h=%d,i=%d,d=%d] = %.17g (written %d times), expected %.17g\n", b, h, i, d,
                          O[at], writes[at], ref);
            ++bad;
          }
          if (err > worst) worst = err;
        }
      }
    }
  CHECK(bad == 0, "%d wrong or unwritten output elements", bad);
  std::printf("  max |error| %.3g\n", worst);
}

}  // namespace

int main() {
  struct Case {
    int B, H, Hkv, Sq, Sk, D;
  };
  const Case cases[] = {
      {1, 1, 1, 1, 1, 64},      {2, 2, 2, 7, 7, 64},     {1, 4, 2, 130, 130, 128}, {1, 2, 2, 37, 100, 64},
      {1, 2, 1, 100, 37, 128},  {1, 2, 1, 300, 37, 64},  {1, 1, 1, 128, 128, 64},  {1, 1, 1, 129, 64, 128},
      {1, 2, 1, 200, 450, 64},  {1, 1, 1, 64, 1, 128},   {1, 1, 1, 1, 300, 64},    {1, 3, 3, 256, 256, 128},
      {1, 2, 2, 127, 127, 64},  {1, 1, 1, 70, 191, 128},  {1, 1, 1, 250, 65, 64},
  };
  for (const Case& c : cases)
    for (int causal = 0; causal < 2; ++causal) {
      if (c.D == 64)
        run_case<64>(c.B, c.H, c.Hkv, c.Sq, c.Sk, causal != 0);
      else
        run_case<128>(c.B, c.H, c.Hkv, c.Sq, c.Sk, causal != 0);
    }
  // The layout constants the kernel and the module rely on.
  CHECK(Geometry<64>::SMEM_BYTES == 48 * 1024 && Geometry<128>::SMEM_BYTES == 96 * 1024, "smem sizes");
  if (failures) {
    std::printf("%d check(s) failed\n", failures);
    return 1;
  }
  std::printf("all checks passed\n");
  return 0;
}
