// Scalar reduce path (any CPU). Compiled without ISA flags.
#include "collectives/reduce.hpp"
#include "collectives/reduce_scalar_ops.hpp"

namespace aibench::collectives::scalar {
namespace {

void sum_fp32(void* out, const void* a, const void* b, int64_t n) {
  sum_tail_fp32(static_cast<float*>(out), static_cast<const float*>(a), static_cast<const float*>(b), 0, n);
}
void sum_fp64(void* out, const void* a, const void* b, int64_t n) {
  sum_tail_fp64(static_cast<double*>(out), static_cast<const double*>(a), static_cast<const double*>(b), 0, n);
}
void sum_bf16(void* out, const void* a, const void* b, int64_t n) {
  sum_tail_bf16(static_cast<uint16_t*>(out), static_cast<const uint16_t*>(a), static_cast<const uint16_t*>(b), 0, n);
}
void sum_fp16(void* out, const void* a, const void* b, int64_t n) {
  sum_tail_fp16(static_cast<uint16_t*>(out), static_cast<const uint16_t*>(a), static_cast<const uint16_t*>(b), 0, n);
}

}  // namespace

SumKernels sum_kernels() { return {&sum_fp32, &sum_fp64, &sum_bf16, &sum_fp16}; }

}  // namespace aibench::collectives::scalar
