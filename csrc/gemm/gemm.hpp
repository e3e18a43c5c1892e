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

namespace aibench::gemm {

enum class Isa { scalar, avx2, avx512 };

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

// ISA paths this CPU can run, slowest first.
std::vector<Isa> available_isas();
Isa best_isa();
const char* isa_name(Isa isa);
// "scalar", "avx2", "avx512" or "auto" (= best_isa()). Throws std::invalid_argument for an
// unknown name or an ISA this CPU (or this build) cannot run.
Isa parse_isa(const std::string& name);

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

}  // namespace aibench::gemm
