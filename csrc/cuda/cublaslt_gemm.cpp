// cuBLASLt GEMM: the vendor library's figure for every aibench dtype.
//
// Layout mapping. cuBLASLt is column-major; aibench's matrices are row-major. A row-major
// (r x c) matrix read column-major is its transpose (c x r, ld c), so C = A*B is computed as
// C^T (n x m, ld n) = B^T * A^T with the operands swapped:
//   cuBLASLt A := our B.  "kn": B (k,n) row-major reads as B^T (n x k, ld n), op N.
//                         "nk": B (n,k) row-major reads as B (k x n, ld k), op T.
//   cuBLASLt B := our A.  A (m,k) row-major reads as A^T (k x m, ld k), op N.
// So b_layout "nk" is cuBLASLt's "TN" layout, the only one fp8 and int8 kernels accept.
#include "cuda/cublaslt_gemm.cuh"

#include <algorithm>
#include <climits>
#include <cstdio>

namespace aibench_cuda {
namespace {

constexpr std::size_t kWorkspaceBytes = 32u << 20;

struct TypeSet {
  cudaDataType_t ab, cd, scale;
  cublasComputeType_t compute;
};

TypeSet types_for(DType dtype) {
  switch (dtype) {
    case DType::fp64: return {CUDA_R_64F, CUDA_R_64F, CUDA_R_64F, CUBLAS_COMPUTE_64F};
    case DType::fp32: return {CUDA_R_32F, CUDA_R_32F, CUDA_R_32F, CUBLAS_COMPUTE_32F};
    case DType::tf32: return {CUDA_R_32F, CUDA_R_32F, CUDA_R_32F, CUBLAS_COMPUTE_32F_FAST_TF32};
    case DType::bf16: return {CUDA_R_16BF, CUDA_R_16BF, CUDA_R_32F, CUBLAS_COMPUTE_32F};
    case DType::fp16: return {CUDA_R_16F, CUDA_R_16F, CUDA_R_32F, CUBLAS_COMPUTE_32F};
    case DType::fp8: return {CUDA_R_8F_E4M3, CUDA_R_16BF, CUDA_R_32F, CUBLAS_COMPUTE_32F};
    case DType::int8: return {CUDA_R_8I, CUDA_R_32I, CUDA_R_32I, CUBLAS_COMPUTE_32I};
  }
  throw_value("unsupported dtype");
}

std::size_t output_size(DType dtype) {
  switch (dtype) {
    case DType::fp8: return 2;   // bf16 out
    case DType::int8: return 4;  // int32 out
    default: return dtype_size(dtype);
  }
}

// Names of cublasLtMatmulTile_t / cublasLtMatmulStages_t values (the common ones).
const char* const kTiles[] = {
    "undefined", "8x8",     "8x16",    "16x8",    "8x32",    "16x16",   "32x8",
    "8x64",      "16x32",   "32x16",   "64x8",    "32x32",   "32x64",   "64x32",
    "32x128",    "64x64",   "128x32",  "64x128",  "128x64",  "64x256",  "128x128",
    "256x64",    "64x512",  "128x256", "256x128", "512x64",  "64x96",   "96x64",
    "96x128",    "128x160", "160x128", "192x128", "128x192", "128x96",  "32x256",
    "256x32"};
const char* const kStages[] = {
    "undefined", "16x1",  "16x2",  "16x3",  "16x4",  "16x5",   "16x6",  "32x1",
    "32x2",      "32x3",  "32x4",  "32x5",  "32x6",  "64x1",   "64x2",  "64x3",
    "64x4",      "64x5",  "64x6",  "128x1", "128x2", "128x3",  "128x4", "128x5",
    "128x6",     "32x10", "8x4",   "16x10", "8x5"};

template <std::size_t N>
std::string enum_name(const char* const (&names)[N], long long id) {
  if (id >= 0 && static_cast<std::size_t>(id) < N) return names[id];
  return "#" + std::to_string(id);
}

// One algorithm attribute as a number (0 when the library does not report it).
template <typename T>
long long algo_config(const cublasLtMatmulAlgo_t& algo, cublasLtMatmulAlgoConfigAttributes_t attr) {
  T value{};
  std::size_t written = 0;
  if (cublasLtMatmulAlgoConfigGetAttribute(&algo, attr, &value, sizeof(value), &written) !=
      CUBLAS_STATUS_SUCCESS)
    return 0;
  return static_cast<long long>(value);
}

std::string describe_algo(const cublasLtMatmulHeuristicResult_t& r) {
  const cublasLtMatmulAlgo_t& a = r.algo;
  const long long id = algo_config<std::int32_t>(a, CUBLASLT_ALGO_CONFIG_ID);
  const long long tile = algo_config<std::uint32_t>(a, CUBLASLT_ALGO_CONFIG_TILE_ID);
  const long long stages = algo_config<std::uint32_t>(a, CUBLASLT_ALGO_CONFIG_STAGES_ID);
  const long long splitk = algo_config<std::int32_t>(a, CUBLASLT_ALGO_CONFIG_SPLITK_NUM);
  const long long reduction = algo_config<std::uint32_t>(a, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME);
  const long long swizzle = algo_config<std::uint32_t>(a, CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING);
  const long long cluster = algo_config<std::uint16_t>(a, CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID);
  char buf[320];
  std::snprintf(buf, sizeof(buf),
                "algo=%lld tile=%s stages=%s splitk=%lld reduction=%lld swizzle=%lld "
                "cluster=%lld workspace=%zu waves=%.2f",
                id, enum_name(kTiles, tile).c_str(), enum_name(kStages, stages).c_str(), splitk,
                reduction, swizzle, cluster, r.workspaceSize, static_cast<double>(r.wavesCount));
  return buf;
}

template <typename T>
void set_desc(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr, T value) {
  AIBENCH_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, attr, &value, sizeof(value)));
}

template <typename T>
void set_pref(cublasLtMatmulPreference_t pref, cublasLtMatmulPreferenceAttributes_t attr, T value) {
  AIBENCH_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, attr, &value, sizeof(value)));
}

}  // namespace

CublasLtGemm::CublasLtGemm(int device, std::int64_t m, std::int64_t n, std::int64_t k,
                           const std::string& dtype, std::uintptr_t a, std::uintptr_t b,
                           std::uintptr_t c, const std::string& b_layout)
    : CudaOp(device), dtype_(parse_dtype(dtype)), a_(a), b_(b), c_(c) {
  const std::string shape = std::string(dtype_name(dtype_)) + " m=" + std::to_string(m) +
                            " n=" + std::to_string(n) + " k=" + std::to_string(k) +
                            " b_layout=" + b_layout;
  if (m < 1 || n < 1 || k < 1 || m > INT_MAX || n > INT_MAX || k > INT_MAX)
    throw_value("CublasLtGemm needs 1 <= m, n, k <= 2^31-1, got " + shape);
  if (b_layout != "kn" && b_layout != "nk")
    throw_value("b_layout must be 'kn' or 'nk', got '" + b_layout + "'");
  const bool nk = b_layout == "nk";
  if (!a || !b || !c) throw_value("CublasLtGemm: null pointer");
  const bool low = dtype_ == DType::fp8 || dtype_ == DType::int8;
  if (low && !nk)
    throw_value(std::string(dtype_name(dtype_)) +
                " GEMM needs b_layout='nk' (cuBLASLt runs it only in the TN layout)");
  // cuBLASLt's documented rules for fp8 (16-byte aligned rows and pointers) and int8
  // (IMMA: dimensions and leading dimensions multiples of 4): checked here so that an
  // unsupported shape is a clear error, never a silent fallback.
  std::size_t need_align = dtype_size(dtype_);
  if (dtype_ == DType::fp8) {
    if (k % 16 != 0 || n % 16 != 0)
      throw_value("fp8 GEMM needs k and n multiples of 16, got " + shape);
    need_align = 16;
  }
  if (dtype_ == DType::int8) {
    if (k % 4 != 0 || n % 4 != 0)
      throw_value("int8 GEMM needs k and n multiples of 4, got " + shape);
    need_align = 4;
  }
  if (a % need_align != 0 || b % need_align != 0 || c % std::max(need_align, output_size(dtype_)) != 0)
    throw_value("CublasLtGemm: pointers must be " + std::to_string(need_align) +
                "-byte aligned for " + dtype_name(dtype_));

  check_device(device);
  DeviceGuard guard(device);
  const int cc = compute_capability(device);
  const std::string cc_text = std::to_string(cc / 10) + "." + std::to_string(cc % 10);
  if (dtype_ == DType::fp8 && cc < 89)
    throw_unsupported("fp8 GEMM needs compute capability >= 8.9, device " +
                          std::to_string(device) + " has " + cc_text,
                      "CublasLtGemm");
  if ((dtype_ == DType::bf16 || dtype_ == DType::tf32) && cc < 80)
    throw_unsupported(std::string(dtype_name(dtype_)) +
                          " GEMM needs compute capability >= 8.0, device " +
                          std::to_string(device) + " has " + cc_text,
                      "CublasLtGemm");

  try {
    const TypeSet t = types_for(dtype_);
    AIBENCH_CUBLAS_CHECK(cublasLtCreate(&handle_));
    AIBENCH_CUBLAS_CHECK(cublasLtMatmulDescCreate(&op_desc_, t.compute, t.scale));
    set_desc<cublasOperation_t>(op_desc_, CUBLASLT_MATMUL_DESC_TRANSA, nk ? CUBLAS_OP_T : CUBLAS_OP_N);
    set_desc<cublasOperation_t>(op_desc_, CUBLASLT_MATMUL_DESC_TRANSB, CUBLAS_OP_N);
    if (nk)
      AIBENCH_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&layout_a_, t.ab, k, n, k));
    else
      AIBENCH_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&layout_a_, t.ab, n, k, n));
    AIBENCH_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&layout_b_, t.ab, k, m, k));
    AIBENCH_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&layout_c_, t.cd, n, m, n));

    AIBENCH_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref_));
    set_pref<std::uint64_t>(pref_, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, kWorkspaceBytes);
    // The heuristic assumes 256-byte aligned buffers unless told otherwise.
    set_pref<std::uint32_t>(pref_, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, pointer_alignment(b_));
    set_pref<std::uint32_t>(pref_, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, pointer_alignment(a_));
    set_pref<std::uint32_t>(pref_, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, pointer_alignment(c_));
    set_pref<std::uint32_t>(pref_, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, pointer_alignment(c_));

    AIBENCH_CUDA_CHECK(cudaMalloc(&workspace_, kWorkspaceBytes));
    workspace_bytes_ = kWorkspaceBytes;

    cublasLtMatmulHeuristicResult_t results[8] = {};
    int returned = 0;
    cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(handle_, op_desc_, layout_a_, layout_b_,
                                                       layout_c_, layout_c_, pref_, 8, results,
                                                       &returned);
    if (st != CUBLAS_STATUS_SUCCESS && st != CUBLAS_STATUS_NOT_SUPPORTED)
      throw_cublas(st, "cublasLtMatmulAlgoGetHeuristic");
    int chosen = -1;
    for (int i = 0; st == CUBLAS_STATUS_SUCCESS && i < returned && i < 8; ++i) {
      if (results[i].state == CUBLAS_STATUS_SUCCESS && results[i].workspaceSize <= kWorkspaceBytes) {
        chosen = i;
        break;
      }
    }
    if (chosen < 0)
      throw CudaError("CUBLAS_STATUS_NOT_SUPPORTED: no cuBLASLt algorithm for " + shape +
                      " on compute capability " + cc_text + " (in cublasLtMatmulAlgoGetHeuristic)");
    algo_ = results[chosen].algo;
    algo_info_ = describe_algo(results[chosen]);
  } catch (...) {
    release();
    throw;
  }
}

void CublasLtGemm::launch(cudaStream_t stream) {
  const double one_d = 1.0, zero_d = 0.0;
  const float one_f = 1.0f, zero_f = 0.0f;
  const std::int32_t one_i = 1, zero_i = 0;
  const void* alpha = &one_f;
  const void* beta = &zero_f;
  if (dtype_ == DType::fp64) {
    alpha = &one_d;
    beta = &zero_d;
  } else if (dtype_ == DType::int8) {
    alpha = &one_i;
    beta = &zero_i;
  }
  AIBENCH_CUBLAS_CHECK(cublasLtMatmul(handle_, op_desc_, alpha, reinterpret_cast<const void*>(b_),
                                      layout_a_, reinterpret_cast<const void*>(a_), layout_b_, beta,
                                      reinterpret_cast<const void*>(c_), layout_c_,
                                      reinterpret_cast<void*>(c_), layout_c_, &algo_, workspace_,
                                      workspace_bytes_, stream));
}

void CublasLtGemm::release() noexcept {
  if (workspace_) (void)cudaFree(workspace_);
  if (pref_) (void)cublasLtMatmulPreferenceDestroy(pref_);
  if (layout_c_) (void)cublasLtMatrixLayoutDestroy(layout_c_);
  if (layout_b_) (void)cublasLtMatrixLayoutDestroy(layout_b_);
  if (layout_a_) (void)cublasLtMatrixLayoutDestroy(layout_a_);
  if (op_desc_) (void)cublasLtMatmulDescDestroy(op_desc_);
  if (handle_) (void)cublasLtDestroy(handle_);
  workspace_ = nullptr;
  pref_ = nullptr;
  layout_a_ = layout_b_ = layout_c_ = nullptr;
  op_desc_ = nullptr;
  handle_ = nullptr;
}

CublasLtGemm::~CublasLtGemm() {
  // The workspace belongs to this plan's device; errors at interpreter exit are ignored.
  int previous = -1;
  bool switched = cudaGetDevice(&previous) == cudaSuccess && previous != device() &&
                  cudaSetDevice(device()) == cudaSuccess;
  release();
  if (switched) (void)cudaSetDevice(previous);
  (void)cudaGetLastError();
}

}  // namespace aibench_cuda
