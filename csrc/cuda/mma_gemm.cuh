#pragma once

#include <cstdint>
#include <string>

#include "cuda/timing.cuh"

namespace aibench_cuda {

// aibench's own tensor-core GEMM: row-major C(m,n) = A(m,k) * B(k,n), bf16 or fp16 in and
// out, fp32 accumulation (mma.sync m16n8k16). Any shape; needs compute capability >= 8.0.
// The buffers belong to the caller and must outlive the plan.
class MmaGemm : public CudaOp {
 public:
  MmaGemm(int device, std::int64_t m, std::int64_t n, std::int64_t k, const std::string& dtype,
          std::uintptr_t a, std::uintptr_t b, std::uintptr_t c);

  void launch(cudaStream_t stream) override;
  const std::string& describe() const { return describe_; }

 private:
  int m_, n_, k_;
  bool fp16_;
  bool aligned_;  // 16-byte rows and pointers: the cp.async path
  bool c_pairs_;  // C rows allow 4-byte (two-element) stores
  unsigned grid_;
  std::uintptr_t a_, b_, c_;
  std::string describe_;
};

}  // namespace aibench_cuda
