#pragma once

#include <cstdint>
#include <string>

#include "cuda/timing.cuh"

namespace aibench_cuda {

// aibench's own FlashAttention-2 style forward kernel (mma.sync, sm_80 and later):
//   O = softmax(Q K^T * scale + mask) V
// q and o are (batch, heads, seqlen_q, head_dim), k and v (batch, kv_heads, seqlen_k,
// head_dim), all row-major contiguous, bf16 or fp16; fp32 accumulation and softmax. Query
// head h reads kv head h / (heads / kv_heads) (grouped-query attention). The causal mask is
// aligned bottom-right: query i sees keys j <= i + seqlen_k - seqlen_q; a query row that
// sees no key gets zeros. head_dim 64 or 128; any seqlen >= 1. The buffers belong to the
// caller and must outlive the plan; pointers must be 16-byte aligned.
//
// Arguments are validated before any CUDA call (std::invalid_argument -> ValueError).
class FlashAttention : public CudaOp {
 public:
  FlashAttention(int device, std::int64_t batch, std::int64_t heads, std::int64_t kv_heads,
                 std::int64_t seqlen_q, std::int64_t seqlen_k, std::int64_t head_dim,
                 const std::string& dtype, bool causal, double scale, std::uintptr_t q,
                 std::uintptr_t k, std::uintptr_t v, std::uintptr_t o);

  void launch(cudaStream_t stream) override;
  const std::string& describe() const { return describe_; }

 private:
  int batch_, heads_, group_, seqlen_q_, seqlen_k_, head_dim_;
  bool fp16_, causal_;
  float scale_log2_;  // scale * log2(e): softmax runs on exp2
  unsigned grid_x_;   // query tiles
  std::uintptr_t q_, k_, v_, o_;
  std::string describe_;
};

}  // namespace aibench_cuda
