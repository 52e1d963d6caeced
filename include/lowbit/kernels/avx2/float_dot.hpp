// AVX2 weight-only float kernel: the product with the dequantized matrix, in fp32. Values are
// decoded 8 at a time (codes unpacked in registers for 2-, 4- and 8-bit layouts and through a
// 256-entry table for base 3, then the element's AVX2 decoder, then scale * (value - zero)).
// - Up to 3 tokens: each row is decoded in registers and multiplied by every token at once.
// - More tokens: a tile of 16 rows is decoded, one K block at a time, into a column-major panel
//   (8 x 8 transposes), which every token then runs over 6 at a time: 2 x 6 accumulators of 8 rows,
//   each k step two panel loads and six broadcast activations for 12 FMAs.
#pragma once

#include "lowbit/core/error.hpp"
#include "lowbit/core/threading.hpp"
#include "lowbit/formats/avx2/convert.hpp"
#include "lowbit/kernels/layout.hpp"
#include "lowbit/schemes/packing.hpp"

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

namespace lowbit::kernels::avx2 {

namespace detail {

inline constexpr std::size_t round_up(std::size_t n, std::size_t m) noexcept { return (n + m - 1) / m * m; }

// Floats of shared scratch float_rows<S> needs for W: per-column scales and zero points as float
// vectors where S has column scales, else none.
template <scheme S>
std::size_t float_columns_size(const qmatrix<S>& w) noexcept {
  return S::gran == granularity::column ? 2 * round_up(w.padded_cols(), chunk) : 0;
}

// Row decoder: a row's codes unpacked (width() bytes, zeros past the stored codes), and its
// scaled values 8 columns at a time. columns: float_columns_size(w) floats it fills and reads
// (caller-owned, so that a workspace keeps the decoder from allocating).
template <scheme S>
class float_rows {
public:
  using E = typename S::element;
  float_rows(const qmatrix<S>& w, float* columns) : w_(w), ws_(w) {
    if constexpr (S::gran == granularity::column) { // per-column scales and zero points as float vectors
      const std::size_t n = round_up(w.padded_cols(), chunk);
      col_scale_ = columns;
      col_zero_ = columns + n;
      std::fill(columns, columns + 2 * n, 0.0f);
      for (std::size_t c = 0; c < w.cols(); ++c) {
        col_scale_[c] = ws_(c);
        col_zero_[c] = static_cast<float>(w.zero_at(0, c));
      }
    } else {
      (void)columns;
    }
  }
  std::size_t width() const noexcept { return round_up(w_.padded_cols(), chunk); }

  // Scaled values of columns c .. c + 7 of row r, whose codes (unpack) are at codes; zeros from
  // padded_cols() on.
  LOWBIT_ALWAYS_INLINE __m256 chunk8(std::size_t r, const std::uint8_t* codes, std::size_t c) const noexcept {
    const std::size_t pc = w_.padded_cols();
    if (c >= pc) return _mm256_setzero_ps();
    const std::size_t unit0 = S::scale_index(r, 0, w_.cols());
    // Scale unit of column c (< pc): groups count from the row's first unit.
    const auto unit = [&](std::size_t col) { return S::gran == granularity::group ? unit0 + col / S::block : unit0; };
    const auto zero = [&](std::size_t u) {
      if constexpr (S::has_zero_point)
        return static_cast<float>(w_.zero_points()[u]);
      else
        return 0.0f;
    };
    __m256 s, z;
    if constexpr (S::gran == granularity::column) {
      s = _mm256_loadu_ps(col_scale_ + c);
      z = _mm256_loadu_ps(col_zero_ + c);
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
      const std::size_t u = unit(c);
      s = _mm256_set1_ps(ws_(u));
      z = _mm256_set1_ps(zero(u));
    }
    __m256 v = dec_(codes + c);
    if constexpr (S::has_zero_point) v = _mm256_sub_ps(v, z);
    return _mm256_mul_ps(v, s);
  }

  // Natural-order codes of row r into width() bytes, zero past the stored ones. A base-3 byte
  // >= 243 (corrupt data) throws lowbit::error (parallel_rows carries it to the caller).
  void unpack(std::size_t r, std::uint8_t* codes) const {
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
      return;
    } else if constexpr (S::layout != code_layout::base3 && S::code_bits == 8) {
      std::memcpy(codes, row, pc);
    } else if constexpr (S::layout != code_layout::base3 && S::code_bits == 2) {
      // 8 bytes -> 32 codes: the four 2-bit fields of every byte, interleaved back into order.
      const __m128i m = _mm_set1_epi8(3);
      std::size_t c = 0;
      for (; c + chunk <= pc; c += chunk) {
        const __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + c / 4));
        const __m128i c0 = _mm_and_si128(v, m), c1 = _mm_and_si128(_mm_srli_epi16(v, 2), m);
        const __m128i c2 = _mm_and_si128(_mm_srli_epi16(v, 4), m), c3 = _mm_and_si128(_mm_srli_epi16(v, 6), m);
        const __m128i a = _mm_unpacklo_epi8(c0, c1), b = _mm_unpacklo_epi8(c2, c3);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + c), _mm_unpacklo_epi16(a, b));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + c + 16), _mm_unpackhi_epi16(a, b));
      }
      for (; c < pc; ++c) codes[c] = static_cast<std::uint8_t>(row[c / 4] >> (2 * (c % 4)) & 3u);
    } else if constexpr (S::layout == code_layout::base3) {
      // One table read per byte: its five codes, 8 bytes written (the next byte's overwrite the
      // extra three) while they fit in the buffer.
      const auto& tab = lowbit::detail::base3_codes();
      std::uint64_t bad = 0;
      std::size_t i = 0;
      for (; 5 * i + 8 <= n && 5 * i < pc; ++i) {
        const std::uint64_t e = tab[row[i]];
        bad |= e;
        std::memcpy(codes + 5 * i, &e, 8);
      }
      for (; 5 * i < pc; ++i) {
        const std::uint64_t e = tab[row[i]];
        bad |= e;
        for (std::size_t j = 0; j < 5 && 5 * i + j < pc; ++j)
          codes[5 * i + j] = static_cast<std::uint8_t>(e >> (8 * j));
      }
      if (bad >> 63)
        throw error("linear: row " + std::to_string(r) + " holds a base-3 code byte >= 243 (corrupt data)");
    } else {
      unpack_codes(S::layout, S::code_bits, std::span<const std::uint8_t>(row, rb), std::span<std::uint8_t>(codes, pc));
    }
    std::memset(codes + pc, 0, n - pc);
  }

private:
  const qmatrix<S>& w_;
  scale_reader<S> ws_;
  lowbit::avx2::detail::decoder<E> dec_;
  float* col_scale_ = nullptr; // float_columns_size(w) floats of the caller's scratch, or none
  float* col_zero_ = nullptr;
};

// Panels: panel_rows rows x k_block columns of decoded values, column-major (the panel_rows values
// of a column are contiguous), one K block of a row tile at a time.
inline constexpr std::size_t panel_rows = 16;
// 64 KB panels: 1024 gave 147-164 GFLOP/s at N = 128 (4096^2, 2 threads) against 112-153 for 512
// and 113-131 for 256 (bench/README.md, run 9).
inline constexpr std::size_t k_block = 1024;
// Up to this many tokens, rows are decoded in registers and multiplied at once, with no panel.
inline constexpr std::size_t row_max_tokens = 3;

LOWBIT_ALWAYS_INLINE inline void transpose8(__m256 (&v)[8]) noexcept {
  __m256 t[8], u[8];
  LOWBIT_UNROLL
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(v[i], v[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(v[i], v[i + 1]);
  }
  LOWBIT_UNROLL
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  LOWBIT_UNROLL
  for (int i = 0; i < 4; ++i) {
    v[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    v[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}

// Panel of rows r0 .. r0 + nr - 1 (zeros for the rest of the panel_rows), columns k0 .. k1 - 1
// (multiples of 8); codes: the rows' unpacked codes, width() bytes each.
template <scheme S>
void decode_panel(const float_rows<S>& rows, std::size_t r0, std::size_t nr, const std::uint8_t* codes, std::size_t k0,
                  std::size_t k1, float* panel) noexcept {
  const std::size_t width = rows.width();
  LOWBIT_UNROLL
  for (std::size_t h = 0; h < panel_rows; h += 8) {
    const std::size_t n = nr > h ? std::min<std::size_t>(8, nr - h) : 0;
    for (std::size_t c = k0; c < k1; c += 8) {
      __m256 v[8];
      if (n == 8) {
        LOWBIT_UNROLL
        for (std::size_t i = 0; i < 8; ++i) v[i] = rows.chunk8(r0 + h + i, codes + (h + i) * width, c);
      } else {
        for (std::size_t i = 0; i < 8; ++i)
          v[i] = i < n ? rows.chunk8(r0 + h + i, codes + (h + i) * width, c) : _mm256_setzero_ps();
      }
      transpose8(v);
      float* out = panel + (c - k0) * panel_rows + h;
      LOWBIT_UNROLL
      for (std::size_t j = 0; j < 8; ++j) _mm256_storeu_ps(out + j * panel_rows, v[j]);
    }
  }
}

// Few tokens: y[t][r] = row r . X[t] for the T tokens, the row decoded 8 values at a time in
// registers (no panel).
template <scheme S, int T>
void row_tokens(const float_rows<S>& rows, std::size_t r, const std::uint8_t* codes, const float* x, std::size_t kx,
                std::size_t nrows, std::span<const float> bias, float* y) noexcept {
  __m256 acc[T];
  LOWBIT_UNROLL
  for (auto& v : acc) v = _mm256_setzero_ps();
  const float* xr[T];
  LOWBIT_UNROLL
  for (int t = 0; t < T; ++t) xr[t] = x + static_cast<std::size_t>(t) * kx;
  for (std::size_t c = 0; c < kx; c += 8) {
    const __m256 v = rows.chunk8(r, codes, c);
    LOWBIT_UNROLL
    for (int t = 0; t < T; ++t) acc[t] = _mm256_fmadd_ps(v, _mm256_loadu_ps(xr[t] + c), acc[t]);
  }
  alignas(32) float l[T][8];
  LOWBIT_UNROLL
  for (int t = 0; t < T; ++t) _mm256_store_ps(l[t], acc[t]);
  for (int t = 0; t < T; ++t)
    y[static_cast<std::size_t>(t) * nrows + r] = lane_sum(l[t]) + (bias.empty() ? 0.0f : bias[r]);
}

// y[t0 + t][r0 .. r0 + nr) (+)= panel (columns k0 .. k1) . X[t0 + t, k0 .. k1) for T tokens:
// 2 x T accumulators of 8 rows, each fed by a panel load and a broadcast activation. first: the
// first K block (y is written, with the bias, rather than added to).
template <int T>
void panel_tokens(const float* panel, const float* x, std::size_t kx, std::size_t t0, std::size_t k0, std::size_t k1,
                  std::size_t r0, std::size_t nr, std::size_t rows, bool first, std::span<const float> bias,
                  float* y) noexcept {
  __m256 acc[2][T];
  LOWBIT_UNROLL
  for (auto& a : acc) LOWBIT_UNROLL
  for (auto& v : a) v = _mm256_setzero_ps();
  const float* xr[T];
  LOWBIT_UNROLL
  for (int t = 0; t < T; ++t) xr[t] = x + (t0 + static_cast<std::size_t>(t)) * kx;
  for (std::size_t k = k0; k < k1; ++k) {
    const float* p = panel + (k - k0) * panel_rows;
    const __m256 w0 = _mm256_loadu_ps(p), w1 = _mm256_loadu_ps(p + 8);
    LOWBIT_UNROLL
    for (int t = 0; t < T; ++t) {
      const __m256 xv = _mm256_broadcast_ss(xr[t] + k);
      acc[0][t] = _mm256_fmadd_ps(w0, xv, acc[0][t]);
      acc[1][t] = _mm256_fmadd_ps(w1, xv, acc[1][t]);
    }
  }
  // Spilled through a constant-index copy: indexing acc itself at run time below would keep it in
  // memory inside the loop above.
  alignas(32) float l[T][panel_rows];
  LOWBIT_UNROLL
  for (int t = 0; t < T; ++t) {
    _mm256_store_ps(l[t], acc[0][t]);
    _mm256_store_ps(l[t] + 8, acc[1][t]);
  }
  for (int t = 0; t < T; ++t) {
    float* yt = y + (t0 + static_cast<std::size_t>(t)) * rows + r0;
    for (std::size_t r = 0; r < nr; ++r)
      yt[r] = first ? (bias.empty() ? l[t][r] : l[t][r] + bias[r0 + r]) : yt[r] + l[t][r];
  }
}

} // namespace detail

// Floats of per-thread scratch linear_float needs for W: a panel and a row tile's codes (for
// detail::for_each_panel<Panels>: Panels panels, and the codes of a tile of Panels x panel_rows rows).
template <std::size_t Panels = 1, scheme S>
std::size_t float_scratch_size(const qmatrix<S>& w) noexcept {
  return Panels *
         (detail::panel_rows * detail::k_block + detail::panel_rows * detail::round_up(w.padded_cols(), chunk) / 4);
}

// Floats of scratch linear_float needs for W: the decoder's shared columns, then per thread a panel
// and a row tile's codes (Panels of each for detail::for_each_panel<Panels>).
template <std::size_t Panels = 1, scheme S>
std::size_t float_scratch_total(const qmatrix<S>& w) noexcept {
  return detail::float_columns_size(w) + static_cast<std::size_t>(max_threads()) * float_scratch_size<Panels>(w);
}

namespace detail {
// The panel path's loop, shared with the 512-bit kernel (kernels/avx512/float_dot.hpp): row tiles of
// Panels x panel_rows rows split across threads; per tile the rows' codes unpacked once (into the
// thread's scratch, float_scratch_size<Panels>(w) floats from scratch), then per K block the panels
// that hold any of its nr rows decoded (transposed, 8 x 8 at a time; panel p, rows 16p .. 16p + 15
// of the tile, at panel + p x panel_rows x k_block, zeros in the rows past nr) and mul(panel, k0, k1,
// r0, nr, first) called on them (first: the first K block).
template <std::size_t Panels = 1, scheme S, class Mul>
void for_each_panel(const qmatrix<S>& w, const float_rows<S>& decode, std::size_t kx, std::size_t work, float* scratch,
                    Mul&& mul) {
  constexpr std::size_t R = panel_rows, TR = Panels * R;
  const std::size_t rows = w.rows(), width = decode.width();
  parallel_rows((rows + TR - 1) / TR, work, [&](std::size_t tile0, std::size_t tile1) {
    float* panel = scratch + static_cast<std::size_t>(thread_index()) * float_scratch_size<Panels>(w);
    auto* codes = reinterpret_cast<std::uint8_t*>(panel + Panels * R * k_block);
    for (std::size_t tile = tile0; tile < tile1; ++tile) {
      const std::size_t r0 = tile * TR, nr = std::min(TR, rows - r0);
      for (std::size_t i = 0; i < nr; ++i) decode.unpack(r0 + i, codes + i * width);
      for (std::size_t k0 = 0; k0 < kx; k0 += k_block) {
        const std::size_t k1 = std::min(kx, k0 + k_block);
        for (std::size_t p = 0; p * R < nr; ++p)
          decode_panel(decode, r0 + p * R, std::min(R, nr - p * R), codes + p * R * width, k0, k1,
                       panel + p * R * k_block);
        mul(static_cast<const float*>(panel), k0, k1, r0, nr, k0 == 0);
      }
    }
  });
}

// Up to row_max_tokens tokens: rows split across threads one by one, each decoded in registers and
// multiplied by every token at once.
template <scheme S>
void rows_times_tokens(const qmatrix<S>& w, const float_rows<S>& decode, const float* x, std::size_t tokens,
                       std::size_t kx, std::span<float> y, std::span<const float> bias, float* scratch) {
  const std::size_t rows = w.rows();
  parallel_rows(rows, rows * w.cols() * tokens, [&](std::size_t r0, std::size_t r1) {
    auto* codes =
        reinterpret_cast<std::uint8_t*>(scratch + static_cast<std::size_t>(thread_index()) * float_scratch_size(w));
    for (std::size_t r = r0; r < r1; ++r) {
      decode.unpack(r, codes);
      switch (tokens) {
      case 1: row_tokens<S, 1>(decode, r, codes, x, kx, rows, bias, y.data()); break;
      case 2: row_tokens<S, 2>(decode, r, codes, x, kx, rows, bias, y.data()); break;
      default: row_tokens<S, 3>(decode, r, codes, x, kx, rows, bias, y.data()); break;
      }
    }
  });
}
} // namespace detail

// Y = X * dequantize(W)^T (+ bias); x is tokens x kx floats (kx = round_up(K, 8), zero padded);
// scratch holds float_scratch_total(w) floats (no allocation here). Up to row_max_tokens tokens,
// rows decoded in registers; more, per tile of panel_rows rows and K block a panel
// (detail::for_each_panel) multiplied by every token, 6 at a time. A base-3 byte >= 243 throws
// lowbit::error (y is then unspecified).
template <scheme S>
void linear_float(const qmatrix<S>& w, const float* x, std::size_t tokens, std::size_t kx, std::span<float> y,
                  std::span<const float> bias, float* scratch) {
  const std::size_t rows = w.rows();
  if (tokens == 0) return;
  const detail::float_rows<S> decode(w, scratch);
  scratch += detail::float_columns_size(w);
  if (tokens <= detail::row_max_tokens) {
    detail::rows_times_tokens(w, decode, x, tokens, kx, y, bias, scratch);
    return;
  }
  detail::for_each_panel(
      w, decode, kx, rows * w.cols() * tokens, scratch,
      [&](const float* panel, std::size_t k0, std::size_t k1, std::size_t r0, std::size_t nr, bool first) {
        std::size_t t = 0;
        for (; t + 6 <= tokens; t += 6)
          detail::panel_tokens<6>(panel, x, kx, t, k0, k1, r0, nr, rows, first, bias, y.data());
        switch (tokens - t) {
        case 5: detail::panel_tokens<5>(panel, x, kx, t, k0, k1, r0, nr, rows, first, bias, y.data()); break;
        case 4: detail::panel_tokens<4>(panel, x, kx, t, k0, k1, r0, nr, rows, first, bias, y.data()); break;
        case 3: detail::panel_tokens<3>(panel, x, kx, t, k0, k1, r0, nr, rows, first, bias, y.data()); break;
        case 2: detail::panel_tokens<2>(panel, x, kx, t, k0, k1, r0, nr, rows, first, bias, y.data()); break;
        case 1: detail::panel_tokens<1>(panel, x, kx, t, k0, k1, r0, nr, rows, first, bias, y.data()); break;
        default: break;
        }
      });
}

} // namespace lowbit::kernels::avx2
