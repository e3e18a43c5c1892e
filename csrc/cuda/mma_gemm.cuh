#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "cuda/timing.cuh"

namespace aibench_cuda {

class WgmmaGemm;

// aibench's own tensor-core GEMM: row-major C(m,n) = A(m,k) * B(k,n), bf16 or fp16 in and
// out, fp32 accumulation. Any shape; needs compute capability >= 8.0.
// The buffers belong to the caller and must outlive the plan.
//
// variant picks the kernel:
//   "mma_sync": mma.sync m16n8k16 with a cp.async pipeline (mma_gemm.cu), any cc >= 8.0.
//   "wgmma":    Hopper wgmma + TMA (wgmma_gemm.cu); needs compute capability 9.0, a module
//               built with sm_90a, k and n multiples of 8 and 16-byte aligned A and B, else
//               the constructor raises (ValueError for the shape, CudaError for the rest).
//   "auto":     wgmma where it can run, mma_sync otherwise. The environment variable
//               AIBENCH_MMA_GEMM_VARIANT, when set to one of the three, replaces "auto".
// describe() names the kernel that runs.
class MmaGemm : public CudaOp {
 public:
  MmaGemm(int device, std::int64_t m, std::int64_t n, std::int64_t k, const std::string& dtype,
          std::uintptr_t a, std::uintptr_t b, std::uintptr_t c,
          const std::string& variant = "auto");
  ~MmaGemm() override;

  void launch(cudaStream_t stream) override;
  const std::string& describe() const { return describe_; }

 private:
  std::unique_ptr<WgmmaGemm> wgmma_;  // set when the wgmma kernel runs
  int m_, n_, k_;
  bool fp16_;
  bool aligned_;  // 16-byte rows and pointers: the cp.async path
  bool c_pairs_;  // C rows allow 4-byte (two-element) stores
  unsigned grid_;
  std::uintptr_t a_, b_, c_;
  std::string describe_;
};

}  // namespace aibench_cuda
