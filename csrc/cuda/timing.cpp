#include "cuda/timing.cuh"

#include <atomic>
#include <string>

namespace aibench_cuda {
namespace {

// The legacy default stream: ordered with CuPy's default (null) stream.
const cudaStream_t kStream = 0;

class Event {
 public:
  Event() { AIBENCH_CUDA_CHECK(cudaEventCreate(&event_)); }
  ~Event() { (void)cudaEventDestroy(event_); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return event_; }

 private:
  cudaEvent_t event_ = nullptr;
};

}  // namespace

void run_op(CudaOp& op) {
  DeviceGuard guard(op.device());
  op.launch(kStream);
  AIBENCH_CUDA_CHECK(cudaGetLastError());
  AIBENCH_CUDA_CHECK(cudaStreamSynchronize(kStream));
}

double time_op(CudaOp& op, int number, std::uintptr_t flush_ptr, std::size_t flush_bytes) {
  if (number < 1) throw_value("number must be >= 1, got " + std::to_string(number));
  if (flush_bytes > 0 && flush_ptr == 0) throw_value("flush_bytes > 0 needs a flush_ptr");
  DeviceGuard guard(op.device());
  Event start, stop;
  if (flush_bytes > 0) {
    // A different byte each sample, so that no layer can skip the write as redundant.
    static std::atomic<unsigned> sample{0};
    int value = static_cast<int>(sample.fetch_add(1) % 251u) + 1;
    AIBENCH_CUDA_CHECK(
        cudaMemsetAsync(reinterpret_cast<void*>(flush_ptr), value, flush_bytes, kStream));
  }
  AIBENCH_CUDA_CHECK(cudaEventRecord(start.get(), kStream));
  for (int i = 0; i < number; ++i) op.launch(kStream);
  AIBENCH_CUDA_CHECK(cudaGetLastError());
  AIBENCH_CUDA_CHECK(cudaEventRecord(stop.get(), kStream));
  AIBENCH_CUDA_CHECK(cudaEventSynchronize(stop.get()));
  float ms = 0.0f;
  AIBENCH_CUDA_CHECK(cudaEventElapsedTime(&ms, start.get(), stop.get()));
  return static_cast<double>(ms) * 1e-3;
}

}  // namespace aibench_cuda
