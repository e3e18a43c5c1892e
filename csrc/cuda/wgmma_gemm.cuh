// aibench's Hopper GEMM (wgmma + TMA), the sm_90a path of MmaGemm (mma_gemm.cu).
// Host-only interface: safe to include from C++ and CUDA files alike.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <string>

namespace aibench_cuda {
namespace wgmma_cfg {

constexpr int BM = 128;           // block tile rows (M): two consumer warpgroups of 64 rows
constexpr int BN = 256;           // block tile columns (N): one wgmma m64n256k16 per k16 step
constexpr int BK = 64;            // k per stage: 64 16-bit elements = one 128-byte swizzle row
constexpr int STAGES = 4;         // TMA -> wgmma pipeline depth
constexpr int CONSUMERS = 2;      // consumer warpgroups
constexpr int THREADS = 128 * (1 + CONSUMERS);  // warpgroup 0 produces, 1..2 consume
constexpr int B_BOX_N = 64;       // a 128-byte swizzle atom is 64 elements of N wide
constexpr int A_STAGE_BYTES = BM * BK * 2;      // 16 KiB: 128 rows of 128 bytes
constexpr int B_BOX_BYTES = BK * B_BOX_N * 2;   // 8 KiB: 64 k rows of 128 bytes
constexpr int B_STAGE_BYTES = BK * BN * 2;      // 32 KiB: BN / B_BOX_N boxes
constexpr int STAGE_BYTES = A_STAGE_BYTES + B_STAGE_BYTES;
// +1024: the dynamic buffer is rounded up to a 1024-byte boundary (128B-swizzle atoms).
constexpr int SMEM_BYTES = STAGES * STAGE_BYTES + 1024;
static_assert(STAGE_BYTES % 1024 == 0 && A_STAGE_BYTES % 1024 == 0 && B_BOX_BYTES % 1024 == 0,
              "every tile must start on a 1024-byte boundary");
static_assert(BN % B_BOX_N == 0, "B is loaded in 64-column boxes");

}  // namespace wgmma_cfg

// True when this module was compiled with sm_90a code (CMake defines AIBENCH_HAVE_SM90A when
// AIBENCH_CUDA_ARCHITECTURES names 90a).
bool wgmma_gemm_built();

// Empty when the wgmma kernel can run on `device` (compute capability 9.0, sm_90a code in the
// module and loaded for this device, enough shared memory); otherwise why not.
// The device must be current.
std::string wgmma_gemm_unavailable_reason(int device);

// One planned launch of the wgmma kernel. The caller (MmaGemm) has validated the shape
// (1 <= m, n, k <= 2^30), the dtype, and the wgmma requirements: k % 8 == 0, n % 8 == 0,
// a and b 16-byte aligned (TMA needs 16-byte global strides and addresses).
class WgmmaGemm {
 public:
  WgmmaGemm(int m, int n, int k, bool fp16, std::uintptr_t a, std::uintptr_t b, std::uintptr_t c,
            bool c_pairs, unsigned grid);
  ~WgmmaGemm();
  WgmmaGemm(const WgmmaGemm&) = delete;
  WgmmaGemm& operator=(const WgmmaGemm&) = delete;

  void launch(cudaStream_t stream);
  const std::string& describe() const { return describe_; }

 private:
  struct Maps;  // the two CUtensorMap (cuda.h stays out of this header)
  std::unique_ptr<Maps> maps_;
  int m_, n_, k_;
  bool fp16_;
  bool c_pairs_;
  unsigned grid_;
  std::uintptr_t c_;
  std::string describe_;
};

}  // namespace aibench_cuda
