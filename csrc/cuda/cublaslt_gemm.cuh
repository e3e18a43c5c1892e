#pragma once

#include <cstdint>
#include <string>

#include "cuda/timing.cuh"

namespace aibench_cuda {

// Row-major C(m,n) = A(m,k) * B through cuBLASLt, B stored (k,n) for b_layout "kn" or
// (n,k) for "nk". alpha = 1, beta = 0; the algorithm is cuBLASLt's first heuristic choice.
// The buffers belong to the caller and must outlive the plan.
class CublasLtGemm : public CudaOp {
 public:
  CublasLtGemm(int device, std::int64_t m, std::int64_t n, std::int64_t k, const std::string& dtype,
               std::uintptr_t a, std::uintptr_t b, std::uintptr_t c, const std::string& b_layout);
  ~CublasLtGemm() override;

  void launch(cudaStream_t stream) override;
  const std::string& algo_info() const { return algo_info_; }

 private:
  void release() noexcept;

  DType dtype_;
  std::uintptr_t a_, b_, c_;
  cublasLtHandle_t handle_ = nullptr;
  cublasLtMatmulDesc_t op_desc_ = nullptr;
  cublasLtMatrixLayout_t layout_a_ = nullptr;  // cuBLASLt's A: our B
  cublasLtMatrixLayout_t layout_b_ = nullptr;  // cuBLASLt's B: our A
  cublasLtMatrixLayout_t layout_c_ = nullptr;
  cublasLtMatmulPreference_t pref_ = nullptr;
  cublasLtMatmulAlgo_t algo_{};
  void* workspace_ = nullptr;
  std::size_t workspace_bytes_ = 0;
  std::string algo_info_;
};

}  // namespace aibench_cuda
