// Helpers of the OpenMP drivers (gemm_driver.cpp, gemm_lowp.cpp, attention_driver.cpp).
// Only for files compiled without ISA flags: ceil_div / round_up are inline (ODR rule of
// gemm/gemm.hpp).
#pragma once

#include <cstddef>
#include <cstdint>

namespace aibench {

constexpr int64_t kAlignBytes = 64;  // cache line, and the alignment of a zmm load

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// threads <= 0: OpenMP's default thread count.
int resolve_threads(int threads);

// Grow-only kAlignBytes-aligned scratch memory, kept between calls so that timing a small
// case does not time malloc. Callers keep one per thread (thread_local).
class Scratch {
 public:
  Scratch() = default;
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch();
  void* get(size_t bytes);

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace aibench
