// One place for running and timing any GPU operation of aibench._cuda (GEMMs now,
// attention later): an operation only knows how to enqueue itself once.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cuda/check.cuh"

namespace aibench_cuda {

class CudaOp {
 public:
  explicit CudaOp(int device) : device_(device) {}
  virtual ~CudaOp() = default;
  CudaOp(const CudaOp&) = delete;
  CudaOp& operator=(const CudaOp&) = delete;

  // Enqueue one execution on `stream` (no synchronisation). The device is already current.
  virtual void launch(cudaStream_t stream) = 0;
  int device() const { return device_; }

 private:
  int device_;
};

// One launch on the legacy default stream, then synchronise and check for errors.
void run_op(CudaOp& op);

// Seconds for `number` launches, timed with CUDA events on the default stream, one
// synchronisation at the end. flush_bytes = 0: one event pair around back-to-back launches.
// flush_bytes > 0: before EVERY launch the flush buffer is overwritten (cudaMemsetAsync) so
// that each launch starts with a cold L2; an event pair brackets each launch alone (the
// flushes are not timed) and the result is the sum of those intervals.
double time_op(CudaOp& op, int number, std::uintptr_t flush_ptr, std::size_t flush_bytes);

}  // namespace aibench_cuda
