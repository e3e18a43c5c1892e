// Measured FMA peak: a register-only loop of independent vector FMAs on every allowed CPU
// at once, per ISA level and dtype. Beside the theoretical peak (cores x FMA width x 2 x
// clock) it shows what the table cannot know: Intel Xeons with one 512-bit FMA unit (some
// Silver/Bronze/Gold 5xxx SKUs; CPUID does not say), the clock drop under AVX-512, a
// VM's share of a core.
//
// Each loop keeps kAccumulators independent accumulators: enough to cover latency x
// throughput on every core we know (Zen 2's 5-cycle FMA x 2 units = 10; Neoverse V2's 4
// cycles x 4 pipes = 16 needs the 20 of the NEON loop). The AVX2 loop's 12 accumulators
// plus two operands fit the 16 ymm registers. No memory is touched.
//
// The kernels carry their ISA as a function attribute (this file is compiled without ISA
// flags) and only run after a run-time check that the CPU has it.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <omp.h>

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

#include "common/scratch.hpp"

namespace py = pybind11;

namespace aibench::clock {
namespace {

// acc += a * b: the accumulator is the FMA's addend (NEON's FMLA and x86's VFMADD231
// update it in place); it grows by 1e-6 per iteration: no overflow, no denormals.
constexpr double kA = 1e-3, kB = 1e-3;
constexpr int64_t kItersPerWindow = 1000000;  // about 2 ms with two 256-bit FMA units

// A kernel runs `iters` iterations of `accumulators` independent FMAs and returns a value
// that depends on every accumulator (so the compiler keeps them all).
struct Kernel {
  const char* isa;
  const char* dtype;
  int lanes;         // elements per vector
  int accumulators;  // independent FMAs per iteration
  double (*run)(int64_t iters);
};

// The accumulators are named locals, not an array: GCC keeps an array in memory on
// aarch64 and stores it every iteration. ACC12 / ACC20 apply X to each index (and to the
// loop's vector type and functions, passed along).
#define AIBENCH_ACC12(X, ...) X(0, __VA_ARGS__) X(1, __VA_ARGS__) X(2, __VA_ARGS__) X(3, __VA_ARGS__) \
  X(4, __VA_ARGS__) X(5, __VA_ARGS__) X(6, __VA_ARGS__) X(7, __VA_ARGS__) X(8, __VA_ARGS__)           \
  X(9, __VA_ARGS__) X(10, __VA_ARGS__) X(11, __VA_ARGS__)
#define AIBENCH_ACC20(X, ...) AIBENCH_ACC12(X, __VA_ARGS__) X(12, __VA_ARGS__) X(13, __VA_ARGS__)      \
  X(14, __VA_ARGS__) X(15, __VA_ARGS__) X(16, __VA_ARGS__) X(17, __VA_ARGS__) X(18, __VA_ARGS__)      \
  X(19, __VA_ARGS__)
#define AIBENCH_ACC_DECLARE(j, VEC, SET1, FMA, FIRST) VEC acc##j = SET1(1.0 + (j) * 1e-3);
#define AIBENCH_ACC_STEP(j, VEC, SET1, FMA, FIRST) acc##j = FMA(a, b, acc##j);
#define AIBENCH_ACC_SUM(j, VEC, SET1, FMA, FIRST) sum += FIRST(acc##j);
#define AIBENCH_FMA_LOOP(ACCS, VEC, SET1, FMA, FIRST)           \
  const VEC a = SET1(kA), b = SET1(kB);                        \
  ACCS(AIBENCH_ACC_DECLARE, VEC, SET1, FMA, FIRST)             \
  for (int64_t i = 0; i < iters; ++i) {                        \
    ACCS(AIBENCH_ACC_STEP, VEC, SET1, FMA, FIRST)              \
  }                                                            \
  double sum = 0.0;                                            \
  ACCS(AIBENCH_ACC_SUM, VEC, SET1, FMA, FIRST)                 \
  return sum;

#if defined(__x86_64__)
constexpr int kAvxAccumulators = 12;

__attribute__((target("avx2,fma"))) double first_ps256(__m256 v) { return _mm256_cvtss_f32(v); }
__attribute__((target("avx2,fma"))) double first_pd256(__m256d v) { return _mm256_cvtsd_f64(v); }
__attribute__((target("avx512f"))) double first_ps512(__m512 v) { return _mm512_cvtss_f32(v); }
__attribute__((target("avx512f"))) double first_pd512(__m512d v) { return _mm512_cvtsd_f64(v); }
__attribute__((target("avx2,fma"))) __m256 fma_ps256(__m256 x, __m256 a, __m256 b) { return _mm256_fmadd_ps(x, a, b); }
__attribute__((target("avx2,fma"))) __m256d fma_pd256(__m256d x, __m256d a, __m256d b) { return _mm256_fmadd_pd(x, a, b); }
__attribute__((target("avx512f"))) __m512 fma_ps512(__m512 x, __m512 a, __m512 b) { return _mm512_fmadd_ps(x, a, b); }
__attribute__((target("avx512f"))) __m512d fma_pd512(__m512d x, __m512d a, __m512d b) { return _mm512_fmadd_pd(x, a, b); }
__attribute__((target("avx2,fma"))) __m256 set1_ps256(double x) { return _mm256_set1_ps(static_cast<float>(x)); }
__attribute__((target("avx2,fma"))) __m256d set1_pd256(double x) { return _mm256_set1_pd(x); }
__attribute__((target("avx512f"))) __m512 set1_ps512(double x) { return _mm512_set1_ps(static_cast<float>(x)); }
__attribute__((target("avx512f"))) __m512d set1_pd512(double x) { return _mm512_set1_pd(x); }

__attribute__((target("avx2,fma"))) double avx2_fp32(int64_t iters) {
  AIBENCH_FMA_LOOP(AIBENCH_ACC12, __m256, set1_ps256, fma_ps256, first_ps256)
}
__attribute__((target("avx2,fma"))) double avx2_fp64(int64_t iters) {
  AIBENCH_FMA_LOOP(AIBENCH_ACC12, __m256d, set1_pd256, fma_pd256, first_pd256)
}
__attribute__((target("avx512f"))) double avx512_fp32(int64_t iters) {
  AIBENCH_FMA_LOOP(AIBENCH_ACC12, __m512, set1_ps512, fma_ps512, first_ps512)
}
__attribute__((target("avx512f"))) double avx512_fp64(int64_t iters) {
  AIBENCH_FMA_LOOP(AIBENCH_ACC12, __m512d, set1_pd512, fma_pd512, first_pd512)
}

const Kernel kKernels[] = {
    {"avx2", "fp32", 8, kAvxAccumulators, avx2_fp32},
    {"avx2", "fp64", 4, kAvxAccumulators, avx2_fp64},
    {"avx512", "fp32", 16, kAvxAccumulators, avx512_fp32},
    {"avx512", "fp64", 8, kAvxAccumulators, avx512_fp64},
};

bool isa_runs(const std::string& isa) {
  if (isa == "avx2") return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (isa == "avx512") return __builtin_cpu_supports("avx512f");
  return false;
}

#elif defined(__aarch64__)
constexpr int kNeonAccumulators = 20;

float32x4_t fma_f32(float32x4_t x, float32x4_t a, float32x4_t acc) { return vfmaq_f32(acc, x, a); }
float64x2_t fma_f64(float64x2_t x, float64x2_t a, float64x2_t acc) { return vfmaq_f64(acc, x, a); }
float32x4_t set1_f32(double x) { return vdupq_n_f32(static_cast<float>(x)); }
float64x2_t set1_f64(double x) { return vdupq_n_f64(x); }
double first_f32(float32x4_t v) { return vgetq_lane_f32(v, 0); }
double first_f64(float64x2_t v) { return vgetq_lane_f64(v, 0); }

double neon_fp32(int64_t iters) { AIBENCH_FMA_LOOP(AIBENCH_ACC20, float32x4_t, set1_f32, fma_f32, first_f32) }
double neon_fp64(int64_t iters) { AIBENCH_FMA_LOOP(AIBENCH_ACC20, float64x2_t, set1_f64, fma_f64, first_f64) }

const Kernel kKernels[] = {
    {"neon", "fp32", 4, kNeonAccumulators, neon_fp32},
    {"neon", "fp64", 2, kNeonAccumulators, neon_fp64},
};

bool isa_runs(const std::string& isa) { return isa == "neon"; }  // aarch64's baseline

#else
#error "the FMA peak needs x86-64 or aarch64"
#endif

#undef AIBENCH_FMA_LOOP
#undef AIBENCH_ACC_DECLARE
#undef AIBENCH_ACC_STEP
#undef AIBENCH_ACC_SUM
#undef AIBENCH_ACC12
#undef AIBENCH_ACC20

const Kernel& find_kernel(const std::string& isa, const std::string& dtype) {
  for (const Kernel& k : kKernels) {
    if (isa == k.isa && dtype == k.dtype) {
      if (!isa_runs(isa)) throw std::invalid_argument("FMA peak: this CPU cannot run " + isa);
      return k;
    }
  }
  throw std::invalid_argument("FMA peak: no " + isa + " " + dtype + " loop (dtypes fp32, fp64)");
}

}  // namespace

// ISA levels whose FMA loops this CPU runs.
std::vector<std::string> fma_peak_isas() {
  std::vector<std::string> isas;
  for (const Kernel& k : kKernels) {
    if (isa_runs(k.isa) && (isas.empty() || isas.back() != k.isa)) isas.emplace_back(k.isa);
  }
  return isas;
}

// GFLOP/s of every allowed CPU running the loop together: each window, all threads start
// at a barrier, run the same iterations and meet at a barrier; the window's rate is all
// their FLOPs over its wall time, and the best of `windows` windows (after one warm-up
// window, which also lets the clock settle under AVX-512) is the figure.
py::dict measure_fma_peak(const std::string& isa, const std::string& dtype, int windows, int threads_wanted) {
  if (windows < 1) throw std::invalid_argument("FMA peak: windows must be >= 1");
  if (threads_wanted < 0) throw std::invalid_argument("FMA peak: threads must be >= 0 (0: every allowed CPU)");
  const Kernel& kernel = find_kernel(isa, dtype);
  const int threads = resolve_threads(threads_wanted);
  const double flops_per_window =
      2.0 * kernel.lanes * kernel.accumulators * static_cast<double>(kItersPerWindow) * threads;
  double best_s = 0.0, window_s = 0.0;
  {
    py::gil_scoped_release release;
    using steady = std::chrono::steady_clock;
    steady::time_point start;
#pragma omp parallel num_threads(threads)
    {
      volatile double sink = 0.0;
      for (int w = 0; w <= windows; ++w) {
#pragma omp barrier
#pragma omp master
        start = steady::now();
#pragma omp barrier
        sink = sink + kernel.run(kItersPerWindow);
#pragma omp barrier
#pragma omp master
        {
          const double s = std::chrono::duration<double>(steady::now() - start).count();
          if (w > 0 && (best_s == 0.0 || s < best_s)) best_s = s;  // window 0 warms up
          window_s = s;
        }
      }
      (void)sink;
    }
  }
  py::dict d;
  d["gflops"] = flops_per_window / best_s * 1e-9;
  d["threads"] = threads;
  d["accumulators"] = kernel.accumulators;
  d["lanes"] = kernel.lanes;
  d["windows"] = windows;
  d["window_s"] = window_s;
  return d;
}

void bind_fma_peak(py::module_& m) {
  m.def("fma_peak_isas", &fma_peak_isas, "ISA levels whose FMA-peak loops this CPU runs (avx2, avx512; neon).");
  m.def("measure_fma_peak", &measure_fma_peak, py::arg("isa"), py::arg("dtype"), py::arg("windows") = 20,
        py::arg("threads") = 0,
        "Measured FMA peak of this process's CPUs: every allowed CPU (or `threads` threads) runs a\n"
        "register-only loop of independent FMAs (isa 'avx2' | 'avx512' | 'neon', dtype 'fp32' |\n"
        "'fp64') at once;\n"
        "the best of `windows` timed windows. {gflops, threads, accumulators, lanes, windows,\n"
        "window_s}.");
}

}  // namespace aibench::clock
