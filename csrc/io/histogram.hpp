// Latency histogram, log-linear like fio's and HdrHistogram's: values below 2^(B+1) ns
// are exact; above, each power of two is split into 2^B equal buckets, so a bucket's
// midpoint is within 2^-(B+1) of any value in it (B = 7: 0.4%; fio uses B = 6, ~0.8%).
// One histogram per I/O thread (no sharing on the hot path), merged at the end.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <utility>
#include <vector>

namespace aibench::io {

class LatencyHistogram {
 public:
  static constexpr int kSubBits = 7;
  static constexpr uint64_t kSub = uint64_t{1} << kSubBits;
  // Groups for msb = kSubBits+1 .. 63, plus the exact range [0, 2*kSub).
  static constexpr size_t kBuckets = (64 - kSubBits) * kSub;

  LatencyHistogram() : counts_(kBuckets, 0) {}

  static size_t index(uint64_t v) {
    if (v < 2 * kSub) return static_cast<size_t>(v);
    const int msb = 63 - __builtin_clzll(v);
    const int shift = msb - kSubBits;
    return static_cast<size_t>((uint64_t(shift + 1) << kSubBits) + ((v >> shift) & (kSub - 1)));
  }
  // Lowest value and width of bucket i.
  static void bounds(size_t i, uint64_t& low, uint64_t& width) {
    if (i < 2 * kSub) {
      low = i;
      width = 1;
      return;
    }
    const int shift = static_cast<int>(i >> kSubBits) - 1;
    low = (uint64_t{1} << (shift + kSubBits)) + (uint64_t(i & (kSub - 1)) << shift);
    width = uint64_t{1} << shift;
  }
  // The value a bucket stands for: its midpoint (exact for width 1).
  static double value(size_t i) {
    uint64_t low, width;
    bounds(i, low, width);
    return width == 1 ? double(low) : double(low) + double(width - 1) / 2.0;
  }

  void add(uint64_t v) {
    ++counts_[index(v)];
    ++count_;
    sum_ += double(v);
    min_ = std::min(min_, v);
    max_ = std::max(max_, v);
  }
  void merge(const LatencyHistogram& o) {
    for (size_t i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
    count_ += o.count_;
    sum_ += o.sum_;
    min_ = std::min(min_, o.min_);
    max_ = std::max(max_, o.max_);
  }

  uint64_t count() const { return count_; }
  double mean() const { return count_ ? sum_ / double(count_) : 0.0; }
  uint64_t min() const { return count_ ? min_ : 0; }
  uint64_t max() const { return max_; }

  // fio's rule: the value of the bucket holding the ceil(p/100 * n)-th smallest sample,
  // clamped to the exact min and max.
  double percentile(double p) const {
    if (count_ == 0) return std::numeric_limits<double>::quiet_NaN();
    uint64_t rank = static_cast<uint64_t>(std::ceil(p / 100.0 * double(count_)));
    rank = std::max<uint64_t>(1, std::min(rank, count_));
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::clamp(value(i), double(min()), double(max_));
    }
    return double(max_);
  }

  // The non-empty buckets as (index, count) and the exact sum: what is kept to merge
  // histograms of separate runs later (the storage suite's interleaved windows).
  std::vector<std::pair<size_t, uint64_t>> sparse() const {
    std::vector<std::pair<size_t, uint64_t>> out;
    for (size_t i = 0; i < kBuckets; ++i) {
      if (counts_[i]) out.emplace_back(i, counts_[i]);
    }
    return out;
  }
  double sum() const { return sum_; }
  // Adds what sparse(), sum(), min() and max() of another histogram gave.
  void merge_sparse(const std::vector<std::pair<size_t, uint64_t>>& buckets, double sum, uint64_t min,
                    uint64_t max) {
    uint64_t n = 0;
    for (const auto& [i, c] : buckets) {
      if (i >= kBuckets) throw std::out_of_range("latency histogram bucket index out of range");
      counts_[i] += c;
      n += c;
    }
    if (n == 0) return;
    count_ += n;
    sum_ += sum;
    min_ = std::min(min_, min);
    max_ = std::max(max_, max);
  }

 private:
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  double sum_ = 0.0;
  uint64_t min_ = std::numeric_limits<uint64_t>::max();
  uint64_t max_ = 0;
};

}  // namespace aibench::io
