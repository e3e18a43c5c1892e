// Measured core clock: every core runs a chain of dependent integer adds at once. An add
// has a latency of one cycle and each depends on the previous one, so the chain advances
// exactly one add per cycle, whatever the CPU's width: adds per second = cycles per second.
// Running all cores together gives the clock under an all-core load, which is what a
// theoretical peak over all cores should use.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include <omp.h>

#include "common/scratch.hpp"

namespace py = pybind11;

namespace aibench::clock {
namespace {

constexpr int64_t kAddsPerBlock = 1000;    // one asm block
constexpr int64_t kBlocksPerSlice = 5000;  // 5M adds, about 1.5 ms per timed slice

// Runs kBlocksPerSlice * kAddsPerBlock dependent adds. Inline asm, so the compiler cannot
// fold the chain into one multiply; the loop counter runs beside the chain, not in it.
void run_add_chain() {
  uint64_t x = 0;
  for (int64_t block = 0; block < kBlocksPerSlice; ++block) {
#if defined(__x86_64__)
    asm volatile(".rept 1000\n\tadd $1, %0\n\t.endr" : "+r"(x));
#elif defined(__aarch64__)
    asm volatile(".rept 1000\n\tadd %0, %0, #1\n\t.endr" : "+r"(x));
#else
#error "measure_clock_ghz needs an x86-64 or aarch64 add chain"
#endif
  }
}

// Clock of the calling thread in GHz: timed slices of the add chain for at least
// `seconds`. A slice during which the OS ran something else on this core reads slow,
// and no slice can read fast (the chain cannot beat one add per cycle), so the fastest
// slice is the clock, even on a machine that is not idle.
double thread_clock_ghz(double seconds) {
  using steady = std::chrono::steady_clock;
  const auto start = steady::now();
  double best_ghz = 0.0;
  for (auto now = start; std::chrono::duration<double>(now - start).count() < seconds;) {
    const auto slice_start = now;
    run_add_chain();
    now = steady::now();
    const double slice_s = std::chrono::duration<double>(now - slice_start).count();
    best_ghz = std::max(best_ghz, kBlocksPerSlice * kAddsPerBlock / slice_s * 1e-9);
  }
  return best_ghz;
}

}  // namespace

// GHz of each OpenMP thread (one per core by default), all measured at the same time.
std::vector<double> measure_clock_ghz_per_thread(double seconds) {
  if (!(seconds > 0.0)) throw std::invalid_argument("measure_clock_ghz: seconds must be > 0");
  std::vector<double> ghz(static_cast<size_t>(resolve_threads(0)));
#pragma omp parallel num_threads(static_cast<int>(ghz.size()))
  {
    thread_clock_ghz(0.05);  // let the clock ramp up under load before measuring
#pragma omp barrier
    ghz[static_cast<size_t>(omp_get_thread_num())] = thread_clock_ghz(seconds);
  }
  return ghz;
}

// Median of the per-thread clocks.
double measure_clock_ghz(double seconds) {
  std::vector<double> ghz = measure_clock_ghz_per_thread(seconds);
  std::sort(ghz.begin(), ghz.end());
  const size_t n = ghz.size();
  return n % 2 ? ghz[n / 2] : 0.5 * (ghz[n / 2 - 1] + ghz[n / 2]);
}

void bind_clock(py::module_& m) {
  m.def("measure_clock_ghz", [](double seconds) {
    py::gil_scoped_release release;
    return measure_clock_ghz(seconds);
  }, py::arg("seconds") = 0.2,
        "Measured core clock in GHz under an all-core load: one thread per core runs a\n"
        "dependent integer-add chain (one add per cycle) for `seconds`; each thread's clock is\n"
        "its fastest ~1.5 ms slice (slices the OS interrupted read slow); returns the median.");
  m.def("measure_clock_ghz_per_thread", [](double seconds) {
    py::gil_scoped_release release;
    return measure_clock_ghz_per_thread(seconds);
  }, py::arg("seconds") = 0.2,
        "Like measure_clock_ghz, but the GHz of every thread (one per core).");
}

}  // namespace aibench::clock
