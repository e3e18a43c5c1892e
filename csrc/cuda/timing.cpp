#include "cuda/timing.cuh"

#include <atomic>
#include <string>
#include <vector>

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
  if (flush_bytes == 0) {  // no flush: one event pair around the back-to-back launches
    Event start, stop;
    AIBENCH_CUDA_CHECK(cudaEventRecord(start.get(), kStream));
    for (int i = 0; i < number; ++i) op.launch(kStream);
    AIBENCH_CUDA_CHECK(cudaGetLastError());
    AIBENCH_CUDA_CHECK(cudaEventRecord(stop.get(), kStream));
    AIBENCH_CUDA_CHECK(cudaEventSynchronize(stop.get()));
    float ms = 0.0f;
    AIBENCH_CUDA_CHECK(cudaEventElapsedTime(&ms, start.get(), stop.get()));
    return static_cast<double>(ms) * 1e-3;
  }
  // L2 flushed before EVERY launch (as triton's do_bench): the flush buffer is rewritten,
  // then one event pair brackets the launch alone, so that no launch finds the previous
  // one's operands in L2 and the flush is not timed. The launches are enqueued without
  // waiting; one synchronisation at the end. A different byte each time, so that no
  // layer can skip the write as redundant.
  static std::atomic<unsigned> flushes{0};
  std::vector<Event> starts(static_cast<std::size_t>(number));
  std::vector<Event> stops(static_cast<std::size_t>(number));
  for (int i = 0; i < number; ++i) {
    const int value = static_cast<int>(flushes.fetch_add(1) % 251u) + 1;
    AIBENCH_CUDA_CHECK(
        cudaMemsetAsync(reinterpret_cast<void*>(flush_ptr), value, flush_bytes, kStream));
    AIBENCH_CUDA_CHECK(cudaEventRecord(starts[i].get(), kStream));
    op.launch(kStream);
    AIBENCH_CUDA_CHECK(cudaEventRecord(stops[i].get(), kStream));
  }
  AIBENCH_CUDA_CHECK(cudaGetLastError());
  AIBENCH_CUDA_CHECK(cudaEventSynchronize(stops.back().get()));
  double seconds = 0.0;
  for (int i = 0; i < number; ++i) {
    float ms = 0.0f;
    AIBENCH_CUDA_CHECK(cudaEventElapsedTime(&ms, starts[i].get(), stops[i].get()));
    seconds += static_cast<double>(ms) * 1e-3;
  }
  return seconds;
}

}  // namespace aibench_cuda
