// AVX2 weight-only float kernel: the product with the dequantized matrix, in fp32. A tile of R
// rows is decoded into a per-thread buffer (codes unpacked in registers for 4- and 8-bit layouts,
// values through the element's AVX2 decoder, then scale * (value - zero)), and multiplied by
// T tokens at a time with 8-lane FMA accumulators, in K blocks that keep the tile in L1.
#pragma once

#include "lowbit/core/threading.hpp"
#include "lowbit/formats/avx2/convert.hpp"
#include "lowbit/kernels/layout.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace lowbit::kernels::avx2 {

namespace detail {

inline constexpr std::size_t round_up(std::size_t n, std::size_t m) noexcept { return (n + m - 1) / m * m; }

// Row decoder: writes round_up(padded_cols, 32) floats of a row (zeros past the stored codes).
template <scheme S>
class float_rows {
public:
  using E = typename S::element;
  explicit float_rows(const qmatrix<S>& w) : w_(w), ws_(w) {
    if constexpr (S::gran == granularity::column) { // per-column scales and zero points as float vectors
      col_scale_.resize(round_up(w.padded_cols(), chunk));
      col_zero_.resize(col_scale_.size());
      for (std::size_t c = 0; c < w.cols(); ++c) {
        col_scale_[c] = ws_(c);
        col_zero_[c] = static_cast<float>(w.zero_at(0, c));
      }
    }
  }
  std::size_t width() const noexcept { return round_up(w_.padded_cols(), chunk); }

  // codes: scratch of width() bytes.
  void operator()(std::size_t r, float* out, std::uint8_t* codes) const noexcept {
    const std::size_t n = width(), pc = w_.padded_cols(), unit0 = S::scale_index(r, 0, w_.cols());
    unpack(r, codes);
    const lowbit::avx2::detail::decoder<E> dec;
    // Scale unit of column c (< pc): groups count from the row's first unit.
    const auto unit = [&](std::size_t c) { return S::gran == granularity::group ? unit0 + c / S::block : unit0; };
    const auto zero = [&](std::size_t u) {
      if constexpr (S::has_zero_point)
        return static_cast<float>(w_.zero_points()[u]);
      else
        return 0.0f;
    };
    for (std::size_t c = 0; c < n; c += 8) {
      __m256 s, z;
      if constexpr (S::gran == granularity::column) {
        s = _mm256_loadu_ps(col_scale_.data() + c);
        z = _mm256_loadu_ps(col_zero_.data() + c);
      } else if constexpr (S::gran == granularity::group && S::block % 8 != 0) { // units change inside 8 lanes
        alignas(32) float sl[8], zl[8];
        for (std::size_t i = 0; i < 8; ++i) {
          const std::size_t u = unit(std::min(c + i, pc - 1));
          sl[i] = ws_(u);
          zl[i] = zero(u);
        }
        s = _mm256_load_ps(sl);
        z = _mm256_load_ps(zl);
      } else {
        const std::size_t u = unit(std::min(c, pc - 1));
        s = _mm256_set1_ps(ws_(u));
        z = _mm256_set1_ps(zero(u));
      }
      __m256 v = dec(codes + c);
      if constexpr (S::has_zero_point) v = _mm256_sub_ps(v, z);
      _mm256_storeu_ps(out + c, c < pc ? _mm256_mul_ps(v, s) : _mm256_setzero_ps());
    }
  }

private:
  // Natural-order codes of row r, zero past the stored ones.
  void unpack(std::size_t r, std::uint8_t* codes) const noexcept {
    const std::size_t n = width(), pc = w_.padded_cols(), rb = w_.row_bytes();
    const std::uint8_t* row = w_.codes().data() + r * rb;
    if constexpr (S::layout != code_layout::base3 && S::code_bits == 4) {
      const __m128i m = _mm_set1_epi8(0x0F);
      for (std::size_t c = 0; c < n; c += chunk) {
        __m128i v;
        if ((c + chunk) / 2 <= rb) {
          v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + c / 2));
        } else {
          alignas(16) std::uint8_t tail[16] = {};
          std::memcpy(tail, row + c / 2, rb - c / 2);
          v = _mm_load_si128(reinterpret_cast<const __m128i*>(tail));
        }
        __m128i first = _mm_and_si128(v, m), second = _mm_and_si128(_mm_srli_epi16(v, 4), m);
        if constexpr (S::layout == code_layout::nibbles_high_first) std::swap(first, second);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + c), _mm_unpacklo_epi8(first, second));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + c + 16), _mm_unpackhi_epi8(first, second));
      }
    } else if constexpr (S::layout != code_layout::base3 && S::code_bits == 8) {
      std::memcpy(codes, row, pc);
      std::memset(codes + pc, 0, n - pc);
    } else {
      unpack_codes(S::layout, S::code_bits, std::span<const std::uint8_t>(row, rb), std::span<std::uint8_t>(codes, pc));
      std::memset(codes + pc, 0, n - pc);
    }
  }

  const qmatrix<S>& w_;
  scale_reader<S> ws_;
  std::vector<float> col_scale_, col_zero_;
};

inline float hsum(__m256 v) noexcept {
  alignas(32) float l[8];
  _mm256_store_ps(l, v);
  return lane_sum(l);
}

// acc[r][t] += W[r, k0:k1] . X[t, k0:k1] for R rows and T tokens (k0, k1 multiples of 8).
template <int R, int T>
void dot_tile(const float* const* wrow, const float* const* xrow, std::size_t k0, std::size_t k1,
              float (&acc)[R][4]) noexcept {
  __m256 a[R][T];
  LOWBIT_UNROLL
  for (auto& ar : a) {
    LOWBIT_UNROLL
    for (auto& v : ar) v = _mm256_setzero_ps();
  }
  for (std::size_t k = k0; k < k1; k += 8) {
    __m256 x[T];
    LOWBIT_UNROLL
    for (int t = 0; t < T; ++t) x[t] = _mm256_loadu_ps(xrow[t] + k);
    LOWBIT_UNROLL
    for (int r = 0; r < R; ++r) {
      const __m256 wv = _mm256_loadu_ps(wrow[r] + k);
      LOWBIT_UNROLL
      for (int t = 0; t < T; ++t) a[r][t] = _mm256_fmadd_ps(wv, x[t], a[r][t]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] += hsum(a[r][t]);
}

template <int R>
void dot_tokens(const float* const* wrow, const float* const* xrow, int nt, std::size_t k0, std::size_t k1,
                float (&acc)[R][4]) noexcept {
  switch (nt) {
  case 1: dot_tile<R, 1>(wrow, xrow, k0, k1, acc); break;
  case 2: dot_tile<R, 2>(wrow, xrow, k0, k1, acc); break;
  default: dot_tile<R, 3>(wrow, xrow, k0, k1, acc); break;
  }
}

} // namespace detail

// Floats of per-thread scratch linear_float needs for W.
template <scheme S>
std::size_t float_scratch_size(const qmatrix<S>& w) noexcept {
  return 4 * detail::round_up(w.padded_cols(), chunk) + detail::round_up(w.padded_cols(), chunk) / 4;
}

// Y = X * dequantize(W)^T (+ bias); x is tokens x kx floats (kx = round_up(K, 8), zero padded);
// scratch holds max_threads() * float_scratch_size(w) floats.
template <scheme S>
void linear_float(const qmatrix<S>& w, const float* x, std::size_t tokens, std::size_t kx, std::span<float> y,
                  std::span<const float> bias, float* scratch) {
  constexpr int R = 4;
  constexpr std::size_t k_block = 1024; // 4 rows + 3 tokens of it: 28 KB, within L1
  const std::size_t rows = w.rows();
  const detail::float_rows<S> decode(w);
  parallel_rows((rows + R - 1) / R, rows * w.cols() * tokens, [&](std::size_t tile0, std::size_t tile1) {
    float* buf = scratch + static_cast<std::size_t>(thread_index()) * float_scratch_size(w);
    auto* codes = reinterpret_cast<std::uint8_t*>(buf + R * decode.width());
    for (std::size_t tile = tile0; tile < tile1; ++tile) {
      const std::size_t r0 = tile * R, nr = std::min<std::size_t>(R, rows - r0);
      const float* wrow[R];
      for (std::size_t i = 0; i < R; ++i) {
        wrow[i] = buf + std::min(i, nr - 1) * decode.width();
        if (i < nr) decode(r0 + i, buf + i * decode.width(), codes);
      }
      for (std::size_t t = 0; t < tokens; t += 3) {
        const int nt = static_cast<int>(std::min<std::size_t>(3, tokens - t));
        const float* xrow[3];
        for (int i = 0; i < 3; ++i) xrow[i] = x + (t + static_cast<std::size_t>(std::min(i, nt - 1))) * kx;
        float acc[R][4] = {};
        for (std::size_t k0 = 0; k0 < kx; k0 += k_block)
          detail::dot_tokens<R>(wrow, xrow, nt, k0, std::min(kx, k0 + k_block), acc);
        for (std::size_t i = 0; i < nr; ++i)
          for (int j = 0; j < nt; ++j) {
            float out = acc[i][j];
            if (!bias.empty()) out += bias[r0 + i];
            y[(t + static_cast<std::size_t>(j)) * rows + r0 + i] = out;
          }
      }
    }
  });
}

} // namespace lowbit::kernels::avx2
