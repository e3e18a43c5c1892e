// AVX-512F fp32 attention tile (compiled with -mavx512f -mavx512dq -mavx512bw -mavx512vl
// -mfma). Everything here is in an anonymous namespace: see the ODR rule in gemm/gemm.hpp.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "attention/attention.hpp"

namespace aibench::attention::avx512 {
namespace {

#include "attention/attention_vec_avx512.inc"
#include "attention/attention_simd.inc"

void tile(const Problem& p, const VLayout& vl, int64_t b, int64_t h, int64_t q0, void* scratch) {
  fp32_tile(p, vl, b, h, q0, scratch);
}

}  // namespace

Kernel fp32_kernel() { return {&tile, &fp32_scratch_bytes, nullptr, kPadD}; }

}  // namespace aibench::attention::avx512
