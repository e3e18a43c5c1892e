// Kernel selection and the OpenMP loop of the attention forward, shared by every path.
// Compiled without ISA flags: only the tile kernels behind the function pointers use
// the wide vectors.
#include "attention/attention.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include <omp.h>

#include "common/bf16.hpp"
#include "common/cpu_features.hpp"
#include "common/scratch.hpp"
#include "gemm/gemm.hpp"

namespace aibench::attention {
namespace {

thread_local Scratch tile_scratch;    // per OpenMP thread: the tile kernel's buffers
thread_local Scratch layout_scratch;  // per calling thread: packed / padded V

}  // namespace

std::vector<std::string> paths(const std::string& dtype) {
  std::vector<std::string> names;
  if (dtype == "fp32") {
    for (Isa isa : available_isas(gemm::kIsaNeeds)) names.emplace_back(isa_name(isa));
  } else if (dtype == "bf16") {
    // The GEMM's bf16 paths, slowest first: the same instructions rank the same way
    // (VDPBF16PS last, the best, unless it is slower than the fp32 FMA; see gemm.hpp).
    const std::vector<std::string> best_first = gemm::lowp_paths("bf16");
    names.assign(best_first.rbegin(), best_first.rend());
  } else {
    throw std::invalid_argument("attention: dtype must be 'fp32' or 'bf16', got '" + dtype + "'");
  }
  return names;
}

Kernel select_kernel(Dtype dtype, const std::string& isa) {
  if (dtype == Dtype::bf16) {
    const std::vector<std::string> names = paths("bf16");
    const std::string path = isa == "auto" ? names.back() : isa;
    if (path == "avx512_bf16") {
      if (std::find(names.begin(), names.end(), path) == names.end()) {
        throw std::invalid_argument(
            "attention: bf16 path 'avx512_bf16' needs AVX512_BF16 (VDPBF16PS), which this CPU or "
            "build lacks, or AIBENCH_CPU_ISA caps below it");
      }
#if AIBENCH_X86
      return avx512_bf16::bf16_kernel();
#endif
    }
    Kernel widening = select_kernel(Dtype::fp32, path);
    widening.widens_bf16 = true;
    return widening;
  }
  switch (parse_isa(isa, gemm::kIsaNeeds)) {  // throws std::invalid_argument for unknown / unsupported
#if AIBENCH_X86
    case Isa::avx512: return avx512::fp32_kernel();
    case Isa::avx2: return avx2::fp32_kernel();
#endif
    default: return scalar::fp32_kernel();
  }
}

namespace {

thread_local Scratch widened_scratch;  // per calling thread: fp32 Q, K, V, O of a widened bf16 call

void forward_widened(const Kernel& kernel, const Problem& p, int threads) {
  const size_t q_count = static_cast<size_t>(p.batch * p.heads * p.seq_q * p.head_dim);
  const size_t kv_count = static_cast<size_t>(p.batch * p.kv_heads * p.seq_k * p.head_dim);
  float* const buf = static_cast<float*>(widened_scratch.get(sizeof(float) * (2 * q_count + 2 * kv_count)));
  float* const q = buf;
  float* const k = q + q_count;
  float* const v = k + kv_count;
  float* const o = v + kv_count;
  const auto widen = [threads](const void* src, float* dst, size_t count) {
    const auto* bits = static_cast<const uint16_t*>(src);
#pragma omp parallel for num_threads(resolve_threads(threads)) schedule(static)
    for (int64_t i = 0; i < static_cast<int64_t>(count); ++i) dst[i] = bf16_to_float(bits[i]);
  };
  widen(p.q, q, q_count);
  widen(p.k, k, kv_count);
  widen(p.v, v, kv_count);
  Problem fp32 = p;
  fp32.dtype = Dtype::fp32;
  fp32.q = q;
  fp32.k = k;
  fp32.v = v;
  fp32.o = o;
  Kernel plain = kernel;
  plain.widens_bf16 = false;
  forward(plain, fp32, threads);
  auto* out = static_cast<uint16_t*>(p.o);
#pragma omp parallel for num_threads(resolve_threads(threads)) schedule(static)
  for (int64_t i = 0; i < static_cast<int64_t>(q_count); ++i) out[i] = float_to_bf16_rne(o[i]);
}

}  // namespace

void forward(const Kernel& kernel, const Problem& p, int threads) {
  if (kernel.widens_bf16 && p.dtype == Dtype::bf16) return forward_widened(kernel, p, threads);
  const int64_t B = p.batch, H = p.heads, Hkv = p.kv_heads, Sk = p.seq_k, D = p.head_dim;
  const int64_t q_tiles = ceil_div(p.seq_q, kBlockQ);
  if (B * H * q_tiles == 0) return;
  const int num_threads = resolve_threads(threads);

  // V as the tile kernel reads it: in place, or (bf16 pairs, fp32 with an odd head dim)
  // repacked once per call into rows of whole vectors.
  VLayout vl{p.v, D, Sk * D};
  bool repack = false;
  int64_t rows_per_head = Sk;  // rows of the layout per kv head
  if (kernel.pack_v != nullptr) {
    repack = true;
    rows_per_head = (Sk + 1) / 2;
    vl.ld = round_up(D, kPadD);
  } else if (D % kernel.v_granule != 0) {
    repack = true;
    vl.ld = round_up(D, kPadD);
  }
  void* packed = nullptr;
  if (repack) {
    vl.head_stride = rows_per_head * vl.ld;
    packed = layout_scratch.get(static_cast<size_t>(B * Hkv * vl.head_stride) * 4);
    vl.base = packed;
  }
  constexpr int64_t kPackRows = 64;
  const int64_t pack_chunks = ceil_div(rows_per_head, kPackRows);
  const size_t scratch_bytes = kernel.scratch_bytes(D);
  int out_of_memory = 0;

#pragma omp parallel num_threads(num_threads)
  {
    if (repack) {
#pragma omp for collapse(2) schedule(static)
      for (int64_t g = 0; g < B * Hkv; ++g) {
        for (int64_t c = 0; c < pack_chunks; ++c) {
          const int64_t r0 = c * kPackRows, r1 = std::min(rows_per_head, r0 + kPackRows);
          if (kernel.pack_v != nullptr) {
            const auto* src = static_cast<const uint16_t*>(p.v) + g * Sk * D;
            auto* dst = static_cast<uint32_t*>(packed) + g * vl.head_stride;
            kernel.pack_v(p, src, r0, r1, vl.ld, dst);
          } else {
            const auto* src = static_cast<const float*>(p.v) + g * Sk * D;
            auto* dst = static_cast<float*>(packed) + g * vl.head_stride;
            for (int64_t r = r0; r < r1; ++r) {
              std::memcpy(dst + r * vl.ld, src + r * D, sizeof(float) * D);
              std::fill(dst + r * vl.ld + D, dst + (r + 1) * vl.ld, 0.0f);
            }
          }
        }
      }
    }  // implicit barrier: V is complete before any tile reads it
    // An exception must not leave the parallel region: note it and throw after.
    void* scratch = nullptr;
    try {
      scratch = tile_scratch.get(scratch_bytes);
    } catch (const std::bad_alloc&) {
#pragma omp atomic write
      out_of_memory = 1;
    }
    // Causal work grows with the query tile index: hand out the heavy tiles first.
#pragma omp for collapse(3) schedule(dynamic, 1)
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t h = 0; h < H; ++h) {
        for (int64_t t = 0; t < q_tiles; ++t) {
          if (scratch != nullptr) kernel.tile(p, vl, b, h, (q_tiles - 1 - t) * kBlockQ, scratch);
        }
      }
    }
  }
  if (out_of_memory) throw std::bad_alloc();
}

}  // namespace aibench::attention
