// The low-precision GEMMs (bf16 -> fp32 or bf16, int8 -> int32): path selection, packing
// and the blocked loops. Compiled without ISA flags, like gemm_driver.cpp: packing is
// memory-bound and only the micro-kernels (gemm_bf16.cpp, gemm_int8.cpp) need the
// dot-product instructions. The loop nest and the work split are those of
// gemm_driver.cpp (see gemm.hpp); what differs is the packed layout (k interleaved in
// groups of 2 or 4 in each 32-bit lane), the int8 correction, and bf16 output.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <type_traits>

#include <omp.h>

#include "common/bf16.hpp"
#include "common/cpu_features.hpp"
#include "common/scratch.hpp"
#include "gemm/gemm.hpp"

namespace aibench::gemm {
namespace {

constexpr int64_t kMaxNr = 256;  // widest micro-panel the packing supports (checked below)

thread_local Scratch lowp_scratch;

enum class Kind { bf16_fp32_out, bf16_bf16_out, int8 };

// Element types of one kind: In the operands, Acc the micro-kernel tile, Out C.
template <Kind K> struct Types;
template <> struct Types<Kind::bf16_fp32_out> {
  using In = uint16_t; using Acc = float; using Out = float; using Spec = Bf16KernelSpec;
  static constexpr int64_t group = 2;
};
template <> struct Types<Kind::bf16_bf16_out> {
  using In = uint16_t; using Acc = float; using Out = uint16_t; using Spec = Bf16KernelSpec;
  static constexpr int64_t group = 2;
};
template <> struct Types<Kind::int8> {
  using In = int8_t; using Acc = int32_t; using Out = int32_t; using Spec = Int8KernelSpec;
  static constexpr int64_t group = 4;
};

// The element of A as packed: int8 becomes u8 = a + 128 (flip the sign bit); bf16 as is.
template <class In>
In a_packed(In v) {
  if constexpr (sizeof(In) == 1) {
    return static_cast<In>(static_cast<uint8_t>(v) ^ 0x80u);
  } else {
    return v;
  }
}

// The same on a whole 32-bit lane (G elements of A, memory order = lane order).
template <class In>
uint32_t a_lane_packed(uint32_t lane) {
  if constexpr (sizeof(In) == 1) {
    return lane ^ 0x80808080u;
  } else {
    return lane;
  }
}

// Packs rows x kc of A into micro-panels of mr rows: micro-panel r holds, for each k
// group q, the mr lanes (A[r*mr + i][q*G .. q*G + G)) side by side, the order the
// micro-kernel broadcasts them in. A row's G consecutive elements are already a lane in
// memory, so whole lanes are copied. Rows past `rows` and k past kc are zero (for int8 a
// padded A byte meets a zero B byte, so its value does not matter).
template <class In, int64_t G>
void pack_a(int64_t rows, int64_t kc, const In* a, int64_t lda, int64_t mr, uint32_t* dst) {
  static_assert(G * sizeof(In) == sizeof(uint32_t), "a k group fills one 32-bit lane");
  const int64_t kq = ceil_div(kc, G);
  const int64_t full = kc / G;
  for (int64_t r0 = 0; r0 < rows; r0 += mr, dst += mr * kq) {
    const int64_t valid = std::min(mr, rows - r0);
    for (int64_t i = 0; i < mr; ++i) {
      uint32_t* d = dst + i;
      if (i >= valid) {
        for (int64_t q = 0; q < kq; ++q) d[q * mr] = 0;
        continue;
      }
      const In* src = a + (r0 + i) * lda;
      for (int64_t q = 0; q < full; ++q) {
        uint32_t lane;
        std::memcpy(&lane, src + q * G, sizeof lane);
        d[q * mr] = a_lane_packed<In>(lane);
      }
      if (full < kq) {  // the last, partial group
        In part[G] = {};
        for (int64_t t = 0; full * G + t < kc; ++t) part[t] = a_packed(src[full * G + t]);
        std::memcpy(d + full * mr, part, sizeof(uint32_t));
      }
    }
  }
}

// Packs the kc x cols micro-panel of B (cols <= nr): for each k group q, nr lanes of G
// values B[q*G .. q*G + G)[j], zero past kc and cols. For int8 it then appends nr int32
// values: -128 * sum over this block's k of B[p][j], the correction for the +128 on A.
template <class In, int64_t G, bool kCorrection>
void pack_b_micro_panel(int64_t kc, int64_t cols, const In* b, int64_t ldb, int64_t nr,
                        uint32_t* dst) {
  static_assert(G * sizeof(In) == sizeof(uint32_t), "a k group fills one 32-bit lane");
  using U = std::conditional_t<sizeof(In) == 1, uint8_t, uint16_t>;
  constexpr int kBits = 8 * sizeof(In);
  const int64_t kq = ceil_div(kc, G);
  int32_t colsum[kMaxNr];  // sum over k of B[p][j]: |.| <= 128 kc, no overflow
  if constexpr (kCorrection) std::fill(colsum, colsum + nr, 0);
  for (int64_t q = 0; q < kq; ++q, dst += nr) {
    const In* rows[G];
    int64_t valid_rows = 0;
    for (int64_t t = 0; t < G; ++t) {
      if (q * G + t < kc) {
        rows[t] = b + (q * G + t) * ldb;
        ++valid_rows;
      }
    }
    if (valid_rows == G) {  // the common case: a loop the compiler vectorises
      for (int64_t j = 0; j < cols; ++j) {
        uint32_t lane = 0;
        for (int64_t t = 0; t < G; ++t) {
          lane |= static_cast<uint32_t>(static_cast<U>(rows[t][j])) << (kBits * t);
        }
        dst[j] = lane;
      }
      if constexpr (kCorrection) {
        for (int64_t j = 0; j < cols; ++j) {
          int32_t s = 0;
          for (int64_t t = 0; t < G; ++t) s += rows[t][j];
          colsum[j] += s;
        }
      }
    } else {  // the last, partial group: missing rows are zero
      for (int64_t j = 0; j < cols; ++j) {
        uint32_t lane = 0;
        for (int64_t t = 0; t < valid_rows; ++t) {
          lane |= static_cast<uint32_t>(static_cast<U>(rows[t][j])) << (kBits * t);
          if constexpr (kCorrection) colsum[j] += rows[t][j];
        }
        dst[j] = lane;
      }
    }
    std::fill(dst + cols, dst + nr, 0u);
  }
  if constexpr (kCorrection) {
    int32_t* corr = reinterpret_cast<int32_t*>(dst);  // right after the kq groups
    for (int64_t j = 0; j < cols; ++j) corr[j] = -128 * colsum[j];
    std::fill(corr + cols, corr + nr, 0);
  }
}

template <Kind K>
void gemm_lowp(const typename Types<K>::Spec& kernel, int64_t m, int64_t n, int64_t k,
               const typename Types<K>::In* a, int64_t lda, const typename Types<K>::In* b,
               int64_t ldb, typename Types<K>::Out* c, int64_t ldc, int threads) {
  using T = Types<K>;
  using In = typename T::In;
  using Acc = typename T::Acc;
  using Out = typename T::Out;
  constexpr int64_t G = T::group;
  constexpr bool kInt8 = K == Kind::int8;
  constexpr bool kBf16Out = K == Kind::bf16_bf16_out;

  if (m <= 0 || n <= 0) return;
  if (k <= 0) {  // empty sum
    for (int64_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, Out(0));
    return;
  }
  const Blocking& blk = kernel.blocking;
  const int64_t mr = blk.mr, nr = blk.nr;
  if (nr > kMaxNr || blk.kc % G != 0) {
    throw std::logic_error("gemm_lowp: blocking needs nr <= 256 and kc a multiple of the k group");
  }
  const int num_threads = resolve_threads(threads);

  // Row blocks and column splits exactly as in gemm_driver.cpp.
  const int64_t row_panels = ceil_div(m, mr);
  const int64_t row_blocks = std::min(round_up(ceil_div(m, blk.mc), num_threads), row_panels);
  const int64_t mc = ceil_div(row_panels, row_blocks) * mr;
  const int64_t col_splits = ceil_div(num_threads, row_blocks);
  const int64_t work_items = row_blocks * col_splits;

  const int64_t kc_max = std::min(blk.kc, k);
  const int64_t kq_max = ceil_div(kc_max, G);
  const int64_t nc_max = round_up(std::min(blk.nc, n), nr);
  // Packed B micro-panel, in 32-bit lanes: kq groups of nr lanes (+ nr int32 corrections).
  const int64_t b_micro_max = kq_max * nr + (kInt8 ? nr : 0);
  // bf16 output over several k blocks: the sum so far stays in fp32 (an m x nc
  // workspace) and is rounded to bf16 once, by the last k block.
  const bool workspace = kBf16Out && k > blk.kc;
  const int64_t ld_ws = nc_max;
  const int64_t align = kAlignBytes / 4;
  const int64_t b_panel_lanes = round_up(b_micro_max * (nc_max / nr), align);
  const int64_t per_thread_lanes = round_up(mc * kq_max + mr * nr, align);  // A block + edge tile
  const int64_t ws_lanes = workspace ? round_up(m * ld_ws, align) : 0;
  uint32_t* const buffer = static_cast<uint32_t*>(lowp_scratch.get(
      4 * static_cast<size_t>(b_panel_lanes + num_threads * per_thread_lanes + ws_lanes)));
  uint32_t* const b_panel = buffer;
  float* const ws = reinterpret_cast<float*>(buffer + b_panel_lanes + num_threads * per_thread_lanes);

#pragma omp parallel num_threads(num_threads)
  {
    uint32_t* const a_block = buffer + b_panel_lanes + omp_get_thread_num() * per_thread_lanes;
    Acc* const edge_tile = reinterpret_cast<Acc*>(a_block + mc * kq_max);

    for (int64_t jc = 0; jc < n; jc += blk.nc) {
      const int64_t nc = std::min(blk.nc, n - jc);
      const int64_t b_micro_panels = ceil_div(nc, nr);
      for (int64_t pc = 0; pc < k; pc += blk.kc) {
        const int64_t kc = std::min(blk.kc, k - pc);
        const int64_t kq = ceil_div(kc, G);
        const int64_t b_micro = kq * nr + (kInt8 ? nr : 0);
        const bool accumulate = pc > 0;
        const bool last_k_block = pc + blk.kc >= k;

#pragma omp for schedule(dynamic)
        for (int64_t q = 0; q < b_micro_panels; ++q) {
          pack_b_micro_panel<In, G, kInt8>(kc, std::min(nr, nc - q * nr),
                                           b + pc * ldb + jc + q * nr, ldb, nr,
                                           b_panel + q * b_micro);
        }  // implicit barrier: the B panel is complete before anyone reads it

        int64_t packed_row_block = -1;
#pragma omp for schedule(dynamic)
        for (int64_t item = 0; item < work_items; ++item) {
          const int64_t row_block = item / col_splits;
          const int64_t split = item % col_splits;
          const int64_t ic = row_panels * row_block / row_blocks * mr;
          const int64_t rows = std::min(row_panels * (row_block + 1) / row_blocks * mr, m) - ic;
          if (row_block != packed_row_block) {
            pack_a<In, G>(rows, kc, a + ic * lda + pc, lda, mr, a_block);
            packed_row_block = row_block;
          }
          const int64_t q_begin = b_micro_panels * split / col_splits;
          const int64_t q_end = b_micro_panels * (split + 1) / col_splits;
          for (int64_t q = q_begin; q < q_end; ++q) {
            const int64_t j = jc + q * nr;
            const int64_t cols = std::min(nr, n - j);
            const uint32_t* b_micro_panel = b_panel + q * b_micro;
            for (int64_t r = 0; r < rows; r += mr) {
              const int64_t tile_rows = std::min(mr, rows - r);
              const uint32_t* a_micro_panel = a_block + r * kq;
              Out* c_tile = c + (ic + r) * ldc + j;
              float* ws_tile = workspace ? ws + (ic + r) * ld_ws + (j - jc) : nullptr;
              if (tile_rows == mr && cols == nr) {
                if constexpr (kBf16Out) {
                  if (last_k_block) {
                    kernel.micro_kernel_bf16_out(kq, a_micro_panel, b_micro_panel,
                                                 accumulate ? ws_tile : nullptr, ld_ws, c_tile, ldc);
                  } else {
                    kernel.micro_kernel(kq, a_micro_panel, b_micro_panel, ws_tile, ld_ws, accumulate);
                  }
                } else {
                  kernel.micro_kernel(kq, a_micro_panel, b_micro_panel, c_tile, ldc, accumulate);
                }
                continue;
              }
              // Edge of C: the full padded tile aside, only its valid part stored.
              kernel.micro_kernel(kq, a_micro_panel, b_micro_panel, edge_tile, nr, false);
              for (int64_t i = 0; i < tile_rows; ++i) {
                for (int64_t jj = 0; jj < cols; ++jj) {
                  const Acc v = edge_tile[i * nr + jj];
                  if constexpr (kBf16Out) {
                    const float s = accumulate ? ws_tile[i * ld_ws + jj] + v : v;
                    if (last_k_block) {
                      c_tile[i * ldc + jj] = float_to_bf16_rne(s);
                    } else {
                      ws_tile[i * ld_ws + jj] = s;
                    }
                  } else if constexpr (kInt8) {
                    // Modulo 2^32, as the vector adds: no signed-overflow UB.
                    const uint32_t old = accumulate ? static_cast<uint32_t>(c_tile[i * ldc + jj]) : 0u;
                    c_tile[i * ldc + jj] = static_cast<int32_t>(old + static_cast<uint32_t>(v));
                  } else {
                    c_tile[i * ldc + jj] = accumulate ? c_tile[i * ldc + jj] + v : v;
                  }
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

std::vector<std::string> lowp_paths(const std::string& dtype) {
  if (dtype != "bf16" && dtype != "int8") {
    throw std::invalid_argument("lowp_paths: dtype must be 'bf16' or 'int8', got '" + dtype + "'");
  }
  const int cap = isa_level_cap();
  const auto allowed = [cap](const char* level) {
    if (cap < 0) return true;
    for (int i = 0; i <= cap; ++i) {
      if (kIsaLevels[static_cast<size_t>(i)] == level) return true;
    }
    return false;
  };
  std::vector<std::string> paths;
  const std::vector<Isa> isas = available_isas(kIsaNeeds);  // capped, slowest first
  for (auto it = isas.rbegin(); it != isas.rend(); ++it) paths.emplace_back(isa_name(*it));
  if (dtype == "int8" && has_avx512_vnni() && allowed("avx512_vnni")) {
    paths.insert(paths.begin(), "avx512_vnni");  // 4 products per lane: always the fastest
  }
  if (dtype == "bf16" && has_avx512_bf16() && allowed("avx512_bf16")) {
    // First where VDPBF16PS outruns the fp32 FMA, else right after the widening avx512
    // path (which every AVX512_BF16 CPU runs, and the cap allows below avx512_bf16).
    const bool native_first = bf16_dot_over_fma().ratio >= kNativeBf16MinRatio;
    paths.insert(native_first ? paths.begin() : paths.begin() + 1, "avx512_bf16");
  }
  return paths;
}

namespace {

DotOverFma measure_bf16_dot_over_fma() {
  DotOverFma r;
#if AIBENCH_X86
  if (!has_avx512_bf16()) return r;
  // 12 accumulators x 20000 iterations: about 0.1-0.3 ms per window; the best of 15
  // windows of each loop, interleaved, after one warm-up window of each (which also lets
  // an Intel core's AVX-512 clock settle).
  constexpr int64_t kIters = 20000;
  constexpr int kWindows = 15;
  using steady = std::chrono::steady_clock;
  const auto seconds = [](double (*loop)(int64_t), volatile double& sink) {
    const steady::time_point start = steady::now();
    sink = sink + loop(kIters);
    return std::chrono::duration<double>(steady::now() - start).count();
  };
  volatile double sink = 0.0;
  double best_dot = 0.0, best_fma = 0.0;
  for (int w = 0; w <= kWindows; ++w) {
    const double dot_s = seconds(&avx512_bf16::dot_rate_loop, sink);
    const double fma_s = seconds(&avx512_bf16::fma_rate_loop, sink);
    if (w == 0) continue;  // warm-up
    if (best_dot == 0.0 || dot_s < best_dot) best_dot = dot_s;
    if (best_fma == 0.0 || fma_s < best_fma) best_fma = fma_s;
  }
  const double vectors = static_cast<double>(avx512_bf16::rate_loop_accumulators()) * kIters;
  r.dot_gflops = vectors * 16 * 4 / best_dot * 1e-9;  // 16 lanes x 2 products x 2 FLOPs
  r.fma_gflops = vectors * 16 * 2 / best_fma * 1e-9;  // 16 lanes x 1 FMA x 2 FLOPs
  r.ratio = r.dot_gflops / r.fma_gflops;
#endif
  return r;
}

}  // namespace

DotOverFma bf16_dot_over_fma() {
  static const DotOverFma measured = measure_bf16_dot_over_fma();  // once per process
  return measured;
}

bool is_native_lowp_path(const std::string& path) {
  return path == "avx512_bf16" || path == "avx512_vnni";
}

Bf16KernelSpec bf16_kernel(const std::string& isa) {
#if AIBENCH_X86
  if (isa == "avx512_bf16") {
    if (!has_avx512_bf16()) {
      throw std::invalid_argument("bf16 GEMM path '" + isa +
                                  "': this CPU lacks AVX512_BF16 (the widening paths of lowp_paths() serve bf16)");
    }
    return avx512_bf16::bf16_kernel();
  }
#endif
  throw std::invalid_argument("unknown bf16 GEMM path '" + isa + "' (expected 'avx512_bf16')");
}

Int8KernelSpec int8_kernel(const std::string& isa) {
#if AIBENCH_X86
  if (isa == "avx512_vnni") {
    if (!has_avx512_vnni()) {
      throw std::invalid_argument("int8 GEMM path '" + isa +
                                  "': this CPU lacks AVX512_VNNI (the widening paths of lowp_paths() serve int8)");
    }
    return avx512_vnni::int8_kernel();
  }
#endif
  throw std::invalid_argument("unknown int8 GEMM path '" + isa + "' (expected 'avx512_vnni')");
}

void gemm_bf16(const Bf16KernelSpec& kernel, int64_t m, int64_t n, int64_t k, const uint16_t* a,
               int64_t lda, const uint16_t* b, int64_t ldb, float* c, int64_t ldc, int threads) {
  gemm_lowp<Kind::bf16_fp32_out>(kernel, m, n, k, a, lda, b, ldb, c, ldc, threads);
}

void gemm_bf16(const Bf16KernelSpec& kernel, int64_t m, int64_t n, int64_t k, const uint16_t* a,
               int64_t lda, const uint16_t* b, int64_t ldb, uint16_t* c, int64_t ldc, int threads) {
  gemm_lowp<Kind::bf16_bf16_out>(kernel, m, n, k, a, lda, b, ldb, c, ldc, threads);
}

void gemm_int8(const Int8KernelSpec& kernel, int64_t m, int64_t n, int64_t k, const int8_t* a,
               int64_t lda, const int8_t* b, int64_t ldb, int32_t* c, int64_t ldc, int threads) {
  gemm_lowp<Kind::int8>(kernel, m, n, k, a, lda, b, ldb, c, ldc, threads);
}

}  // namespace aibench::gemm
