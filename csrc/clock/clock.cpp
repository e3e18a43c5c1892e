// Measured core clock: every allowed core runs a chain of dependent operations of known,
// data-independent latency at once; cycles = operations x latency, so operations per
// second give the clock under an all-core load (what a peak over all cores should use).
//
// The chain. x86-64: `imul r64, r64`, 3 cycles of latency on every Intel core since
// Nehalem and every AMD Zen (Agner Fog's instruction tables; uops.info). aarch64: the FP
// `fmadd d, d, d, d` with the chained value as a *multiplicand*, 4 cycles on Neoverse
// N1/N2/V1/V2 and Apple cores (Arm Neoverse Software Optimization Guides, "FP multiply
// accumulate"; the faster late forwarding some cores have goes into the *addend*, which
// this chain does not use). Why not a chain of `add $1, reg`: recent Intel cores (Golden
// Cove, so Sapphire Rapids Xeons) fold add-immediate chains in the renamer, and move
// elimination removes others, so such a chain retires several adds per cycle; it read
// 17.15 GHz on the Xeon host of src/aibench/reference/nvidia-h200-cuda-quick.json. A
// multiply cannot be folded or eliminated: its result exists only after the multiplier
// has computed it, so each link waits the full latency.
//
// Cross-checks, per thread over the same slices: the core's cycle counter through
// perf_event_open (user-space cycles of this thread), and APERF through /dev/cpu/N/msr
// (root and the msr module; x86). Either may be unreadable (a VM without a PMU, no
// permission): the result then says why.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <fcntl.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include <omp.h>

#include "common/scratch.hpp"

namespace py = pybind11;

namespace aibench::clock {
namespace {

constexpr int64_t kOpsPerBlock = 1000;    // one asm block (.rept 1000)
constexpr int64_t kBlocksPerSlice = 2000;  // 2M chained ops per timed slice, a few ms
#if defined(__x86_64__)
constexpr int kCyclesPerOp = 3;  // imul r64, r64
constexpr const char* kChain = "dependent imul r64 chain (3-cycle latency)";
#elif defined(__aarch64__)
constexpr int kCyclesPerOp = 4;  // fmadd d, chained through a multiplicand
constexpr const char* kChain = "dependent fmadd chain through a multiplicand (4-cycle latency)";
#else
#error "the clock needs an x86-64 imul chain or an aarch64 fmadd chain"
#endif

// Runs kBlocksPerSlice * kOpsPerBlock chained operations. Inline asm, so the compiler
// cannot fold the chain; the loop counter runs beside the chain, not in it. Returns the
// chain's value so that it stays live.
uint64_t run_chain() {
#if defined(__x86_64__)
  uint64_t x = 0x9E3779B97F4A7C15ull;
  const uint64_t odd = 0xBF58476D1CE4E5B9ull;  // odd: x never becomes 0 (not that it matters)
  for (int64_t block = 0; block < kBlocksPerSlice; ++block) {
    asm volatile(".rept 1000\n\timul %1, %0\n\t.endr" : "+r"(x) : "r"(odd));
  }
  return x;
#else
  double x = 1.0;
  const double a = 0.999999, b = 1e-6;  // x stays near 1: no denormals, no overflow
  for (int64_t block = 0; block < kBlocksPerSlice; ++block) {
    asm volatile(".rept 1000\n\tfmadd %d0, %d0, %d1, %d2\n\t.endr" : "+w"(x) : "w"(a), "w"(b));
  }
  uint64_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  return bits;
#endif
}

// The calling thread's user-space cycle counter (perf_event_open), or why not.
class CycleCounter {
 public:
  CycleCounter() {
    perf_event_attr attr{};
    attr.type = PERF_TYPE_HARDWARE;
    attr.size = sizeof(attr);
    attr.config = PERF_COUNT_HW_CPU_CYCLES;
    attr.exclude_kernel = 1;  // allowed at perf_event_paranoid 2 (the default)
    attr.exclude_hv = 1;
    fd_ = static_cast<int>(syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0));
    if (fd_ < 0) {
      const int err = errno;
      error_ = std::string("perf_event_open(cycles): ") + std::strerror(err) +
               (err == ENOENT || err == EOPNOTSUPP ? " (no hardware cycle counter: a VM without a virtual PMU?)"
                : err == EACCES || err == EPERM ? " (kernel.perf_event_paranoid forbids it)"
                                                : "");
    }
  }
  ~CycleCounter() { if (fd_ >= 0) close(fd_); }
  CycleCounter(const CycleCounter&) = delete;
  CycleCounter& operator=(const CycleCounter&) = delete;
  // Cycles so far, or -1 when unreadable.
  int64_t read_cycles() {
    uint64_t value = 0;
    if (fd_ < 0 || ::read(fd_, &value, sizeof value) != static_cast<ssize_t>(sizeof value)) {
      if (error_.empty()) error_ = "perf cycles counter: read failed";
      return -1;
    }
    return static_cast<int64_t>(value);
  }
  const std::string& error() const { return error_; }

 private:
  int fd_ = -1;
  std::string error_;
};

// APERF (MSR 0xE8) of the CPU the calling thread runs on: it counts actual core cycles
// while the core is in C0, so under this load its rate is the clock. -1 when unreadable.
int64_t read_aperf(int cpu, std::string& error) {
#if defined(__x86_64__)
  const std::string path = "/dev/cpu/" + std::to_string(cpu) + "/msr";
  const int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) {
    error = path + ": " + std::strerror(errno) + " (APERF needs root and the msr module)";
    return -1;
  }
  uint64_t value = 0;
  const bool ok = pread(fd, &value, sizeof value, 0xE8) == static_cast<ssize_t>(sizeof value);
  close(fd);
  if (!ok) {
    error = path + ": APERF (MSR 0xE8) unreadable";
    return -1;
  }
  return static_cast<int64_t>(value);
#else
  (void)cpu;
  error = "APERF is an x86 MSR";
  return -1;
#endif
}

struct ThreadClock {
  double chain_ghz = 0.0;            // from the chain: ops x latency / seconds
  double perf_ghz = std::nan("");    // the cycle counter over the same slice
  double aperf_ghz = std::nan("");   // APERF over the same slice (x86, root)
  std::string perf_error, aperf_error;
};

// The calling thread's clock: timed slices of the chain for at least `seconds`. A slice
// during which the OS ran something else on this core reads slow, and no slice can read
// fast (each link waits its full latency), so the fastest slice is the clock, even on a
// machine that is not idle. The counters are read around the same slices; the fastest
// slice's counter readings are kept beside it.
ThreadClock thread_clock(double seconds, bool read_counters) {
  using steady = std::chrono::steady_clock;
  ThreadClock best;
  CycleCounter counter;
  if (!read_counters) best.perf_error = best.aperf_error = "not read (warm-up)";
  const auto start = steady::now();
  for (auto now = start; std::chrono::duration<double>(now - start).count() < seconds;) {
    std::string aperf_error;
    const int cpu_before = sched_getcpu();
    const int64_t aperf0 = read_counters ? read_aperf(cpu_before, aperf_error) : -1;
    const int64_t cycles0 = read_counters ? counter.read_cycles() : -1;
    const auto slice_start = steady::now();
    volatile uint64_t sink = run_chain();
    (void)sink;
    now = steady::now();
    const int64_t cycles1 = read_counters ? counter.read_cycles() : -1;
    const int64_t aperf1 = read_counters && aperf0 >= 0 ? read_aperf(cpu_before, aperf_error) : -1;
    const double slice_s = std::chrono::duration<double>(now - slice_start).count();
    const double ghz = static_cast<double>(kBlocksPerSlice * kOpsPerBlock * kCyclesPerOp) / slice_s * 1e-9;
    if (ghz <= best.chain_ghz) continue;
    best.chain_ghz = ghz;
    if (!read_counters) continue;
    best.perf_ghz = cycles0 >= 0 && cycles1 >= 0 ? (cycles1 - cycles0) / slice_s * 1e-9 : std::nan("");
    best.perf_error = counter.error();
    // APERF is per CPU: a thread that moved during the slice read two different counters.
    const bool same_cpu = sched_getcpu() == cpu_before;
    best.aperf_ghz = aperf0 >= 0 && aperf1 >= 0 && same_cpu ? (aperf1 - aperf0) / slice_s * 1e-9 : std::nan("");
    best.aperf_error = !aperf_error.empty() ? aperf_error : same_cpu ? "" : "thread moved to another CPU";
  }
  return best;
}

double median(std::vector<double> v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return std::isnan(x); }), v.end());
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

// One ThreadClock per OpenMP thread (one per allowed CPU by default), measured together.
std::vector<ThreadClock> measure_thread_clocks(double seconds) {
  if (!(seconds > 0.0)) throw std::invalid_argument("measure_clock: seconds must be > 0");
  std::vector<ThreadClock> clocks(static_cast<size_t>(resolve_threads(0)));
#pragma omp parallel num_threads(static_cast<int>(clocks.size()))
  {
    thread_clock(0.05, false);  // let the clock ramp up under load before measuring
#pragma omp barrier
    clocks[static_cast<size_t>(omp_get_thread_num())] = thread_clock(seconds, true);
  }
  return clocks;
}

std::vector<double> measure_clock_ghz_per_thread(double seconds) {
  std::vector<double> ghz;
  for (const ThreadClock& c : measure_thread_clocks(seconds)) ghz.push_back(c.chain_ghz);
  return ghz;
}

// Median of the per-thread clocks.
double measure_clock_ghz(double seconds) { return median(measure_clock_ghz_per_thread(seconds)); }

void bind_clock(py::module_& m) {
  m.def("measure_clock_ghz", [](double seconds) {
    py::gil_scoped_release release;
    return measure_clock_ghz(seconds);
  }, py::arg("seconds") = 0.2,
        "Measured core clock in GHz under an all-core load: one thread per allowed CPU runs a\n"
        "dependent chain of known latency (x86: imul, aarch64: fmadd) for `seconds`; each\n"
        "thread's clock is its fastest slice (slices the OS interrupted read slow); returns\n"
        "the median.");
  m.def("measure_clock", [](double seconds) {
    std::vector<ThreadClock> clocks;
    {
      py::gil_scoped_release release;
      clocks = measure_thread_clocks(seconds);
    }
    std::vector<double> chain, perf, aperf;
    std::string perf_error, aperf_error;
    for (const ThreadClock& c : clocks) {
      chain.push_back(c.chain_ghz);
      perf.push_back(c.perf_ghz);
      aperf.push_back(c.aperf_ghz);
      if (perf_error.empty()) perf_error = c.perf_error;
      if (aperf_error.empty()) aperf_error = c.aperf_error;
    }
    auto or_none = [](double x) { return std::isnan(x) ? py::object(py::none()) : py::object(py::float_(x)); };
    auto reason = [](double x, const std::string& error) {
      return std::isnan(x) ? py::object(py::str(error.empty() ? "no reading" : error)) : py::object(py::none());
    };
    const double perf_ghz = median(perf), aperf_ghz = median(aperf);
    py::dict d;
    d["ghz"] = median(chain);
    d["ghz_per_thread"] = chain;
    d["chain"] = kChain;
    d["perf_cycles_ghz"] = or_none(perf_ghz);
    d["perf_cycles_error"] = reason(perf_ghz, perf_error);
    d["aperf_ghz"] = or_none(aperf_ghz);
    d["aperf_error"] = reason(aperf_ghz, aperf_error);
    return d;
  }, py::arg("seconds") = 0.2,
        "The measured clock (measure_clock_ghz) with its cross-checks over the same slices:\n"
        "{ghz, ghz_per_thread, chain, perf_cycles_ghz, perf_cycles_error, aperf_ghz,\n"
        "aperf_error} (medians over threads; a cross-check is None with its error when\n"
        "unreadable).");
}

}  // namespace aibench::clock
