#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace aibench_cuda {

// Fills `count` elements of `dtype` at device address `ptr` with uniform values in
// [lo, hi]: element i is a pure function of (seed, i) (splitmix64), so any run, GPU or
// launch configuration gives the same bits. Floats are rounded to nearest; "tf32" stores
// fp32 values already rounded to tf32 precision; "int8" draws integers in [lo, hi].
// Synchronises.
void fill_uniform(int device, std::uintptr_t ptr, std::size_t count, const std::string& dtype,
                  std::uint64_t seed, double lo, double hi);

}  // namespace aibench_cuda
