#include "common/scratch.hpp"

#include <cstdlib>
#include <new>

#include <omp.h>

namespace aibench {

int resolve_threads(int threads) { return threads > 0 ? threads : omp_get_max_threads(); }

Scratch::~Scratch() { std::free(data_); }

void* Scratch::get(size_t bytes) {
  constexpr size_t kAlign = kAlignBytes;
  if (bytes > size_) {
    std::free(data_);
    data_ = nullptr;
    size_ = 0;
    // aligned_alloc wants a size that is a multiple of the alignment.
    const size_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;
    data_ = std::aligned_alloc(kAlign, rounded);
    if (data_ == nullptr) throw std::bad_alloc();
    size_ = rounded;
  }
  return data_;
}

}  // namespace aibench
