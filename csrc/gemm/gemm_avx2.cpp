// AVX2 + FMA micro-kernels (compiled with -mavx2 -mfma).
// Everything here is in an anonymous namespace: see the ODR rule in gemm.hpp.
//
// Register tile: MR rows x NV ymm vectors of C. Each k step loads one row of the B
// micro-panel (NV vectors) and, per row of A, broadcasts one value and does NV FMAs.
// The 16 ymm registers hold MR*NV accumulators + NV B vectors + one broadcast.
#include <immintrin.h>

#include "gemm/gemm.hpp"

namespace aibench::gemm::avx2 {
namespace {

template <int MR, int NV>
void micro_kernel_fp32(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                       bool accumulate) {
  // The C tile is only touched after the k loop; start fetching it now so that the
  // loop hides the miss (C is far larger than the caches).
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + v * 8), _MM_HINT_T0);
    }
  }
  __m256 acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_setzero_ps();

  for (int64_t p = 0; p < kc; ++p, a += MR, b += NV * 8) {
    __m256 b_row[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) b_row[v] = _mm256_loadu_ps(b + v * 8);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const __m256 a_value = _mm256_broadcast_ss(a + i);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_fmadd_ps(a_value, b_row[v], acc[i][v]);
    }
  }

#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      float* dst = c + i * ldc + v * 8;
      const __m256 sum = accumulate ? _mm256_add_ps(_mm256_loadu_ps(dst), acc[i][v]) : acc[i][v];
      _mm256_storeu_ps(dst, sum);
    }
  }
}

template <int MR, int NV>
void micro_kernel_fp64(int64_t kc, const double* a, const double* b, double* c, int64_t ldc,
                       bool accumulate) {
  // The C tile is only touched after the k loop; start fetching it now so that the
  // loop hides the miss (C is far larger than the caches).
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + v * 4), _MM_HINT_T0);
    }
  }
  __m256d acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_setzero_pd();

  for (int64_t p = 0; p < kc; ++p, a += MR, b += NV * 4) {
    __m256d b_row[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) b_row[v] = _mm256_loadu_pd(b + v * 4);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const __m256d a_value = _mm256_broadcast_sd(a + i);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_fmadd_pd(a_value, b_row[v], acc[i][v]);
    }
  }

#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      double* dst = c + i * ldc + v * 4;
      const __m256d sum = accumulate ? _mm256_add_pd(_mm256_loadu_pd(dst), acc[i][v]) : acc[i][v];
      _mm256_storeu_pd(dst, sum);
    }
  }
}

// int8 widened to int16: each 32-bit lane holds two k values. Per k pair: NV rows of B
// lanes (8 columns each), one broadcast A lane per row, VPMADDWD (two exact int16
// products summed into int32) and an int32 add. Exact as long as C fits in int32.
template <int MR, int NV>
void micro_kernel_int16_pairs(int64_t kq, const uint32_t* a, const uint32_t* b, int32_t* c,
                              int64_t ldc, bool accumulate) {
  __m256i acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_setzero_si256();

  for (int64_t q = 0; q < kq; ++q, a += MR, b += NV * 8) {
    __m256i b_row[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      b_row[v] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + v * 8));
    }
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const __m256i a_pair = _mm256_set1_epi32(static_cast<int>(a[i]));
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        acc[i][v] = _mm256_add_epi32(acc[i][v], _mm256_madd_epi16(a_pair, b_row[v]));
      }
    }
  }

#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      __m256i* dst = reinterpret_cast<__m256i*>(c + i * ldc + v * 8);
      const __m256i sum = accumulate ? _mm256_add_epi32(_mm256_loadu_si256(dst), acc[i][v]) : acc[i][v];
      _mm256_storeu_si256(dst, sum);
    }
  }
}

// ---- GEMV (one column or one row of C): memory-bound, so four rows at a time to read
// the vector (dot_rows) or write the output (axpy_rows) once per four rows of the matrix;
// and the few-column product (dot_cols), which is dot_rows for a handful of vectors.

float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

double hsum(__m256d v) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
  return _mm_cvtsd_f64(s);
}

// The vector type of T and its operations.
template <class T> struct Vec;
template <> struct Vec<float> {
  using V = __m256;
  static constexpr int kLanes = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V set1(float x) { return _mm256_set1_ps(x); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
};
template <> struct Vec<double> {
  using V = __m256d;
  static constexpr int kLanes = 4;
  static V zero() { return _mm256_setzero_pd(); }
  static V load(const double* p) { return _mm256_loadu_pd(p); }
  static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
  static V set1(double x) { return _mm256_set1_pd(x); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V add(V a, V b) { return _mm256_add_pd(a, b); }
};

// y[i * incy] = dot(a row i, x), four rows per pass over x, two accumulators per row
// (the FMA latency), scalar tail.
template <class T>
void dot_rows(int64_t rows, int64_t k, const T* a, int64_t lda, const T* x, T* y, int64_t incy) {
  using O = Vec<T>;
  constexpr int64_t L = O::kLanes;
  const int64_t k_vec = k / (2 * L) * (2 * L);
  int64_t i = 0;
  for (; i + 4 <= rows; i += 4) {
    const T* r[4] = {a + i * lda, a + (i + 1) * lda, a + (i + 2) * lda, a + (i + 3) * lda};
    typename O::V acc[4][2] = {{O::zero(), O::zero()}, {O::zero(), O::zero()},
                               {O::zero(), O::zero()}, {O::zero(), O::zero()}};
    for (int64_t p = 0; p < k_vec; p += 2 * L) {
      const typename O::V x0 = O::load(x + p), x1 = O::load(x + p + L);
#pragma GCC unroll 4
      for (int t = 0; t < 4; ++t) {
        acc[t][0] = O::fma(O::load(r[t] + p), x0, acc[t][0]);
        acc[t][1] = O::fma(O::load(r[t] + p + L), x1, acc[t][1]);
      }
    }
    for (int t = 0; t < 4; ++t) {
      T sum = hsum(O::add(acc[t][0], acc[t][1]));
      for (int64_t p = k_vec; p < k; ++p) sum += r[t][p] * x[p];
      y[(i + t) * incy] = sum;
    }
  }
  for (; i < rows; ++i) {
    const T* r = a + i * lda;
    typename O::V acc0 = O::zero(), acc1 = O::zero();
    for (int64_t p = 0; p < k_vec; p += 2 * L) {
      acc0 = O::fma(O::load(r + p), O::load(x + p), acc0);
      acc1 = O::fma(O::load(r + p + L), O::load(x + p + L), acc1);
    }
    T sum = hsum(O::add(acc0, acc1));
    for (int64_t p = k_vec; p < k; ++p) sum += r[p] * x[p];
    y[i * incy] = sum;
  }
}

// c[i * ldc + j] = dot(a row i, bt row j) for i < rows, j < n: a product with a few
// columns (gemm.hpp, Gemv::dot_cols). Blocks of R rows x C columns keep R*C accumulators
// (8 of the 16 ymm registers) over k: each A vector loaded serves C columns, each B^T
// vector R rows. A streams from memory once per C columns (from L1/L2 after the first).
template <class T, int R, int C>
void dot_block(int64_t k, const T* a, int64_t lda, const T* bt, T* c, int64_t ldc) {
  using O = Vec<T>;
  constexpr int64_t L = O::kLanes;
  const int64_t k_vec = k / L * L;
  typename O::V acc[R][C];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int j = 0; j < C; ++j) acc[r][j] = O::zero();
  for (int64_t p = 0; p < k_vec; p += L) {
    typename O::V b[C];
#pragma GCC unroll 4
    for (int j = 0; j < C; ++j) b[j] = O::load(bt + j * k + p);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const typename O::V x = O::load(a + r * lda + p);
#pragma GCC unroll 4
      for (int j = 0; j < C; ++j) acc[r][j] = O::fma(x, b[j], acc[r][j]);
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int j = 0; j < C; ++j) {
      T sum = hsum(acc[r][j]);
      for (int64_t p = k_vec; p < k; ++p) sum += a[r * lda + p] * bt[j * k + p];
      c[r * ldc + j] = sum;
    }
  }
}

template <class T>
void dot_cols(int64_t rows, int64_t n, int64_t k, const T* a, int64_t lda, const T* bt, T* c,
              int64_t ldc) {
  constexpr int kR = 4, kC = 2;  // 8 accumulators, 4 + 2 loads per 8 FMAs
  int64_t i = 0;
  for (; i + kR <= rows; i += kR) {
    int64_t j = 0;
    for (; j + kC <= n; j += kC) dot_block<T, kR, kC>(k, a + i * lda, lda, bt + j * k, c + i * ldc + j, ldc);
    if (j < n) dot_block<T, kR, 1>(k, a + i * lda, lda, bt + j * k, c + i * ldc + j, ldc);
  }
  for (; i < rows; ++i) {
    int64_t j = 0;
    for (; j + kC <= n; j += kC) dot_block<T, 1, kC>(k, a + i * lda, lda, bt + j * k, c + i * ldc + j, ldc);
    if (j < n) dot_block<T, 1, 1>(k, a + i * lda, lda, bt + j * k, c + i * ldc + j, ldc);
  }
}

// y[0, cols) (+)= sum_p x[p] * b[p][0, cols): y is walked in strips that stay in L1
// while four rows of B stream through at a time.
template <class T>
void axpy_rows(int64_t k, int64_t cols, const T* x, const T* b, int64_t ldb, T* y, bool accumulate) {
  using O = Vec<T>;
  constexpr int64_t L = O::kLanes;
  constexpr int64_t kStrip = 16384 / sizeof(T);  // 16 KiB of y: half of a 32 KiB L1
  for (int64_t j0 = 0; j0 < cols; j0 += kStrip) {
    const int64_t width = cols - j0 < kStrip ? cols - j0 : kStrip;
    const int64_t w_vec = width / L * L;
    T* ys = y + j0;
    if (!accumulate) {
      for (int64_t j = 0; j < width; ++j) ys[j] = T(0);  // no std::fill: ODR rule (gemm.hpp)
    }
    int64_t p = 0;
    for (; p + 4 <= k; p += 4) {
      const T* r0 = b + p * ldb + j0;
      const T* r1 = r0 + ldb;
      const T* r2 = r1 + ldb;
      const T* r3 = r2 + ldb;
      const typename O::V x0 = O::set1(x[p]), x1 = O::set1(x[p + 1]), x2 = O::set1(x[p + 2]),
                          x3 = O::set1(x[p + 3]);
      for (int64_t j = 0; j < w_vec; j += L) {
        typename O::V s = O::fma(x0, O::load(r0 + j), O::load(ys + j));
        s = O::fma(x1, O::load(r1 + j), s);
        s = O::fma(x2, O::load(r2 + j), s);
        s = O::fma(x3, O::load(r3 + j), s);
        O::store(ys + j, s);
      }
      for (int64_t j = w_vec; j < width; ++j) {
        ys[j] += x[p] * r0[j] + x[p + 1] * r1[j] + x[p + 2] * r2[j] + x[p + 3] * r3[j];
      }
    }
    for (; p < k; ++p) {
      const T* r = b + p * ldb + j0;
      const typename O::V xv = O::set1(x[p]);
      for (int64_t j = 0; j < w_vec; j += L) O::store(ys + j, O::fma(xv, O::load(r + j), O::load(ys + j)));
      for (int64_t j = w_vec; j < width; ++j) ys[j] += x[p] * r[j];
    }
  }
}

// 6 x 16 fp32 / 6 x 8 fp64 register tiles (12 accumulators, 2 B vectors, 1 broadcast:
// 15 of the 16 ymm registers), the BLIS Haswell/Zen shapes; blocks from the caches. The
// int16-pair tile is 4 x 16: VPMADDWD's product needs a register of its own before it is
// added, and with 6 rows GCC spills accumulators to the stack in the loop.
constexpr int kMrFp32 = 6, kNvFp32 = 2;  // 6 x 16 tile
constexpr int kMrFp64 = 6, kNvFp64 = 2;  // 6 x 8 tile
constexpr int kMrInt16 = 4, kNvInt16 = 2;  // 4 x 16 tile of int32

}  // namespace

KernelSpec<float> fp32_kernel() {
  return {blocking_for_caches(kMrFp32, kNvFp32 * 8, sizeof(float)),
          &micro_kernel_fp32<kMrFp32, kNvFp32>, fp32_gemv()};
}

KernelSpec<double> fp64_kernel() {
  return {blocking_for_caches(kMrFp64, kNvFp64 * 4, sizeof(double)),
          &micro_kernel_fp64<kMrFp64, kNvFp64>, fp64_gemv()};
}

Int16PairKernelSpec int16_pair_kernel() {
  return {blocking_for_caches(kMrInt16, kNvInt16 * 8, sizeof(uint32_t)),
          &micro_kernel_int16_pairs<kMrInt16, kNvInt16>};
}

Gemv<float> fp32_gemv() { return {&dot_rows<float>, &axpy_rows<float>, &dot_cols<float>}; }
Gemv<double> fp64_gemv() { return {&dot_rows<double>, &axpy_rows<double>, &dot_cols<double>}; }

}  // namespace aibench::gemm::avx2
