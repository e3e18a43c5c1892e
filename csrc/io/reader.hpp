// The storage suite's reader: time-based sequential or random reads of one file or
// block device, with two engines:
//   io_uring  raw system calls (no liburing), one ring per thread, registered buffers
//             (READ_FIXED) and a registered file, batched submission and reaping;
//   pread     a thread pool: qd synchronous workers per thread.
// Latency (submission to completion) goes into one log-linear histogram per thread,
// merged at the end. A sample of the blocks read is compared with the content written
// by create_file (every 8-byte word is a hash of the file id and its offset).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/histogram.hpp"

namespace aibench::io {

// Content of word w (byte offset 8w) of a file with this id.
inline uint64_t content_word(uint64_t file_id, uint64_t w) {
  uint64_t z = w + file_id * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Writes `size` bytes of content (size a multiple of 4096) to a new file at `path`
// (O_EXCL: never overwrites anything), then fsyncs it. Throws std::runtime_error.
void create_file(const std::string& path, uint64_t size, uint64_t file_id);

// First mismatch of buf (len bytes read at offset) against the content, as a message;
// empty when it matches. offset and len must be multiples of 8.
std::string verify_block(const void* buf, uint64_t offset, uint64_t len, uint64_t file_id);

struct ReadConfig {
  std::string path;
  bool direct = true;
  bool random = false;
  uint64_t bs = 1 << 20;
  int qd = 1;
  int threads = 1;
  uint64_t region = 0;  // bytes from offset 0 that are read (a multiple of bs)
  uint64_t align = 4096;  // buffer alignment (O_DIRECT memory alignment)
  double ramp_s = 0.5;
  double runtime_s = 1.0;
  double interval_s = 0.1;  // throughput samples: one per interval of the window
  std::string engine = "auto";  // auto | io_uring | pread
  bool verify = true;
  uint64_t verify_every = 32;  // verify one completion in this many (per thread)
  uint64_t file_id = 0;
  uint64_t seed = 1;
};

struct ReadResult {
  std::string engine;
  std::string fallback_reason;  // why io_uring was not used (auto), else empty
  bool registered_buffers = false;
  bool registered_file = false;
  bool huge_pages = false;  // io_uring buffers: transparent huge pages requested (madvise)
  uint64_t bytes = 0;  // completed in the measurement window
  uint64_t ios = 0;
  double window_s = 0.0;
  uint64_t ramp_ios = 0;
  LatencyHistogram hist;
  std::vector<uint64_t> interval_ios;
  // Per I/O thread (a pread worker is one): its window totals, and its reads and bytes
  // per interval of the window, placed by their own arithmetic (complete() in reader.cpp)
  // so that the totals can be checked against them.
  std::vector<uint64_t> thread_bytes, thread_ios;
  std::vector<std::vector<uint64_t>> thread_interval_ios, thread_interval_bytes;
  uint64_t verified = 0;
  uint64_t mismatches = 0;
  std::string first_mismatch;
  std::string error;  // an I/O error ends the run early
  double cpu_user_s = 0.0, cpu_sys_s = 0.0;
  int os_threads = 0;
};

// Why io_uring cannot be used here (empty: it can), from a one-entry probe ring.
std::string io_uring_unavailable_reason();

ReadResult run_reads(const ReadConfig& cfg);

}  // namespace aibench::io
