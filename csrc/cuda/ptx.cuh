// Device helpers shared byte for byte by the tensor-core kernels (flash_attn.cu,
// mma_gemm.cu, wgmma_gemm.cu): inline-PTX wrappers of the Ampere-style data path and the
// bf16/fp16 pair store of the epilogues. Internal linkage, as when each .cu had its own copy.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstddef>
#include <cstdint>

namespace aibench_cuda {
namespace {

__device__ __forceinline__ void cp_async_16(std::uint32_t dst, const void* src, bool pred) {
  const int src_bytes = pred ? 16 : 0;  // 0: nothing read, 16 zero bytes written
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
               "r"(src_bytes)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
__device__ __forceinline__ void ldmatrix_x4(std::uint32_t (&r)[4], std::uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans(std::uint32_t (&r)[4], std::uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

template <bool FP16>
__device__ __forceinline__ void mma_16816(float (&d)[4], const std::uint32_t (&a)[4],
                                          std::uint32_t b0, std::uint32_t b1) {
  if constexpr (FP16) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// One pair of C elements from fp32 accumulators, rounded to nearest; bounds-checked.
template <bool FP16>
__device__ __forceinline__ void store_pair(void* C, int M, int N, int row, int col, float v0,
                                           float v1, bool pairs) {
  if (row >= M || col >= N) return;
  const std::size_t at = static_cast<std::size_t>(row) * N + col;
  if constexpr (FP16) {
    __half* p = static_cast<__half*>(C) + at;
    if (pairs) {  // N even, col even, C 4-byte aligned: col + 1 < N and an aligned pair
      *reinterpret_cast<__half2*>(p) = __floats2half2_rn(v0, v1);
    } else {
      p[0] = __float2half_rn(v0);
      if (col + 1 < N) p[1] = __float2half_rn(v1);
    }
  } else {
    __nv_bfloat16* p = static_cast<__nv_bfloat16*>(C) + at;
    if (pairs) {
      *reinterpret_cast<__nv_bfloat162*>(p) = __floats2bfloat162_rn(v0, v1);
    } else {
      p[0] = __float2bfloat16_rn(v0);
      if (col + 1 < N) p[1] = __float2bfloat16_rn(v1);
    }
  }
}

}  // namespace
}  // namespace aibench_cuda
