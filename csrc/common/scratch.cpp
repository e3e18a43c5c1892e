#include "common/scratch.hpp"

#include <cstdlib>
#include <new>

#include <omp.h>

namespace aibench {

// threads = 0: OMP_NUM_THREADS when the user set it, else every processor this process may
// run on. Not omp_get_max_threads() alone: another library in the process can lower it
// behind our back (torch sets it to 1 under an MPI launcher, as MKL picks 1 thread per rank).
int resolve_threads(int threads) {
  if (threads > 0) return threads;
  return std::getenv("OMP_NUM_THREADS") != nullptr ? omp_get_max_threads() : omp_get_num_procs();
}

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
