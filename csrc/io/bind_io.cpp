// Python bindings of the storage reader: io_create_file, io_read, io_fill, io_verify,
// io_uring_unavailable_reason, io_dio_alignment, io_fs_type, io_latency_merge, io_histogram_summary.
// Arguments are checked here (ValueError); the I/O itself runs without the GIL.
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cerrno>
#include <cmath>
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "io/histogram.hpp"
#include "io/reader.hpp"

namespace py = pybind11;

namespace aibench::io {
namespace {

bool power_of_two(uint64_t x) { return x && !(x & (x - 1)); }

// Percentiles reported for every run (fio's keys are these with six decimals).
const std::vector<std::pair<const char*, double>> kPercentiles = {
    {"p50", 50.0}, {"p90", 90.0}, {"p99", 99.0}, {"p99_9", 99.9}, {"p99_99", 99.99}};

py::dict latency_dict(const LatencyHistogram& h) {
  py::dict d;
  d["count"] = h.count();
  d["min_ns"] = h.min();
  d["mean_ns"] = h.mean();
  d["max_ns"] = h.max();
  for (const auto& [name, p] : kPercentiles) d[(std::string(name) + "_ns").c_str()] = h.percentile(p);
  d["sum_ns"] = h.sum();
  d["buckets"] = h.sparse();  // to merge with other runs' (io_latency_merge)
  return d;
}

// One latency dict from the latency dicts of several io_read runs, exactly as one run's
// per-thread histograms are merged.
py::dict latency_merge(const std::vector<py::dict>& parts) {
  LatencyHistogram h;
  for (const auto& part : parts) {
    h.merge_sparse(part["buckets"].cast<std::vector<std::pair<size_t, uint64_t>>>(), part["sum_ns"].cast<double>(),
                   part["min_ns"].cast<uint64_t>(), part["max_ns"].cast<uint64_t>());
  }
  return latency_dict(h);
}

py::dict io_read(const std::string& path, bool direct, const std::string& pattern, uint64_t bs, int qd, int threads,
                 uint64_t region, uint64_t align, double ramp_s, double runtime_s, double interval_s,
                 const std::string& engine, bool verify, uint64_t verify_every, uint64_t file_id, uint64_t seed) {
  if (pattern != "seq" && pattern != "rand") throw py::value_error("io_read: pattern must be 'seq' or 'rand'");
  if (engine != "auto" && engine != "io_uring" && engine != "pread") {
    throw py::value_error("io_read: engine must be 'auto', 'io_uring' or 'pread'");
  }
  if (bs == 0 || bs % 512 != 0 || bs > (1ull << 30)) throw py::value_error("io_read: bs must be a multiple of 512, at most 1 GiB");
  if (qd < 1 || qd > 4096) throw py::value_error("io_read: qd must be in 1..4096");
  if (threads < 1 || threads > 1024) throw py::value_error("io_read: threads must be in 1..1024");
  if (!power_of_two(align)) throw py::value_error("io_read: align must be a power of two");
  if (direct && bs % align != 0) {
    throw py::value_error("io_read: bs " + std::to_string(bs) + " is not a multiple of the O_DIRECT alignment " +
                          std::to_string(align));
  }
  if (region < bs || region % bs != 0) throw py::value_error("io_read: region must be a positive multiple of bs");
  if (pattern == "seq" && region / bs < static_cast<uint64_t>(threads)) {
    throw py::value_error("io_read: the region is too small to give every thread its own blocks");
  }
  if (!(runtime_s > 0) || !(ramp_s >= 0) || !(interval_s > 0) || runtime_s / interval_s > 1e6) {
    throw py::value_error("io_read: runtime_s and interval_s must be > 0 (at most 1e6 intervals), ramp_s >= 0");
  }
  if (verify_every < 1) throw py::value_error("io_read: verify_every must be >= 1");
  ReadConfig cfg;
  cfg.path = path;
  cfg.direct = direct;
  cfg.random = pattern == "rand";
  cfg.bs = bs;
  cfg.qd = qd;
  cfg.threads = threads;
  cfg.region = region;
  cfg.align = align;
  cfg.ramp_s = ramp_s;
  cfg.runtime_s = runtime_s;
  cfg.interval_s = interval_s;
  cfg.engine = engine;
  cfg.verify = verify;
  cfg.verify_every = verify_every;
  cfg.file_id = file_id;
  cfg.seed = seed;
  ReadResult r;
  {
    py::gil_scoped_release release;
    r = run_reads(cfg);  // std::runtime_error -> RuntimeError
  }
  py::dict d;
  d["engine"] = r.engine;
  d["fallback_reason"] = r.fallback_reason.empty() ? py::object(py::none()) : py::object(py::str(r.fallback_reason));
  d["registered_buffers"] = r.registered_buffers;
  d["registered_file"] = r.registered_file;
  d["huge_pages_requested"] = r.huge_pages;  // madvise accepted; THP may still be off
  d["bytes"] = r.bytes;
  d["ios"] = r.ios;
  d["ramp_ios"] = r.ramp_ios;
  d["window_s"] = r.window_s;
  d["interval_s"] = interval_s;
  d["interval_ios"] = r.interval_ios;
  d["thread_bytes"] = r.thread_bytes;
  d["thread_ios"] = r.thread_ios;
  d["thread_interval_ios"] = r.thread_interval_ios;
  d["thread_interval_bytes"] = r.thread_interval_bytes;
  d["latency"] = latency_dict(r.hist);
  d["verified"] = r.verified;
  d["mismatches"] = r.mismatches;
  d["first_mismatch"] = r.first_mismatch.empty() ? py::object(py::none()) : py::object(py::str(r.first_mismatch));
  d["error"] = r.error.empty() ? py::object(py::none()) : py::object(py::str(r.error));
  d["cpu_user_s"] = r.cpu_user_s;
  d["cpu_sys_s"] = r.cpu_sys_s;
  d["os_threads"] = r.os_threads;
  return d;
}

py::dict dio_alignment(const std::string& path) {
  struct statx stx;
  std::memset(&stx, 0, sizeof(stx));
  py::dict d;
  if (statx(AT_FDCWD, path.c_str(), 0, STATX_DIOALIGN | STATX_TYPE, &stx) != 0) {
    throw py::value_error("statx " + path + ": " + std::strerror(errno));
  }
  if ((stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align != 0) {
    d["mem_align"] = stx.stx_dio_mem_align;
    d["offset_align"] = stx.stx_dio_offset_align;
    d["source"] = "statx STATX_DIOALIGN";
  } else {
    d["mem_align"] = 4096;
    d["offset_align"] = 4096;
    d["source"] = (stx.stx_mask & STATX_DIOALIGN) ? "default 4096 (statx: this file does not support O_DIRECT)"
                                                   : "default 4096 (statx without STATX_DIOALIGN)";
  }
  return d;
}

py::dict fs_type(const std::string& path) {
  struct statfs sf;
  if (statfs(path.c_str(), &sf) != 0) throw py::value_error("statfs " + path + ": " + std::strerror(errno));
  const auto magic = static_cast<unsigned long>(sf.f_type);
  const char* name = "other";
  switch (magic) {
    case TMPFS_MAGIC: name = "tmpfs"; break;
    case EXT4_SUPER_MAGIC: name = "ext2/3/4"; break;
    case XFS_SUPER_MAGIC: name = "xfs"; break;
    case BTRFS_SUPER_MAGIC: name = "btrfs"; break;
    case OVERLAYFS_SUPER_MAGIC: name = "overlayfs"; break;
    case NFS_SUPER_MAGIC: name = "nfs"; break;
    case 0x2fc12fc1: name = "zfs"; break;
    case 0x65735546: name = "fuse"; break;
    case 0x858458f6: name = "ramfs"; break;
    default: break;
  }
  py::dict d;
  d["magic"] = magic;
  d["name"] = name;
  d["is_tmpfs"] = magic == TMPFS_MAGIC || magic == 0x858458f6;  // tmpfs, ramfs: memory, no O_DIRECT
  d["free_bytes"] = static_cast<uint64_t>(sf.f_bavail) * static_cast<uint64_t>(sf.f_bsize);
  return d;
}

py::dict histogram_summary(const std::vector<uint64_t>& values_ns, const std::vector<double>& percentiles) {
  LatencyHistogram a, b;
  // Two halves merged, as the reader merges its per-thread histograms.
  for (size_t i = 0; i < values_ns.size(); ++i) (i % 2 ? a : b).add(values_ns[i]);
  a.merge(b);
  py::dict d = latency_dict(a);
  std::vector<double> out;
  for (double p : percentiles) {
    if (!(p >= 0.0 && p <= 100.0)) throw py::value_error("io_histogram_summary: percentiles must be in [0, 100]");
    out.push_back(a.percentile(p));
  }
  d["percentiles"] = out;
  d["bucket_count"] = LatencyHistogram::kBuckets;
  d["relative_error"] = 1.0 / double(2 * LatencyHistogram::kSub);
  return d;
}

}  // namespace

void bind_io(py::module_& m) {
  m.def("io_create_file", [](const std::string& path, uint64_t size, uint64_t file_id) {
    if (size == 0 || size % 4096 != 0) throw py::value_error("io_create_file: size must be a positive multiple of 4096");
    py::gil_scoped_release release;
    create_file(path, size, file_id);
  }, py::arg("path"), py::arg("size"), py::arg("file_id"),
     "Create a new file (never overwrites) of `size` bytes of content derived from file_id, fsynced.");
  m.def("io_fill", [](py::buffer buf, uint64_t offset, uint64_t file_id) {
    py::buffer_info info = buf.request(true);
    const uint64_t len = static_cast<uint64_t>(info.size * info.itemsize);
    if (offset % 8 || len % 8) throw py::value_error("io_fill: offset and length must be multiples of 8");
    auto* p = static_cast<unsigned char*>(info.ptr);
    py::gil_scoped_release release;
    for (uint64_t i = 0; i < len / 8; ++i) {
      const uint64_t w = content_word(file_id, offset / 8 + i);
      std::memcpy(p + 8 * i, &w, 8);
    }
  }, py::arg("buffer"), py::arg("offset"), py::arg("file_id"),
     "Fill a writable buffer with the content of bytes [offset, offset+len) of object/file `file_id`.");
  m.def("io_verify", [](py::buffer buf, uint64_t offset, uint64_t file_id) -> py::object {
    py::buffer_info info = buf.request();
    const uint64_t len = static_cast<uint64_t>(info.size * info.itemsize);
    if (offset % 8 || len % 8) throw py::value_error("io_verify: offset and length must be multiples of 8");
    std::string msg;
    {
      py::gil_scoped_release release;
      // Unaligned buffers (bytes objects) are compared through memcpy.
      std::vector<uint64_t> chunk(std::min<uint64_t>(len / 8, 1 << 16));
      for (uint64_t done = 0; done < len && msg.empty();) {
        const uint64_t n = std::min<uint64_t>(len - done, chunk.size() * 8);
        std::memcpy(chunk.data(), static_cast<const char*>(info.ptr) + done, n);
        msg = verify_block(chunk.data(), offset + done, n, file_id);
        done += n;
      }
    }
    if (msg.empty()) return py::none();
    return py::str(msg);
  }, py::arg("buffer"), py::arg("offset"), py::arg("file_id"),
     "Check a buffer holding bytes [offset, offset+len) of object/file `file_id`; None or the first mismatch.");
  m.def("io_uring_unavailable_reason", []() -> py::object {
    std::string why;
    {
      py::gil_scoped_release release;
      why = io_uring_unavailable_reason();
    }
    if (why.empty()) return py::none();
    return py::str(why);
  }, "None when io_uring rings can be created here, else why not.");
  m.def("io_read", &io_read, py::arg("path"), py::arg("direct"), py::arg("pattern"), py::arg("bs"), py::arg("qd"),
        py::arg("threads"), py::arg("region"), py::arg("align") = 4096, py::arg("ramp_s") = 0.5,
        py::arg("runtime_s") = 1.0, py::arg("interval_s") = 0.1, py::arg("engine") = "auto",
        py::arg("verify") = true, py::arg("verify_every") = 32, py::arg("file_id") = 0, py::arg("seed") = 1,
        "Time-based reads of `path` (see csrc/io/reader.hpp); a dict of counts, latency percentiles, "
        "verification and CPU time.");
  m.def("io_dio_alignment", &dio_alignment, py::arg("path"),
        "O_DIRECT memory and offset alignment of a file (statx STATX_DIOALIGN, else 4096).");
  m.def("io_fs_type", &fs_type, py::arg("path"), "Filesystem of a path (statfs): magic, name, is_tmpfs, free_bytes.");
  m.def("io_latency_merge", &latency_merge, py::arg("parts"),
        "One latency dict (counts, percentiles, buckets) from the `latency` dicts of several io_read runs.");
  m.def("io_histogram_summary", &histogram_summary, py::arg("values_ns"), py::arg("percentiles"),
        "Feeds values into the reader's latency histogram (two merged halves); its summary and percentiles.");
}

}  // namespace aibench::io
