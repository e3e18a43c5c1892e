// The one timing loop of aibench's CPU kernels: `number` back-to-back repetitions
// between two reads of the steady clock. Python decides how many samples to take;
// it is never inside the timed region.
#pragma once
#include <chrono>
#include <cstdint>

namespace aibench::timing {

// Calls fn(i) for i = 0 .. number-1 back to back; returns elapsed seconds.
template <class Fn>
double time_repeated(int64_t number, Fn&& fn) {
  const auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < number; ++i) fn(i);
  const auto stop = std::chrono::steady_clock::now();
  return std::chrono::duration<double>(stop - start).count();
}

}  // namespace aibench::timing
