// STREAM's kernels (McCalpin) on fp64 arrays, OpenMP, for the `memory` suite:
//   copy  c = a          2 x 8 B per element (one read, one write), as STREAM counts
//   scale b = s * c      2 x 8 B
//   add   c = a + b      3 x 8 B
//   triad a = b + s * c  3 x 8 B
// The arrays are numpy's (allocated untouched by Python); init() writes them first, from
// the same threads over the same element ranges as the timed loop, so first touch puts each
// page on the NUMA node of the thread that streams it. Every thread pins itself to the
// case's CPUs (a NUMA node's) for the call and gives back its old mask after: OpenMP's
// pool threads serve the other suites too.
// Non-temporal stores: past the last-level cache the output would only evict the inputs
// and cost a read-for-ownership per line; x86's MOVNTPD (SSE2, the x86-64 baseline, so
// no ISA flags here) writes around the cache. The caller asks for them (streaming=true)
// when an array is larger than the cache; elsewhere the stores are ordinary.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef __linux__
#include <sched.h>
#endif
#if defined(__x86_64__) || defined(_M_X64)
#include <emmintrin.h>
#define AIBENCH_STREAM_NT 1
#else
#define AIBENCH_STREAM_NT 0
#endif

#include "common/py_arrays.hpp"

namespace py = pybind11;

namespace aibench::memory {
namespace {

enum class Kernel { copy, scale, add, triad };

Kernel parse_kernel(const std::string& name) {
  if (name == "copy") return Kernel::copy;
  if (name == "scale") return Kernel::scale;
  if (name == "add") return Kernel::add;
  if (name == "triad") return Kernel::triad;
  throw py::value_error("Stream: kernel must be 'copy', 'scale', 'add' or 'triad', got '" + name + "'");
}

// The pattern init() writes (integers, so every kernel's result is exact in fp64 and
// the check can recompute it element by element; a shifted index shows).
inline double pattern(int which, int64_t j) {
  switch (which) {
    case 0: return static_cast<double>(j % 1021 + 1);  // a
    case 1: return static_cast<double>(j % 509 + 2);   // b
    default: return static_cast<double>(j % 257);     // c
  }
}

// One thread's CPU mask for the duration of a parallel region: pinned to `cpus` (none:
// left alone), the old mask restored on destruction.
class Pinned {
 public:
  explicit Pinned(const std::vector<int>& cpus) {
#ifdef __linux__
    if (cpus.empty()) return;
    CPU_ZERO(&saved_);
    if (sched_getaffinity(0, sizeof(saved_), &saved_) != 0) return;
    cpu_set_t want;
    CPU_ZERO(&want);
    for (int cpu : cpus) CPU_SET(cpu, &want);
    pinned_ = sched_setaffinity(0, sizeof(want), &want) == 0;
#else
    (void)cpus;
#endif
  }
  ~Pinned() {
#ifdef __linux__
    if (pinned_) sched_setaffinity(0, sizeof(saved_), &saved_);
#endif
  }
  Pinned(const Pinned&) = delete;
  Pinned& operator=(const Pinned&) = delete;

 private:
#ifdef __linux__
  cpu_set_t saved_;
#endif
  bool pinned_ = false;
};

// out[j] = x[j] + s * y[j] over [lo, hi); y == nullptr: out = s * x (s = 1: a copy);
// x == nullptr: out = s * y.
inline void stream_range(double* out, const double* x, const double* y, double s, int64_t lo,
                         int64_t hi, bool streaming) {
  auto one = [&](int64_t j) {
    out[j] = x == nullptr ? s * y[j] : y == nullptr ? s * x[j] : x[j] + s * y[j];
  };
#if AIBENCH_STREAM_NT
  if (streaming) {
    int64_t j = lo;
    for (; j < hi && (reinterpret_cast<uintptr_t>(out + j) & 15) != 0; ++j) one(j);
    const __m128d vs = _mm_set1_pd(s);
    for (; j + 2 <= hi; j += 2) {
      __m128d v;
      if (x == nullptr) {
        v = _mm_mul_pd(vs, _mm_loadu_pd(y + j));
      } else if (y == nullptr) {
        v = s == 1.0 ? _mm_loadu_pd(x + j) : _mm_mul_pd(vs, _mm_loadu_pd(x + j));
      } else {
        v = _mm_add_pd(_mm_loadu_pd(x + j), _mm_mul_pd(vs, _mm_loadu_pd(y + j)));
      }
      _mm_stream_pd(out + j, v);
    }
    for (; j < hi; ++j) one(j);
    _mm_sfence();  // the streamed lines are visible before the barrier
    return;
  }
#endif
  (void)streaming;
  if (x == nullptr) {
#pragma omp simd
    for (int64_t j = lo; j < hi; ++j) out[j] = s * y[j];
  } else if (y == nullptr) {
#pragma omp simd
    for (int64_t j = lo; j < hi; ++j) out[j] = s * x[j];
  } else {
#pragma omp simd
    for (int64_t j = lo; j < hi; ++j) out[j] = x[j] + s * y[j];
  }
}

double* checked(const char* name, py::array& x, int64_t n) {
  if (!x.dtype().is(py::dtype::of<double>()) || x.ndim() != 1 ||
      !(x.flags() & py::array::c_style) || !x.writeable()) {
    throw py::value_error(std::string("Stream: ") + name +
                          " must be a writable 1-D C-contiguous float64 array, got shape " +
                          shape_str(x) + " " + std::string(py::str(x.dtype())));
  }
  if (x.shape(0) != n) throw py::value_error("Stream: a, b and c must have the same length");
  return static_cast<double*>(x.mutable_data());
}

class StreamOp {
 public:
  StreamOp(py::array a, py::array b, py::array c, const std::string& kernel, int threads,
           std::vector<int> cpus, bool streaming, double scalar)
      : a_(std::move(a)), b_(std::move(b)), c_(std::move(c)), kernel_name_(kernel),
        kernel_(parse_kernel(kernel)), threads_(threads), cpus_(std::move(cpus)),
        streaming_(streaming && AIBENCH_STREAM_NT), scalar_(scalar) {
    n_ = a_.ndim() == 1 ? a_.shape(0) : -1;
    pa_ = checked("a", a_, n_);
    pb_ = checked("b", b_, n_);
    pc_ = checked("c", c_, n_);
    if (overlaps(a_, b_) || overlaps(a_, c_) || overlaps(b_, c_)) {
      throw py::value_error("Stream: a, b and c must not overlap");
    }
    if (threads < 1) throw py::value_error("Stream: threads must be >= 1");
  }

  // First touch: a, b, c written with their patterns by the timed loop's threads, each
  // over the range it streams.
  void init() {
    py::gil_scoped_release release;
    parallel([&](int64_t lo, int64_t hi) {
      for (int64_t j = lo; j < hi; ++j) {
        pa_[j] = pattern(0, j);
        pb_[j] = pattern(1, j);
        pc_[j] = pattern(2, j);
      }
    }, 1);
  }

  double time(int64_t number) {
    if (number < 1) throw py::value_error("Stream.time: number must be >= 1");
    py::gil_scoped_release release;
    return parallel([&](int64_t lo, int64_t hi) { step(lo, hi); }, number);
  }

  void run() { time(1); }

  py::dict describe() const {
    py::dict d;
    d["kernel"] = kernel_name_;
    d["elements"] = n_;
    d["threads"] = threads_;
    d["cpus"] = cpus_;
    d["stores"] = streaming_ ? "non-temporal (SSE2 MOVNTPD)" : "regular";
    d["schedule"] = "static: thread t streams elements [n t / T, n (t + 1) / T), as it first touched them";
    return d;
  }

 private:
  void step(int64_t lo, int64_t hi) {
    switch (kernel_) {
      case Kernel::copy: stream_range(pc_, pa_, nullptr, 1.0, lo, hi, streaming_); break;
      case Kernel::scale: stream_range(pb_, nullptr, pc_, scalar_, lo, hi, streaming_); break;
      case Kernel::add: stream_range(pc_, pa_, pb_, 1.0, lo, hi, streaming_); break;
      case Kernel::triad: stream_range(pa_, pb_, pc_, scalar_, lo, hi, streaming_); break;
    }
  }

  // fn(lo, hi) on every thread's range, `reps` times with a barrier after each (STREAM's
  // parallel for), on pinned threads; seconds from the first repetition's start to the
  // last one's end (steady clock, read by one thread between barriers).
  template <class Fn>
  double parallel(Fn&& fn, int64_t reps) {
    using clock = std::chrono::steady_clock;
    clock::time_point start, stop;
    const int64_t n = n_;
#pragma omp parallel num_threads(threads_)
    {
      Pinned pin(cpus_);
#ifdef _OPENMP
      const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
      const int64_t t = 0, nt = 1;
#endif
      const int64_t lo = n * t / nt, hi = n * (t + 1) / nt;
#pragma omp barrier
#pragma omp single
      start = clock::now();
      for (int64_t r = 0; r < reps; ++r) {
        fn(lo, hi);
#pragma omp barrier
      }
#pragma omp single
      stop = clock::now();
    }
    return std::chrono::duration<double>(stop - start).count();
  }

  py::array a_, b_, c_;  // kept alive: the pointers below are into them
  std::string kernel_name_;
  Kernel kernel_;
  int threads_;
  std::vector<int> cpus_;
  bool streaming_;
  double scalar_;
  int64_t n_ = 0;
  double *pa_ = nullptr, *pb_ = nullptr, *pc_ = nullptr;
};

}  // namespace

void bind_memory(py::module_& m) {
  py::class_<StreamOp>(m, "Stream")
      .def(py::init<py::array, py::array, py::array, const std::string&, int, std::vector<int>, bool,
                    double>(),
           py::arg("a").noconvert(), py::arg("b").noconvert(), py::arg("c").noconvert(),
           py::arg("kernel"), py::arg("threads"), py::arg("cpus") = std::vector<int>{},
           py::arg("streaming") = false, py::arg("scalar") = 3.0,
           "STREAM kernel ('copy' c = a, 'scale' b = s c, 'add' c = a + b, 'triad' a = b + s c) on\n"
           "1-D float64 arrays, `threads` OpenMP threads pinned to `cpus` (empty: not pinned);\n"
           "streaming: non-temporal stores where the ISA has them (x86).")
      .def("init", &StreamOp::init,
           "First touch: a[j] = j % 1021 + 1, b[j] = j % 509 + 2, c[j] = j % 257, written by the\n"
           "timed loop's threads over their own ranges.")
      .def("run", &StreamOp::run, "One pass of the kernel, finished on return.")
      .def("time", &StreamOp::time, py::arg("number"),
           "Seconds for `number` passes (C++ steady clock, a barrier after each).")
      .def_property_readonly("describe", &StreamOp::describe,
                             "{kernel, elements, threads, cpus, stores, schedule}");
}

}  // namespace aibench::memory
