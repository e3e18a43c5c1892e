// Engines of the storage reader (see reader.hpp). The io_uring engine talks to the
// kernel with io_uring_setup/enter/register directly: the rings are mmapped and driven
// with acquire/release atomics as the kernel's io_uring ABI documents.
#include "io/reader.hpp"

#include <fcntl.h>
#include <linux/io_uring.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <system_error>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace aibench::io {
namespace {

using Clock = std::chrono::steady_clock;

std::string errno_message(const std::string& what, int err) { return what + ": " + std::strerror(err); }

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
using AlignedBuffer = std::unique_ptr<void, FreeDeleter>;

uint64_t round_up(uint64_t x, uint64_t to) { return (x + to - 1) / to * to; }

// The qd buffers of one io_uring thread in one anonymous mapping, 2 MiB aligned, with
// transparent huge pages requested. A read into a huge page is one physically contiguous
// segment; into 4 KiB pages it is bs/4096 segments, and a device with a segment limit
// splits it (virtio-blk: often 254 per request, so a 1 MiB read becomes two).
class BufferPool {
 public:
  static constexpr uint64_t kHuge = 2ull << 20;

  BufferPool(int count, uint64_t size, uint64_t align)
      : stride_(round_up(size, std::max<uint64_t>(align, 4096))), bytes_(round_up(stride_ * count, kHuge)) {
    map_bytes_ = bytes_ + kHuge;  // room to align the start
    map_ = mmap(nullptr, map_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map_ == MAP_FAILED) {
      throw std::runtime_error("out of memory mapping " + std::to_string(map_bytes_) + " bytes of I/O buffers");
    }
    base_ = reinterpret_cast<char*>(round_up(reinterpret_cast<uintptr_t>(map_), kHuge));
    huge_pages_ = madvise(base_, bytes_, MADV_HUGEPAGE) == 0;
    std::memset(base_, 0, bytes_);  // touch every page before timing
  }
  ~BufferPool() { munmap(map_, map_bytes_); }
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  char* at(int i) const { return base_ + static_cast<uint64_t>(i) * stride_; }
  bool huge_pages_requested() const { return huge_pages_; }

 private:
  uint64_t stride_, bytes_, map_bytes_ = 0;
  void* map_ = nullptr;
  char* base_ = nullptr;
  bool huge_pages_ = false;
};

AlignedBuffer aligned_buffer(uint64_t align, uint64_t size) {
  void* p = nullptr;
  if (posix_memalign(&p, std::max<uint64_t>(align, sizeof(void*)), size) != 0 || p == nullptr) {
    throw std::runtime_error("out of memory allocating a " + std::to_string(size) + "-byte I/O buffer");
  }
  std::memset(p, 0, size);  // touch every page before timing
  return AlignedBuffer(p);
}

// ---------------------------------------------------------------------------------
// A raw io_uring: setup, the three mmapped regions, submission and reaping.
class Ring {
  // io_uring_setup flags by value: older kernel headers lack the names.
  static constexpr unsigned kSingleIssuer = 1u << 12;  // IORING_SETUP_SINGLE_ISSUER
  static constexpr unsigned kDeferTaskrun = 1u << 13;  // IORING_SETUP_DEFER_TASKRUN

 public:
  explicit Ring(unsigned entries) {
    // One thread submits and reaps (SINGLE_ISSUER), so completions can be run when it
    // asks for them (DEFER_TASKRUN, Linux 6.1+) instead of interrupting it; older
    // kernels refuse the flags, and get a plain ring.
    io_uring_params p;
    std::memset(&p, 0, sizeof(p));
    p.flags = kSingleIssuer | kDeferTaskrun;
    fd_ = static_cast<int>(syscall(__NR_io_uring_setup, entries, &p));
    if (fd_ < 0 && errno == EINVAL) {
      std::memset(&p, 0, sizeof(p));
      fd_ = static_cast<int>(syscall(__NR_io_uring_setup, entries, &p));
    }
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "io_uring_setup");
    sq_size_ = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    cq_size_ = p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe);
    const bool single = p.features & IORING_FEAT_SINGLE_MMAP;
    if (single) sq_size_ = cq_size_ = std::max(sq_size_, cq_size_);
    sq_ptr_ = mmap(nullptr, sq_size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_, IORING_OFF_SQ_RING);
    if (sq_ptr_ == MAP_FAILED) fail("mmap(sq ring)");
    if (single) {
      cq_ptr_ = sq_ptr_;
    } else {
      cq_ptr_ = mmap(nullptr, cq_size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_, IORING_OFF_CQ_RING);
      if (cq_ptr_ == MAP_FAILED) fail("mmap(cq ring)");
    }
    sqes_size_ = p.sq_entries * sizeof(io_uring_sqe);
    auto* sqes = mmap(nullptr, sqes_size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_, IORING_OFF_SQES);
    if (sqes == MAP_FAILED) fail("mmap(sqes)");
    sqes_ = static_cast<io_uring_sqe*>(sqes);
    auto* sq = static_cast<char*>(sq_ptr_);
    auto* cq = static_cast<char*>(cq_ptr_);
    sq_tail_ = reinterpret_cast<unsigned*>(sq + p.sq_off.tail);
    sq_mask_ = *reinterpret_cast<unsigned*>(sq + p.sq_off.ring_mask);
    sq_array_ = reinterpret_cast<unsigned*>(sq + p.sq_off.array);
    cq_head_ = reinterpret_cast<unsigned*>(cq + p.cq_off.head);
    cq_tail_ = reinterpret_cast<unsigned*>(cq + p.cq_off.tail);
    cq_mask_ = *reinterpret_cast<unsigned*>(cq + p.cq_off.ring_mask);
    cqes_ = reinterpret_cast<io_uring_cqe*>(cq + p.cq_off.cqes);
    local_tail_ = *sq_tail_;
  }
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;
  ~Ring() { release(); }

  int fd() const { return fd_; }

  io_uring_sqe* next_sqe() {
    const unsigned idx = local_tail_ & sq_mask_;
    io_uring_sqe* sqe = &sqes_[idx];
    std::memset(sqe, 0, sizeof(*sqe));
    sq_array_[idx] = idx;
    ++local_tail_;
    ++pending_;
    return sqe;
  }

  // Submits every prepared SQE in one system call and, with wait, blocks for at least
  // one completion. Returns 0 or a negative errno.
  int submit(bool wait) {
    __atomic_store_n(sq_tail_, local_tail_, __ATOMIC_RELEASE);
    for (;;) {
      const unsigned flags = wait ? IORING_ENTER_GETEVENTS : 0;
      const long ret = syscall(__NR_io_uring_enter, fd_, pending_, wait ? 1u : 0u, flags, nullptr, 0);
      if (ret >= 0) {
        pending_ -= static_cast<unsigned>(ret);
        if (pending_ == 0 || wait) return 0;
        continue;
      }
      if (errno == EINTR) continue;
      if ((errno == EAGAIN || errno == EBUSY) && wait) return 0;  // reap, then resubmit
      return -errno;
    }
  }

  template <class F>
  unsigned reap(F&& on_cqe) {
    unsigned head = *cq_head_;
    const unsigned tail = __atomic_load_n(cq_tail_, __ATOMIC_ACQUIRE);
    unsigned n = 0;
    while (head != tail) {
      on_cqe(cqes_[head & cq_mask_]);
      ++head;
      ++n;
    }
    __atomic_store_n(cq_head_, head, __ATOMIC_RELEASE);
    return n;
  }

  int register_buffers(const std::vector<iovec>& iov) {
    return syscall(__NR_io_uring_register, fd_, IORING_REGISTER_BUFFERS, iov.data(),
                   static_cast<unsigned>(iov.size())) < 0 ? -errno : 0;
  }
  int register_file(int file_fd) {
    return syscall(__NR_io_uring_register, fd_, IORING_REGISTER_FILES, &file_fd, 1u) < 0 ? -errno : 0;
  }

 private:
  [[noreturn]] void fail(const char* what) {
    const int err = errno;
    release();
    throw std::system_error(err, std::generic_category(), what);
  }
  void release() {
    if (sqes_ != nullptr) munmap(sqes_, sqes_size_);
    if (cq_ptr_ != nullptr && cq_ptr_ != MAP_FAILED && cq_ptr_ != sq_ptr_) munmap(cq_ptr_, cq_size_);
    if (sq_ptr_ != nullptr && sq_ptr_ != MAP_FAILED) munmap(sq_ptr_, sq_size_);
    if (fd_ >= 0) close(fd_);
    sqes_ = nullptr;
    sq_ptr_ = cq_ptr_ = nullptr;
    fd_ = -1;
  }

  int fd_ = -1;
  void* sq_ptr_ = nullptr;
  void* cq_ptr_ = nullptr;
  size_t sq_size_ = 0, cq_size_ = 0, sqes_size_ = 0;
  io_uring_sqe* sqes_ = nullptr;
  unsigned* sq_tail_ = nullptr;
  unsigned sq_mask_ = 0;
  unsigned* sq_array_ = nullptr;
  unsigned* cq_head_ = nullptr;
  unsigned* cq_tail_ = nullptr;
  unsigned cq_mask_ = 0;
  io_uring_cqe* cqes_ = nullptr;
  unsigned local_tail_ = 0;
  unsigned pending_ = 0;
};

// ---------------------------------------------------------------------------------
// What every I/O thread shares, and what each one accumulates.
struct Shared {
  const ReadConfig& cfg;
  int fd;
  Clock::time_point t_start, t_window, t_end;
  int64_t window_ns = 0, interval_ns = 1;  // t_end - t_window, and one interval
  uint64_t blocks_total;  // region / bs
  uint64_t blocks_slice;  // per thread for sequential reads
  std::atomic<bool> stop{false};
  std::mutex error_mutex;
  std::string error;

  void set_error(const std::string& e) {
    std::lock_guard<std::mutex> lock(error_mutex);
    if (error.empty()) error = e;
    stop.store(true);
  }
};

struct ThreadStats {
  LatencyHistogram hist;
  uint64_t bytes = 0, ios = 0, ramp_ios = 0;
  std::vector<uint64_t> interval_ios, interval_bytes;
  uint64_t verified = 0, mismatches = 0, completions = 0;
  std::string first_mismatch;
  bool registered_buffers = false, registered_file = false, huge_pages = false;
};

uint64_t xorshift(uint64_t& s) {
  s ^= s >> 12;
  s ^= s << 25;
  s ^= s >> 27;
  return s * 0x2545F4914F6CDD1Dull;
}

// Buffered sequential reads: at the end of each pass over a thread's slice, its pages
// are dropped from the page cache (as fio's invalidate does for every loop), so that the
// next pass reads the device again. No effect with O_DIRECT.
void evict_slice(const Shared& sh, uint64_t slice_start_block) {
  if (sh.cfg.direct) return;
  posix_fadvise(sh.fd, static_cast<off_t>(slice_start_block * sh.cfg.bs),
                static_cast<off_t>(sh.blocks_slice * sh.cfg.bs), POSIX_FADV_DONTNEED);
}

// Accounts one completed read that ended at `done` after starting at `submitted`.
void complete(Shared& sh, ThreadStats& st, const void* buf, uint64_t offset, Clock::time_point submitted,
              Clock::time_point done) {
  const auto& cfg = sh.cfg;
  // The window's totals: reads that completed in [t_window, t_end).
  if (done >= sh.t_window && done < sh.t_end) {
    const auto lat = std::chrono::duration_cast<std::chrono::nanoseconds>(done - submitted).count();
    st.hist.add(lat > 0 ? static_cast<uint64_t>(lat) : 0);
    st.bytes += cfg.bs;
    ++st.ios;
  } else if (done < sh.t_window) {
    ++st.ramp_ios;
  }
  // The same read placed in its interval by its own arithmetic (nanoseconds since
  // t_window, not the comparisons above): the totals must equal the intervals' sums
  // (checked by the storage suite), so a read counted outside the window shows.
  const int64_t since_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(done - sh.t_window).count();
  if (since_ns >= 0 && since_ns < sh.window_ns) {
    const size_t slot = std::min(st.interval_ios.size() - 1, static_cast<size_t>(since_ns / sh.interval_ns));
    ++st.interval_ios[slot];
    st.interval_bytes[slot] += cfg.bs;
  }
  if (cfg.verify && (st.completions++ % cfg.verify_every) == 0) {
    ++st.verified;
    std::string msg = verify_block(buf, offset, cfg.bs, cfg.file_id);
    if (!msg.empty()) {
      if (st.mismatches++ == 0) st.first_mismatch = msg;
      sh.stop.store(true);  // the case fails: no need to go on
    }
  }
}

size_t interval_count(const ReadConfig& cfg) {
  return static_cast<size_t>(cfg.runtime_s / cfg.interval_s) + 1;
}

// One thread of the io_uring engine: qd reads in flight on its own ring.
void uring_thread(Shared& sh, ThreadStats& st, int tid) {
  const auto& cfg = sh.cfg;
  st.interval_ios.assign(interval_count(cfg), 0);
  st.interval_bytes.assign(interval_count(cfg), 0);
  // The buffers outlive the ring (declared first): reads still in flight when the
  // ring closes never land in freed memory.
  std::unique_ptr<BufferPool> bufs;
  std::vector<iovec> iov;
  std::unique_ptr<Ring> ring;
  try {
    bufs = std::make_unique<BufferPool>(cfg.qd, cfg.bs, cfg.align);
    st.huge_pages = bufs->huge_pages_requested();
    for (int i = 0; i < cfg.qd; ++i) iov.push_back({bufs->at(i), static_cast<size_t>(cfg.bs)});
    ring = std::make_unique<Ring>(static_cast<unsigned>(cfg.qd));
  } catch (const std::system_error& e) {
    sh.set_error(std::string("io_uring_setup: ") + std::strerror(e.code().value()));
    return;
  } catch (const std::exception& e) {
    sh.set_error(e.what());
    return;
  }
  st.registered_buffers = ring->register_buffers(iov) == 0;
  st.registered_file = ring->register_file(sh.fd) == 0;

  struct Slot {
    uint64_t offset;
    Clock::time_point submitted;
  };
  std::vector<Slot> slots(cfg.qd);
  uint64_t seq_next = 0;
  const uint64_t slice_start = static_cast<uint64_t>(tid) * sh.blocks_slice;
  uint64_t rng = cfg.seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(tid) + 1;
  auto next_offset = [&]() -> uint64_t {
    if (cfg.random) return (xorshift(rng) % sh.blocks_total) * cfg.bs;
    const uint64_t b = slice_start + seq_next;
    seq_next = (seq_next + 1) % sh.blocks_slice;
    if (seq_next == 0) evict_slice(sh, slice_start);
    return b * cfg.bs;
  };
  std::vector<int> refill;
  auto prep = [&](int slot) {
    const uint64_t off = next_offset();
    io_uring_sqe* sqe = ring->next_sqe();
    sqe->opcode = st.registered_buffers ? IORING_OP_READ_FIXED : IORING_OP_READ;
    if (st.registered_file) {
      sqe->fd = 0;
      sqe->flags = IOSQE_FIXED_FILE;
    } else {
      sqe->fd = sh.fd;
    }
    sqe->addr = reinterpret_cast<uint64_t>(bufs->at(slot));
    sqe->len = static_cast<uint32_t>(cfg.bs);
    sqe->off = off;
    if (st.registered_buffers) sqe->buf_index = static_cast<uint16_t>(slot);
    sqe->user_data = static_cast<uint64_t>(slot);
    slots[slot].offset = off;
    refill.push_back(slot);
  };

  std::this_thread::sleep_until(sh.t_start);
  for (int i = 0; i < cfg.qd; ++i) prep(i);
  int inflight = cfg.qd;
  auto stamp = [&]() {
    const auto now = Clock::now();
    for (int s : refill) slots[s].submitted = now;
    refill.clear();
  };
  stamp();
  while (inflight > 0) {
    const int rc = ring->submit(true);
    if (rc < 0) {
      sh.set_error(errno_message("io_uring_enter", -rc));
      // SQEs that could not be submitted are not in flight.
      return;
    }
    const auto now = Clock::now();
    const bool go_on = now < sh.t_end && !sh.stop.load(std::memory_order_relaxed);
    ring->reap([&](const io_uring_cqe& cqe) {
      const int slot = static_cast<int>(cqe.user_data);
      --inflight;
      if (cqe.res < 0) {
        sh.set_error(errno_message("read at offset " + std::to_string(slots[slot].offset), -cqe.res));
        return;
      }
      if (static_cast<uint64_t>(cqe.res) != cfg.bs) {
        sh.set_error("short read at offset " + std::to_string(slots[slot].offset) + ": " +
                     std::to_string(cqe.res) + " of " + std::to_string(cfg.bs) + " bytes");
        return;
      }
      complete(sh, st, bufs->at(slot), slots[slot].offset, slots[slot].submitted, now);
      if (go_on && !sh.stop.load(std::memory_order_relaxed)) {
        prep(slot);
        ++inflight;
      }
    });
    stamp();
  }
}

// One worker of the pread engine: a synchronous read at a time.
void pread_worker(Shared& sh, ThreadStats& st, int job, int worker, std::atomic<uint64_t>& seq_counter) {
  const auto& cfg = sh.cfg;
  st.interval_ios.assign(interval_count(cfg), 0);
  st.interval_bytes.assign(interval_count(cfg), 0);
  AlignedBuffer buf;
  try {
    buf = aligned_buffer(cfg.align, cfg.bs);
  } catch (const std::exception& e) {
    sh.set_error(e.what());
    return;
  }
  const uint64_t slice_start = static_cast<uint64_t>(job) * sh.blocks_slice;
  uint64_t rng = cfg.seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(job) * 7919 + worker + 1;
  std::this_thread::sleep_until(sh.t_start);
  for (;;) {
    const auto start = Clock::now();
    if (start >= sh.t_end || sh.stop.load(std::memory_order_relaxed)) return;
    uint64_t off;
    if (cfg.random) {
      off = (xorshift(rng) % sh.blocks_total) * cfg.bs;
    } else {
      const uint64_t n = seq_counter.fetch_add(1);
      if (n % sh.blocks_slice == sh.blocks_slice - 1) evict_slice(sh, slice_start);
      off = (slice_start + n % sh.blocks_slice) * cfg.bs;
    }
    uint64_t got = 0;
    while (got < cfg.bs) {
      const ssize_t r = pread(sh.fd, static_cast<char*>(buf.get()) + got, cfg.bs - got, static_cast<off_t>(off + got));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) {
        sh.set_error(errno_message("pread at offset " + std::to_string(off), errno));
        return;
      }
      got += static_cast<uint64_t>(r);
      // End of file, or a partial O_DIRECT read (never retried): the read is short.
      if (r == 0 || (cfg.direct && got < cfg.bs)) {
        sh.set_error("short read at offset " + std::to_string(off) + ": " + std::to_string(got) + " of " +
                     std::to_string(cfg.bs) + " bytes");
        return;
      }
    }
    complete(sh, st, buf.get(), off, start, Clock::now());
  }
}

double seconds(const timeval& tv) { return double(tv.tv_sec) + double(tv.tv_usec) * 1e-6; }

}  // namespace

void create_file(const std::string& path, uint64_t size, uint64_t file_id) {
  if (size == 0 || size % 4096 != 0) throw std::invalid_argument("create_file: size must be a positive multiple of 4096");
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error(errno_message("cannot create " + path, errno));
  const uint64_t chunk = std::min<uint64_t>(size, 4u << 20);
  std::vector<uint64_t> buf(chunk / 8);
  std::string err;
  for (uint64_t done = 0; done < size && err.empty();) {
    const uint64_t n = std::min(chunk, size - done);
    const uint64_t w0 = done / 8;
    for (uint64_t i = 0; i < n / 8; ++i) buf[i] = content_word(file_id, w0 + i);
    uint64_t put = 0;
    while (put < n) {
      const ssize_t r = write(fd, reinterpret_cast<const char*>(buf.data()) + put, n - put);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        err = errno_message("writing " + path, r < 0 ? errno : ENOSPC);
        break;
      }
      put += static_cast<uint64_t>(r);
    }
    done += n;
  }
  if (err.empty() && fsync(fd) != 0) err = errno_message("fsync " + path, errno);
  close(fd);
  if (!err.empty()) {
    unlink(path.c_str());
    throw std::runtime_error(err);
  }
}

std::string verify_block(const void* buf, uint64_t offset, uint64_t len, uint64_t file_id) {
  const auto* words = static_cast<const uint64_t*>(buf);
  const uint64_t w0 = offset / 8;
  for (uint64_t i = 0; i < len / 8; ++i) {
    const uint64_t want = content_word(file_id, w0 + i);
    if (words[i] != want) {
      const auto* got_b = reinterpret_cast<const unsigned char*>(&words[i]);
      const auto* want_b = reinterpret_cast<const unsigned char*>(&want);
      int b = 0;
      while (b < 8 && got_b[b] == want_b[b]) ++b;
      char msg[200];
      std::snprintf(msg, sizeof(msg), "content mismatch at file offset %llu (block at %llu): byte 0x%02x, expected 0x%02x",
                    static_cast<unsigned long long>(offset + i * 8 + b), static_cast<unsigned long long>(offset),
                    got_b[b], want_b[b]);
      return msg;
    }
  }
  return {};
}

std::string io_uring_unavailable_reason() {
  try {
    Ring ring(1);
    (void)ring;
    return {};
  } catch (const std::system_error& e) {
    const int err = e.code().value();
    std::string why = std::string("io_uring_setup failed: ") + std::strerror(err);
    if (err == ENOSYS) why += " (kernel without io_uring)";
    if (err == EPERM || err == EACCES) why += " (disabled by the kernel.io_uring_disabled sysctl or a seccomp filter)";
    return why;
  }
}

ReadResult run_reads(const ReadConfig& cfg) {
  ReadResult res;
  if (cfg.engine == "auto") {
    res.fallback_reason = io_uring_unavailable_reason();
    res.engine = res.fallback_reason.empty() ? "io_uring" : "pread";
  } else if (cfg.engine == "io_uring") {
    const std::string why = io_uring_unavailable_reason();
    if (!why.empty()) throw std::runtime_error(why);
    res.engine = "io_uring";
  } else {
    res.engine = "pread";
  }
  const int fd = open(cfg.path.c_str(), O_RDONLY | O_CLOEXEC | (cfg.direct ? O_DIRECT : 0));
  if (fd < 0) {
    const int err = errno;
    if (cfg.direct && err == EINVAL) {
      throw std::runtime_error("O_DIRECT is not supported by the filesystem of " + cfg.path);
    }
    throw std::runtime_error(errno_message("cannot open " + cfg.path + " for reading", err));
  }
  posix_fadvise(fd, 0, 0, cfg.random ? POSIX_FADV_RANDOM : POSIX_FADV_SEQUENTIAL);

  Shared sh{cfg, fd};
  sh.blocks_total = cfg.region / cfg.bs;
  sh.blocks_slice = std::max<uint64_t>(1, sh.blocks_total / static_cast<uint64_t>(cfg.threads));
  const auto now = Clock::now();
  sh.t_start = now + std::chrono::milliseconds(20 + 2 * cfg.threads);
  sh.t_window = sh.t_start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(cfg.ramp_s));
  sh.t_end = sh.t_window + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(cfg.runtime_s));
  sh.window_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(sh.t_end - sh.t_window).count();
  sh.interval_ns = std::max<int64_t>(1, std::llround(cfg.interval_s * 1e9));

  const bool uring = res.engine == "io_uring";
  const int nstats = uring ? cfg.threads : cfg.threads * cfg.qd;
  std::vector<ThreadStats> stats(static_cast<size_t>(nstats));
  std::vector<std::atomic<uint64_t>> seq_counters(static_cast<size_t>(cfg.threads));
  for (auto& c : seq_counters) c.store(0);
  std::vector<std::thread> pool;
  rusage ru0{}, ru1{};
  try {
    for (int i = 0; i < nstats; ++i) {
      if (uring) {
        pool.emplace_back(uring_thread, std::ref(sh), std::ref(stats[i]), i);
      } else {
        const int job = i / cfg.qd;
        pool.emplace_back(pread_worker, std::ref(sh), std::ref(stats[i]), job, i % cfg.qd, std::ref(seq_counters[job]));
      }
    }
  } catch (const std::system_error& e) {
    sh.set_error(std::string("cannot start I/O threads: ") + e.what());
  }
  auto wait_until = [&](Clock::time_point t) {
    while (Clock::now() < t && !sh.stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  };
  wait_until(sh.t_window);
  getrusage(RUSAGE_SELF, &ru0);
  wait_until(sh.t_end);
  getrusage(RUSAGE_SELF, &ru1);
  for (auto& t : pool) t.join();
  close(fd);

  res.os_threads = static_cast<int>(pool.size());
  res.window_s = cfg.runtime_s;
  res.cpu_user_s = seconds(ru1.ru_utime) - seconds(ru0.ru_utime);
  res.cpu_sys_s = seconds(ru1.ru_stime) - seconds(ru0.ru_stime);
  res.interval_ios.assign(interval_count(cfg), 0);
  res.registered_buffers = uring;
  res.registered_file = uring;
  res.huge_pages = uring;
  for (auto& st : stats) {
    res.hist.merge(st.hist);
    res.bytes += st.bytes;
    res.ios += st.ios;
    res.ramp_ios += st.ramp_ios;
    res.verified += st.verified;
    if (st.mismatches && res.mismatches == 0) res.first_mismatch = st.first_mismatch;
    res.mismatches += st.mismatches;
    res.registered_buffers = res.registered_buffers && st.registered_buffers;
    res.registered_file = res.registered_file && st.registered_file;
    res.huge_pages = res.huge_pages && st.huge_pages;
    for (size_t i = 0; i < st.interval_ios.size() && i < res.interval_ios.size(); ++i) {
      res.interval_ios[i] += st.interval_ios[i];
    }
    res.thread_bytes.push_back(st.bytes);
    res.thread_ios.push_back(st.ios);
    res.thread_interval_ios.push_back(st.interval_ios);
    res.thread_interval_bytes.push_back(st.interval_bytes);
  }
  res.error = sh.error;
  return res;
}

}  // namespace aibench::io
