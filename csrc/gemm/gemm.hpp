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

// Block sizes in elements. mr x nr is the register tile of the micro-kernel; kc, mc, nc
// size the packed A block (mc x kc, per thread, L2) and B panel (kc x nc, shared, L3).
struct Blocking {
  int64_t mr, nr, kc, mc, nc;
};

// Micro-kernel contract. a_panel: kc steps of mr values (one column of the A micro-panel
// each step); b_panel: kc steps of nr values (one row of the B micro-panel). Both are
// zero-padded to full mr / nr (so the kernel has no edge cases). Writes the full mr x nr tile at c
// (row stride ldc): c = tile if !accumulate, c += tile if accumulate.
template <class T>
using MicroKernel = void (*)(int64_t kc, const T* a_panel, const T* b_panel, T* c,
                             int64_t ldc, bool accumulate);

template <class T>
struct KernelSpec {
  Blocking blocking;
  MicroKernel<T> micro_kernel;
};

// One pair of kernels per ISA path, defined in gemm_<isa>.cpp.
namespace scalar {
KernelSpec<float> fp32_kernel();
KernelSpec<double> fp64_kernel();
}  // namespace scalar
#if AIBENCH_X86
namespace avx2 {
KernelSpec<float> fp32_kernel();
KernelSpec<double> fp64_kernel();
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

// ---- The blocked product (gemm_driver.cpp) ----

// C = A·B with A m x k, B k x n, C m x n, all row-major with leading dimensions (row
// strides, in elements) lda >= k, ldb >= n, ldc >= n. C must not overlap A or B.
// threads <= 0: OpenMP's default thread count.
void gemm(const KernelSpec<float>& kernel, int64_t m, int64_t n, int64_t k, const float* a,
          int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int threads);
void gemm(const KernelSpec<double>& kernel, int64_t m, int64_t n, int64_t k, const double* a,
          int64_t lda, const double* b, int64_t ldb, double* c, int64_t ldc, int threads);

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
}  // namespace avx512_bf16
namespace avx512_vnni {
Int8KernelSpec int8_kernel();
}  // namespace avx512_vnni
#endif

// Paths of dtype "bf16" or "int8" this CPU (and build) can run, best first: "avx512_bf16"
// and "avx512_vnni". Empty where the CPU lacks the instructions (no emulation is offered).
std::vector<std::string> lowp_paths(const std::string& dtype);
// Kernels of a path ("auto" = the first of lowp_paths). Throw std::invalid_argument for
// an unknown path or one this CPU cannot run.
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
