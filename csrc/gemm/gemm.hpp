// CPU GEMM, C = A·B, row-major, fp32 and fp64, in the GotoBLAS/BLIS structure:
//
//   for jc in n step NC:
//     for pc in k step KC:          pack B panel (KC x NC), shared by all threads (L3)
//       for ic in m step MC:        pack A block (MC x KC), one per thread (L2)  <- OpenMP
//         for jr in NC step NR:     B micro-panel (KC x NR), reused over ir      <- OpenMP too
//           for ir in MC step MR:                                                  when m is small
//             micro-kernel: C[MR x NR] += A micro-panel · B micro-panel over KC
//
// The loops and the packing are generic (gemm_driver.cpp, compiled without ISA flags);
// only the micro-kernel differs per ISA path (gemm_scalar.cpp, gemm_avx2.cpp,
// gemm_avx512.cpp, each compiled with its own flags and chosen at run time).
//
// Rule for the per-ISA files: they are compiled with different -m flags, so they must not
// define or instantiate any inline function or template with external linkage (an
// std::min<long>, a shared helper template...): the linker keeps one copy of such a
// function for the whole program, and that copy may contain AVX-512 instructions.
// Everything they define lives in an anonymous namespace; this header only declares.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/cpu_features.hpp"

namespace aibench::gemm {

using aibench::Isa;

// Block sizes in elements of k (kc) and of rows / columns (mr, nr, mc, nc). mr x nr is
// the register tile of the micro-kernel; kc, mc, nc size the packed A block (mc x kc, per
// thread, L2) and B panel (kc x nc, L3).
struct Blocking {
  int64_t mr, nr, kc, mc, nc;
};

// Blocks for a micro-kernel of mr x nr from the caches this CPU reports (cache_sizes),
// after the analytical model of BLIS (Low et al., "Analytical modeling is enough for
// high-performance BLIS", 2016), tuned on Zen 3: a B micro-panel (kc x nr) fills L1, the
// A block (mc x kc) L2 less two L1s, the B panel (kc x nc) a quarter of L3. lane_bytes is
// the size of one packed value (the widened one where packing widens). Defined in
// gemm_driver.cpp (no ISA flags), so that every ISA file may call it.
Blocking blocking_for_caches(int64_t mr, int64_t nr, int64_t lane_bytes);

// Micro-kernel contract. a_panel: kc steps of mr lanes (one column of the A micro-panel
// each step); b_panel: kc steps of nr lanes (one row of the B micro-panel). Both are
// zero-padded to full mr / nr (so the kernel has no edge cases). Writes the full mr x nr
// tile at c (row stride ldc): c = tile if !accumulate, c += tile if accumulate.
// A lane is one packed value: the element itself for fp32 / fp64 (and bf16 widened to
// fp32), a pair of k values as two int16 in 32 bits for int8 widened to int16 (then kc
// counts pairs).
template <class Lane, class Out = Lane>
using MicroKernel = void (*)(int64_t kc, const Lane* a_panel, const Lane* b_panel, Out* c,
                             int64_t ldc, bool accumulate);

// Matrix-vector kernels for the shapes where packing costs more than it saves (one row
// or one column of C: a decode step's GEMV). Both stream the matrix once, in memory order.
//   dot_rows:  y[i * incy] = sum_p a[i * lda + p] * x[p]      for i < rows   (n = 1)
//   axpy_rows: y[j] (+)= sum_p x[p] * b[p * ldb + j]          for j < cols   (m = 1)
//              (y = the sum if !accumulate, y += it if accumulate)
//   dot_cols:  c[i * ldc + j] = sum_p a[i * lda + p] * bt[j * k + p]   for i < rows, j < n
//              (a few columns of C, 2 <= n <= kFewColumns: bt is B transposed, n rows of k)
template <class T>
struct Gemv {
  void (*dot_rows)(int64_t rows, int64_t k, const T* a, int64_t lda, const T* x, T* y,
                   int64_t incy) = nullptr;
  void (*axpy_rows)(int64_t k, int64_t cols, const T* x, const T* b, int64_t ldb, T* y,
                    bool accumulate) = nullptr;
  void (*dot_cols)(int64_t rows, int64_t n, int64_t k, const T* a, int64_t lda, const T* bt,
                   T* c, int64_t ldc) = nullptr;
};

// Products of at most this many columns take Gemv::dot_cols where a path has it: the
// blocked loops pad every B micro-panel to nr columns (16 on avx2, 64 on avx512: 8-32x the
// work at n = 2) and pack all of A for a few FLOPs per element. Measured on Zen 4 (one
// thread, 4096 x n x 1024 fp32, own/OpenBLAS): blocked 0.18-0.50 for n = 2..32 on avx512,
// 0.33-0.58 on avx2; dot_cols 1.06-2.4 on avx512 and 0.89-3.0 on avx2 up to n = 32.
constexpr int64_t kFewColumns = 32;

template <class Lane, class Out = Lane>
struct KernelSpec {
  Blocking blocking;
  MicroKernel<Lane, Out> micro_kernel;
  Gemv<Lane> gemv{};  // empty: the blocked path serves one-row / one-column products too
};

// int8 widened to int16 pairs (VPMADDWD on AVX2): lanes of two int16 k values, int32 C.
using Int16PairKernelSpec = KernelSpec<uint32_t, int32_t>;

// One set of kernels per ISA path, defined in gemm_<isa>.cpp.
namespace scalar {
KernelSpec<float> fp32_kernel();
KernelSpec<double> fp64_kernel();
Int16PairKernelSpec int16_pair_kernel();
}  // namespace scalar
#if defined(__aarch64__)
namespace neon {  // the baseline path on aarch64 (gemm_neon.cpp)
KernelSpec<float> fp32_kernel();
KernelSpec<double> fp64_kernel();
}  // namespace neon
#endif
#if AIBENCH_X86
namespace avx2 {
KernelSpec<float> fp32_kernel();
KernelSpec<double> fp64_kernel();
Int16PairKernelSpec int16_pair_kernel();
Gemv<float> fp32_gemv();
Gemv<double> fp64_gemv();
}  // namespace avx2
namespace avx512 {
KernelSpec<float> fp32_kernel();
KernelSpec<double> fp64_kernel();
}  // namespace avx512
#endif

// ---- ISA selection (gemm_dispatch.cpp) ----

// What the fp32/fp64 kernels need (FMA on both paths), for aibench::available_isas,
// parse_isa, ... (common/cpu_features.hpp). The attention kernels need the same.
extern const IsaNeeds kIsaNeeds;

KernelSpec<float> fp32_kernel(Isa isa);
KernelSpec<double> fp64_kernel(Isa isa);
Int16PairKernelSpec int16_pair_kernel(Isa isa);  // avx512 takes the avx2 kernel

// ---- The blocked product (gemm_driver.cpp) ----

// C = A·B with A m x k, B k x n, C m x n, all row-major with leading dimensions (row
// strides, in elements) lda >= k, ldb >= n, ldc >= n. C must not overlap A or B.
// threads <= 0: OpenMP's default thread count.
void gemm(const KernelSpec<float>& kernel, int64_t m, int64_t n, int64_t k, const float* a,
          int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int threads);
void gemm(const KernelSpec<double>& kernel, int64_t m, int64_t n, int64_t k, const double* a,
          int64_t lda, const double* b, int64_t ldb, double* c, int64_t ldc, int threads);

// bf16 and int8 without dot-product instructions: the operands are widened while they
// are packed (the packing reads every value anyway), then the fp32 micro-kernel (bf16:
// bf16 -> fp32 is exact, fp32 FMA, fp32 accumulation) or the int16-pair kernel (int8:
// int8 -> int16 is exact, VPMADDWD sums two exact int16 products into int32: exact like
// VPDPBUSD) computes. bf16 output: the fp32 sum rounded once, to nearest even.
void gemm_bf16_widened(const KernelSpec<float>& kernel, int64_t m, int64_t n, int64_t k,
                       const uint16_t* a, int64_t lda, const uint16_t* b, int64_t ldb, float* c,
                       int64_t ldc, int threads);
void gemm_bf16_widened(const KernelSpec<float>& kernel, int64_t m, int64_t n, int64_t k,
                       const uint16_t* a, int64_t lda, const uint16_t* b, int64_t ldb,
                       uint16_t* c, int64_t ldc, int threads);
void gemm_int8_widened(const Int16PairKernelSpec& kernel, int64_t m, int64_t n, int64_t k,
                       const int8_t* a, int64_t lda, const int8_t* b, int64_t ldb, int32_t* c,
                       int64_t ldc, int threads);

// ---- Low-precision paths: bf16 and int8 dot-product instructions ----
//
// Same loops as above (gemm_lowp.cpp: driver and packing, no ISA flags), but the
// instructions reduce a small group of k at once, so the packed panels interleave k:
//   bf16 (VDPBF16PS, gemm_bf16.cpp): groups of 2 along k. Each 32-bit lane of A and B
//     holds the bf16 pair (k = 2q, 2q+1); each fp32 lane of C accumulates both products.
//   int8 (VPDPBUSD, gemm_int8.cpp): groups of 4 along k, unsigned x signed bytes. The
//     s8 A is packed as u8 = a + 128 (a ^ 0x80) and the extra 128 * sum_k B[k][j] is
//     taken off again: the packed B micro-panel carries -128 * its column sums (see
//     Int8MicroKernel), which start the int32 accumulators. Exact: every step is int32
//     arithmetic modulo 2^32 (VPDPBUSD wraps, it does not saturate), so C is exact
//     whenever the true product fits in int32, like any int32-accumulating GEMM.
// A micro-panel: kq groups of mr 32-bit lanes; B micro-panel: kq groups of nr 32-bit
// lanes (zero-padded past k, mr and nr like the fp32 panels). Blocking.kc is in elements
// of k and a multiple of the group.

// bf16 x bf16 -> fp32 tile, c = tile or c += tile (as MicroKernel).
using Bf16MicroKernel = void (*)(int64_t kq, const uint32_t* a_panel, const uint32_t* b_panel,
                                 float* c, int64_t ldc, bool accumulate);
// bf16 x bf16 -> bf16 tile: c = bf16_rne(tile + acc) with acc an fp32 tile (row stride
// ld_acc) holding the sum over the earlier k blocks, or c = bf16_rne(tile) if acc is null.
using Bf16OutMicroKernel = void (*)(int64_t kq, const uint32_t* a_panel,
                                    const uint32_t* b_panel, const float* acc, int64_t ld_acc,
                                    uint16_t* c, int64_t ldc);
// s8 x s8 -> int32 tile. b_panel is followed by nr int32 values: -128 * the column sums
// of this k block of B (the u8 correction); the tile starts from them.
using Int8MicroKernel = void (*)(int64_t kq, const uint32_t* a_panel, const uint32_t* b_panel,
                                 int32_t* c, int64_t ldc, bool accumulate);

struct Bf16KernelSpec {
  Blocking blocking;
  Bf16MicroKernel micro_kernel;
  Bf16OutMicroKernel micro_kernel_bf16_out;
};

struct Int8KernelSpec {
  Blocking blocking;
  Int8MicroKernel micro_kernel;
};

#if AIBENCH_X86
namespace avx512_bf16 {
Bf16KernelSpec bf16_kernel();
// Register-only loops of rate_loop_accumulators() independent VDPBF16PS / fp32
// VFMADD231PS (zmm) per iteration, for bf16_dot_over_fma.
double dot_rate_loop(int64_t iters);
double fma_rate_loop(int64_t iters);
int rate_loop_accumulators();
}  // namespace avx512_bf16
namespace avx512_vnni {
Int8KernelSpec int8_kernel();
}  // namespace avx512_vnni
#endif

// Paths of dtype "bf16" or "int8" this CPU (and build) can run under the AIBENCH_CPU_ISA
// cap, best first. The native dot-product paths are "avx512_bf16" (VDPBF16PS) and
// "avx512_vnni" (VPDPBUSD); the others are ISA paths ("avx512", "avx2", "scalar") that
// widen (gemm_bf16_widened, gemm_int8_widened; int8 on "avx512" uses the avx2 kernel).
//
// bf16: the native path comes first only where VDPBF16PS outruns the fp32 FMA that the
// widening avx512 path uses (Zen 4: 2x its FLOPs). A core whose VDPBF16PS does fewer
// FLOPs per second than its fp32 FMA (bf16_dot_over_fma below kNativeBf16MinRatio) lists
// it after avx512: there the widened product is the faster one.
std::vector<std::string> lowp_paths(const std::string& dtype);
constexpr double kNativeBf16MinRatio = 0.75;
// VDPBF16PS FLOP/s over fp32 VFMADD231PS (zmm) FLOP/s on one core: register-only loops,
// the best of interleaved windows, measured once per process (about 20 ms). Both rates
// in GFLOP/s too. Zeros where the CPU lacks AVX512_BF16.
struct DotOverFma {
  double dot_gflops = 0, fma_gflops = 0, ratio = 0;
};
DotOverFma bf16_dot_over_fma();
bool is_native_lowp_path(const std::string& path);
// Kernels of a native path ("auto" = the native path when the CPU has it). Throw
// std::invalid_argument for an unknown path or one this CPU cannot run.
Bf16KernelSpec bf16_kernel(const std::string& isa);
Int8KernelSpec int8_kernel(const std::string& isa);

// C = A·B with A, B bf16 bits (uint16), row-major as above; C fp32 or bf16 (rounded once,
// to nearest even, from the fp32 sum over the whole k).
void gemm_bf16(const Bf16KernelSpec& kernel, int64_t m, int64_t n, int64_t k,
               const uint16_t* a, int64_t lda, const uint16_t* b, int64_t ldb, float* c,
               int64_t ldc, int threads);
void gemm_bf16(const Bf16KernelSpec& kernel, int64_t m, int64_t n, int64_t k,
               const uint16_t* a, int64_t lda, const uint16_t* b, int64_t ldb, uint16_t* c,
               int64_t ldc, int threads);
// C (int32) = A·B with A, B int8.
void gemm_int8(const Int8KernelSpec& kernel, int64_t m, int64_t n, int64_t k, const int8_t* a,
               int64_t lda, const int8_t* b, int64_t ldb, int32_t* c, int64_t ldc, int threads);

}  // namespace aibench::gemm
