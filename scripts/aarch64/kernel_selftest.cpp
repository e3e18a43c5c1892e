// Self-test of the own CPU kernels' portable path, built without Python for a cross check
// on another architecture (scripts/cross_check_aarch64.sh builds it for aarch64 and runs it
// under qemu-user). GEMM in fp32, fp64, bf16 (fp32 and bf16 output) and int8 over the shape
// classes the driver tells apart (GEMV rows / columns, the column split for few rows, the
// row split, edges of every block), and attention (fp32 and bf16, causal or not, GQA),
// each against a naive float64 reference. Prints one line per check; exit 1 on any failure.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "attention/attention.hpp"
#include "common/cpu_features.hpp"
#include "gemm/gemm.hpp"

using namespace aibench;

namespace {

int failures = 0;

void report(const char* what, double err, double tol) {
  const bool ok = err <= tol;
  if (!ok) ++failures;
  std::printf("%-44s error %.3g (tolerance %.3g) %s\n", what, err, tol, ok ? "ok" : "FAILED");
}

uint16_t bf16_of(float x) {  // round to nearest even (finite inputs)
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return static_cast<uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

float float_of(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// max |C - ref| / (|A||B|) over C: the rounding error relative to the sum of magnitudes.
template <class A, class C, class ToDouble>
double gemm_error(int64_t m, int64_t n, int64_t k, const std::vector<A>& a, const std::vector<A>& b,
                  const std::vector<C>& c, ToDouble value) {
  double worst = 0;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double ref = 0, mag = 0;
      for (int64_t p = 0; p < k; ++p) {
        const double x = value(a[i * k + p]), y = value(b[p * n + j]);
        ref += x * y;
        mag += std::fabs(x * y);
      }
      const double got = static_cast<double>(c[i * n + j]);
      const double err = std::fabs(got - ref) / (mag > 0 ? mag : 1);
      if (!(err <= worst)) worst = std::isnan(err) ? INFINITY : err;
    }
  }
  return worst;
}

void check_gemm(int64_t m, int64_t n, int64_t k, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1, 1);
  std::uniform_int_distribution<int> i8(-128, 127);
  char label[96];
  std::vector<float> a32(m * k), b32(k * n), c32(m * n, NAN);
  for (auto& x : a32) x = u(rng);
  for (auto& x : b32) x = u(rng);
  gemm::gemm(gemm::fp32_kernel(Isa::scalar), m, n, k, a32.data(), k, b32.data(), n, c32.data(), n, 0);
  std::snprintf(label, sizeof label, "gemm fp32 %ldx%ldx%ld", long(m), long(n), long(k));
  report(label, gemm_error(m, n, k, a32, b32, c32, [](float x) { return double(x); }), 2e-6 * std::sqrt(double(k)) + 1e-6);

  std::vector<double> a64(a32.begin(), a32.end()), b64(b32.begin(), b32.end()), c64(m * n, NAN);
  gemm::gemm(gemm::fp64_kernel(Isa::scalar), m, n, k, a64.data(), k, b64.data(), n, c64.data(), n, 0);
  std::snprintf(label, sizeof label, "gemm fp64 %ldx%ldx%ld", long(m), long(n), long(k));
  report(label, gemm_error(m, n, k, a64, b64, c64, [](double x) { return x; }), 1e-13);

  std::vector<uint16_t> a16(m * k), b16(k * n), c16(m * n, 0x7FC0);
  for (int64_t i = 0; i < m * k; ++i) a16[i] = bf16_of(a32[i]);
  for (int64_t i = 0; i < k * n; ++i) b16[i] = bf16_of(b32[i]);
  std::fill(c32.begin(), c32.end(), NAN);
  const auto fp32 = gemm::fp32_kernel(Isa::scalar);
  gemm::gemm_bf16_widened(fp32, m, n, k, a16.data(), k, b16.data(), n, c32.data(), n, 0);
  std::snprintf(label, sizeof label, "gemm bf16->fp32 %ldx%ldx%ld", long(m), long(n), long(k));
  const auto bf = [](uint16_t x) { return double(float_of(x)); };
  report(label, gemm_error(m, n, k, a16, b16, c32, bf), 2e-6 * std::sqrt(double(k)) + 1e-6);
  gemm::gemm_bf16_widened(fp32, m, n, k, a16.data(), k, b16.data(), n, c16.data(), n, 0);
  double rne_mismatch = 0;
  for (int64_t i = 0; i < m * n; ++i) rne_mismatch += c16[i] != bf16_of(c32[i]);
  std::snprintf(label, sizeof label, "gemm bf16->bf16 %ldx%ldx%ld (RNE of fp32)", long(m), long(n), long(k));
  report(label, rne_mismatch, 0);

  std::vector<int8_t> ai(m * k), bi(k * n);
  std::vector<int32_t> ci(m * n, INT32_MIN);
  for (auto& x : ai) x = static_cast<int8_t>(i8(rng));
  for (auto& x : bi) x = static_cast<int8_t>(i8(rng));
  gemm::gemm_int8_widened(gemm::int16_pair_kernel(Isa::scalar), m, n, k, ai.data(), k, bi.data(), n,
                          ci.data(), n, 0);
  double wrong = 0;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      int64_t ref = 0;
      for (int64_t p = 0; p < k; ++p) ref += int64_t(ai[i * k + p]) * bi[p * n + j];
      wrong += ref != ci[i * n + j];
    }
  }
  std::snprintf(label, sizeof label, "gemm int8 %ldx%ldx%ld (exact)", long(m), long(n), long(k));
  report(label, wrong, 0);
}

void check_attention(attention::Dtype dtype, bool causal, int64_t h, int64_t hkv, int64_t sq, int64_t sk,
                     int64_t d, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> q(h * sq * d), k(hkv * sk * d), v(hkv * sk * d), o(h * sq * d, NAN);
  for (auto* x : {&q, &k, &v}) {
    for (auto& e : *x) e = dtype == attention::Dtype::bf16 ? float_of(bf16_of(u(rng))) : u(rng);
  }
  std::vector<uint16_t> q16(q.size()), k16(k.size()), v16(v.size()), o16(o.size(), 0x7FC0);
  for (size_t i = 0; i < q.size(); ++i) q16[i] = bf16_of(q[i]);
  for (size_t i = 0; i < k.size(); ++i) k16[i] = bf16_of(k[i]), v16[i] = bf16_of(v[i]);
  const bool bf16 = dtype == attention::Dtype::bf16;
  const float scale = 1.0f / std::sqrt(float(d));
  attention::Problem p{dtype, 1, h, hkv, sq, sk, d, causal, scale,
                       bf16 ? static_cast<const void*>(q16.data()) : q.data(),
                       bf16 ? static_cast<const void*>(k16.data()) : k.data(),
                       bf16 ? static_cast<const void*>(v16.data()) : v.data(),
                       bf16 ? static_cast<void*>(o16.data()) : o.data()};
  attention::forward(attention::select_kernel(dtype, "scalar"), p, 0);
  double worst = 0;
  for (int64_t hh = 0; hh < h; ++hh) {
    const int64_t g = hh / (h / hkv);
    for (int64_t i = 0; i < sq; ++i) {
      std::vector<double> s(sk);
      double mx = -INFINITY;
      const int64_t last = causal ? i + sk - sq : sk - 1;  // bottom-right causal
      for (int64_t j = 0; j <= last && j < sk; ++j) {
        double dot = 0;
        for (int64_t e = 0; e < d; ++e) dot += double(q[(hh * sq + i) * d + e]) * k[(g * sk + j) * d + e];
        s[j] = dot * scale;
        mx = std::max(mx, s[j]);
      }
      double sum = 0;
      for (int64_t j = 0; j <= last && j < sk; ++j) sum += s[j] = std::exp(s[j] - mx);
      for (int64_t e = 0; e < d; ++e) {
        double ref = 0;
        for (int64_t j = 0; j <= last && j < sk; ++j) ref += s[j] / sum * v[(g * sk + j) * d + e];
        const double got = bf16 ? float_of(o16[(hh * sq + i) * d + e]) : o[(hh * sq + i) * d + e];
        const double err = std::fabs(got - ref);
        if (!(err <= worst)) worst = std::isnan(err) ? INFINITY : err;
      }
    }
  }
  char label[96];
  std::snprintf(label, sizeof label, "attention %s%s h%ld/%ld s%ld/%ld d%ld", bf16 ? "bf16" : "fp32",
                causal ? " causal" : "", long(h), long(hkv), long(sq), long(sk), long(d));
  report(label, worst, bf16 ? 1e-2 : 1e-5);
}

}  // namespace

int main() {
  std::mt19937 rng(7);
  const gemm::Blocking b = gemm::fp32_kernel(Isa::scalar).blocking;
  const CacheSizes caches = cache_sizes();
  std::printf("caches L1d %ld L2 %ld L3 %ld; scalar fp32 blocks mr %ld nr %ld kc %ld mc %ld nc %ld\n",
              caches.l1d, caches.l2, caches.l3, long(b.mr), long(b.nr), long(b.kc), long(b.mc), long(b.nc));
  const int64_t shapes[][3] = {{1, 1, 1},     {7, 9, 5},     {1, 700, 300},  {1, 5, 3000},
                               {500, 1, 300}, {16, 300, 70}, {b.mc, 20 * b.nr + 3, b.kc + 5},
                               {b.mc + 1, 3 * b.nr + 1, 2 * b.kc + 3}};
  for (const auto& s : shapes) check_gemm(s[0], s[1], s[2], rng);
  for (auto dtype : {attention::Dtype::fp32, attention::Dtype::bf16}) {
    for (bool causal : {false, true}) {
      check_attention(dtype, causal, 4, 2, 70, 130, 64, rng);
      check_attention(dtype, causal, 2, 1, 130, 37, 33, rng);
    }
  }
  std::printf("%s: %d failure(s)\n", failures ? "FAILED" : "passed", failures);
  return failures ? 1 : 0;
}
