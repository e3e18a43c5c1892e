#include "timing/timing.hpp"

#include <pybind11/pybind11.h>

#include <thread>

namespace py = pybind11;

namespace aibench::timing {

// Resolution of the clock the timing loop uses, measured (smallest non-zero step).
double steady_clock_resolution_s() {
  double best = 1.0;
  for (int i = 0; i < 1000; ++i) {
    const auto a = std::chrono::steady_clock::now();
    auto b = a;
    while (b == a) b = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double>(b - a).count());
  }
  return best;
}

// Times `number` sleeps of `seconds` each; used by tests to check the loop itself.
double time_sleep(int64_t number, double seconds) {
  py::gil_scoped_release release;
  return time_repeated(number, [&](int64_t) {
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  });
}

void bind_timing(py::module_& m) {
  m.def("steady_clock_resolution_s", &steady_clock_resolution_s,
        "Smallest observable step of std::chrono::steady_clock, in seconds.");
  m.def("time_sleep", &time_sleep, py::arg("number"), py::arg("seconds"),
        "Time `number` back-to-back sleeps with the C++ timing loop (seconds).");
}

}  // namespace aibench::timing
