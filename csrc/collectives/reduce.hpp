// Local reduction of the interconnect suite's own all-reduce: out[i] = a[i] + b[i].
//
// fp32 and fp64 add in their own precision; bf16 and fp16 are widened to fp32, added in
// fp32 and rounded back to nearest-even (the "fp32 accumulation then rounding" of NCCL and
// of MPI libraries that reduce 16-bit floats). Every ISA path gives bit-identical results
// (NaN payloads aside), which tests/test_interconnect_reduce.py checks against numpy.
//
// Each ISA path (scalar, AVX2+F16C, AVX-512F/BW) lives in its own translation unit compiled
// with that ISA's flags and is chosen at run time (reduce_dispatch.cpp), as in csrc/gemm.
// The ODR rule of gemm.hpp applies: the per-ISA files define everything in an anonymous
// namespace; this header only declares (the scalar helpers of reduce_scalar_ops.hpp have
// internal linkage, so each file gets its own copy built with its own flags).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/cpu_features.hpp"

namespace aibench::collectives {

enum class Dtype { fp32, fp64, bf16, fp16 };
using aibench::Isa;

// out[i] = a[i] + b[i] for 0 <= i < n. out may be the same pointer as a or b (in-place
// accumulation); any other overlap is undefined.
using SumFn = void (*)(void* out, const void* a, const void* b, int64_t n);

struct SumKernels {
  SumFn fp32, fp64, bf16, fp16;
};

namespace scalar {
SumKernels sum_kernels();
}
#if AIBENCH_X86
namespace avx2 {
SumKernels sum_kernels();
}
namespace avx512 {
SumKernels sum_kernels();
}
#endif

// What the reduce kernels need (F16C for the AVX2 fp16 path), for aibench::parse_isa etc.
// (common/cpu_features.hpp); its errors say "reduce ISA path".
extern const IsaNeeds kIsaNeeds;
// "fp32", "fp64", "bf16" or "fp16"; std::invalid_argument otherwise.
Dtype parse_dtype(const std::string& name);
int dtype_size(Dtype dtype);
SumFn sum_kernel(Isa isa, Dtype dtype);

}  // namespace aibench::collectives
