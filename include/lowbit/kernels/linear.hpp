// The linear layer on a packed matrix: Y = X * W^T (+ bias), W a qmatrix of any scheme (N x K),
// X tokens x K in fp32, fp16 or bf16, Y tokens x N in fp32. The kernel is chosen at compile time
// from the scheme, the path and the ISA (AVX2 + FMA + F16C, else kernels/scalar.hpp: the scalar
// references' arithmetic, rows split across threads):
// - linear_path::float_weights: the product with the dequantized matrix, in fp32;
// - linear_path::int8_dot: activations quantized to int8 per 32 positions, int8 dot products
//   (kernels/reference.hpp, linear_int8, is its bit-exact spec); for int8_dot_scheme only;
// - linear_path::automatic: int8_dot for every int8_dot_scheme (for NF4 and other codebooks it
//   uses the int8 approximation of the table, within 0.5/127 of the largest value), float_weights
//   otherwise (FP8, FP6, 3-, 5-7-bit integers, column scales).
// linear_weights<S> (below) is W prepared once at load time: it adds the LUT packing where the
// LUT kernels run and row-interleaved int8 tiles (kernels/int8_tiles.hpp) for the rest: of W for
// the integer-dot schemes, of W repacked two bits per weight for base-3 ternary, and of W's int8
// packing (kernels/int8_pack.hpp) for FP8, FP6 and 1-, 3-, 5-7-bit integers.
// A linear_workspace, created once and passed to every call, removes all allocation from calls
// after the first.
#pragma once

#include "lowbit/core/buffer.hpp"
#include "lowbit/core/config.hpp"
#include "lowbit/core/threading.hpp"
#include "lowbit/kernels/activations.hpp"
#include "lowbit/kernels/codebook_lut.hpp"
#include "lowbit/kernels/int8_pack.hpp"
#include "lowbit/kernels/int8_tiles.hpp"
#include "lowbit/kernels/layout.hpp"
#include "lowbit/kernels/lut.hpp"
#include "lowbit/kernels/reference.hpp"
#include "lowbit/kernels/scalar.hpp"
#include "lowbit/kernels/ternary_lut.hpp"

#if LOWBIT_HAS_AVX2
#include "lowbit/kernels/avx2/activations.hpp"
#include "lowbit/kernels/avx2/codebook_lut.hpp"
#include "lowbit/kernels/avx2/float_dot.hpp"
#include "lowbit/kernels/avx2/int8_dot.hpp"
#include "lowbit/kernels/avx2/int8_tiles.hpp"
#include "lowbit/kernels/avx2/lut_dot.hpp"
#include "lowbit/kernels/avx2/ternary_lut.hpp"
#endif
#if LOWBIT_HAS_AVX512_BW
#include "lowbit/kernels/avx512/activations.hpp"
#include "lowbit/kernels/avx512/float_dot.hpp"
#include "lowbit/kernels/avx512/int8_tiles.hpp"
#include "lowbit/kernels/avx512/lut_dot.hpp"
#include "lowbit/kernels/avx512/lut_perm.hpp"
#include "lowbit/kernels/avx512/ternary_lut.hpp"
#include "lowbit/kernels/avx512/ternary_perm.hpp"
#endif

#include <cstddef>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

// Token counts up to which linear(linear_weights) uses the LUT kernel (see lut_max_tokens). With
// VNNI the int8 tiles are faster, and the AVX2 2-bit LUT kernels keep N <= 2 (bench/README.md,
// run 13); the 512-bit LUT kernels (AVX-512 BW) were ahead of the 256-bit VNNI tiles at every
// N = 1-8, from DRAM and in L3, for INT2-g32 and ternary (Zen 5, run 17). Against the 512-bit tiles
// (AVX-512 BW and VNNI, then from 2 tokens; Zen 5, run 18, two passes), the bit-plane kernel on INT2-g32
// took 0.75-0.89x their time from DRAM at N = 1-4 and 0.86-0.99x at N = 8, but 1.04-1.35x in L3 at
// N = 4-8: 4. With VBMI as well, on the bit-plane kernel's permute layout (4 tokens a pass), INT2-g32
// took 0.67-0.81x the tiles' time from DRAM at N = 1-8 (4096 x 8192) and 0.87x in L3 at N = 8
// (0.99x at 16; Zen 5, run 23): 8. Ternary (LOWBIT_LUT_MAX_TOKENS_TERNARY; the base-3 kernel's shuffle layout, on 2-bit
// and base-3 codes) took 0.52-0.71x at N = 1, 0.62-0.93x from DRAM and 0.93-1.21x in L3 at N = 2, and 1.06-1.19x from
// DRAM at N = 4: 2.
#ifndef LOWBIT_LUT_MAX_TOKENS_2BIT
#if LOWBIT_HAS_AVX512_VBMI
#define LOWBIT_LUT_MAX_TOKENS_2BIT 8
#elif LOWBIT_HAS_AVX512_VNNI && LOWBIT_HAS_AVX512_BW
#define LOWBIT_LUT_MAX_TOKENS_2BIT 4
#elif LOWBIT_HAS_VNNI
#define LOWBIT_LUT_MAX_TOKENS_2BIT 2
#else
#define LOWBIT_LUT_MAX_TOKENS_2BIT 8
#endif
#endif
// Ternary schemes that linear_weights runs on the base-3 kernel's permute layout (AVX-512 VBMI and
// VNNI; see base3_layout): 512, unless LOWBIT_LUT_MAX_TOKENS_TERNARY is set (then that). In L3
// (4096 x 4096, 2 threads, Zen 5, bench/README.md run 23) it took 0.68-0.69x the 512-bit tiles'
// time at N = 4-8, 0.63-0.72x at 16, 0.68-0.74x at 32, 0.80x at 64 and 0.86x at 128, where its
// tables (22 KiB per token) no longer fitted in L2; with the tokens in blocks whose tables do
// (run_lut_tiles), 0.68-0.69x at N = 64-512 (run 24). Not measured past 512, where the tables
// (22 KiB per token at K = 4096, against 4 KiB of int8 activations for the tiles) grow large.
// Elsewhere LOWBIT_LUT_MAX_TOKENS_TERNARY.
#ifndef LOWBIT_LUT_MAX_TOKENS_BASE3
#if LOWBIT_HAS_AVX512_VBMI && !defined(LOWBIT_LUT_MAX_TOKENS_TERNARY)
#define LOWBIT_LUT_MAX_TOKENS_BASE3 512
#else
#define LOWBIT_LUT_MAX_TOKENS_BASE3 LOWBIT_LUT_MAX_TOKENS_TERNARY
#endif
#endif
#ifndef LOWBIT_LUT_MAX_TOKENS_TERNARY
#if LOWBIT_HAS_AVX512_VNNI && LOWBIT_HAS_AVX512_BW
#define LOWBIT_LUT_MAX_TOKENS_TERNARY 2
#else
#define LOWBIT_LUT_MAX_TOKENS_TERNARY LOWBIT_LUT_MAX_TOKENS_2BIT
#endif
#endif
// 3- and 4-bit codes without tiles of their own (INT3; the tiles are of their int8 packing): 8, and
// with VNNI 4, where the LUT kernel took 0.52-0.81x the tiles' time from DRAM at N = 1-4 and
// 1.06-1.22x at N = 8 (INT3-g32, 4096 x 8192, 2 threads, bench/README.md, run 13). In L3 the
// tiles were already as fast at N = 1 and 1.3-1.4x faster at N = 4; small batches of a model's
// layers stream from DRAM. Without VNNI the LUT kernel took 0.44-0.68x the tiles' time from DRAM
// and 0.72-0.80x in L3 at N = 1-8 (INT3-g32, AVX2 alone on a Zen 4, run 15). Against the 512-bit
// tiles (Zen 5, run 18): 0.58-0.89x at N = 1-2, 0.66-1.00x from DRAM and 1.14-1.19x in L3 at N = 4;
// 4 stands. With VBMI as well, on the permute layout (3 planes stored, not 4): INT3-g32 took 0.66x /
// 0.79x the tiles' time from DRAM at N = 4 / 8 and 0.76x / 0.86x in L3 (bench/README.md run 24): 8.
#ifndef LOWBIT_LUT_MAX_TOKENS_4BIT
#if LOWBIT_HAS_AVX512_VBMI
#define LOWBIT_LUT_MAX_TOKENS_4BIT 8
#elif LOWBIT_HAS_VNNI
#define LOWBIT_LUT_MAX_TOKENS_4BIT 4
#else
#define LOWBIT_LUT_MAX_TOKENS_4BIT 8
#endif
#endif
// 1: linear(linear_weights) runs ternary schemes within lut_max_tokens on the base-3 LUT kernel
// (kernels/ternary_lut.hpp; see prefers_ternary_lut), 0: on the bit-plane LUT kernel.
#ifndef LOWBIT_TERNARY_BASE3_LUT
#define LOWBIT_TERNARY_BASE3_LUT 1
#endif

namespace lowbit {

namespace detail {
// The ISA folder whose bit-plane and base-3 LUT kernels linear() runs, and whose builders make
// their tables.
#if LOWBIT_HAS_AVX512_BW
namespace lut_kernels = kernels::avx512;
#elif LOWBIT_HAS_AVX2
namespace lut_kernels = kernels::avx2;
#endif
// The ISA folder whose integer-dot kernel linear() runs on int8 tiles.
#if LOWBIT_HAS_AVX512_BW && LOWBIT_HAS_AVX512_VNNI
namespace tile_kernels = kernels::avx512;
#elif LOWBIT_HAS_AVX2
namespace tile_kernels = kernels::avx2;
#endif
} // namespace detail

enum class linear_path { automatic, float_weights, int8_dot };

// The path linear_path::automatic resolves to for scheme S: the integer-dot path wherever it
// runs (measured 2-4x faster than the float path at N = 1 and N = 8; bench/README.md), the float
// path for the rest.
template <scheme S>
constexpr linear_path automatic_path() noexcept {
  return kernels::int8_dot_scheme<S> ? linear_path::int8_dot : linear_path::float_weights;
}

// Reusable buffers of linear(): quantized or converted activations and per-thread scratch.
class linear_workspace {
public:
  kernels::int8_activations activations;
  kernels::lut_activations tables;
  kernels::codebook_activations codebook_tables;
  kernels::ternary_activations ternary_tables;
  // One token on the LUT paths: a copy of the tables per thread (run_lut_token).
  std::vector<kernels::lut_activations> token_tables;
  std::vector<kernels::ternary_activations> token_ternary_tables;
  kernels::tile_activations tile_segments;
  aligned_vector<float> x;
  aligned_vector<float> scratch;
};

template <linear_path P = linear_path::automatic, scheme S, kernels::activation_type T>
void linear(std::span<const T> x, std::size_t tokens, const qmatrix<S>& w, std::span<float> y,
            std::span<const float> bias = {}, linear_workspace* workspace = nullptr) {
  constexpr linear_path path = P == linear_path::automatic ? automatic_path<S>() : P;
  static_assert(path != linear_path::int8_dot || kernels::int8_dot_scheme<S>,
                "linear_path::int8_dot needs 2-, 4- or 8-bit (signed) codes or base-3 ternary, with tensor, row "
                "or group scales (groups of 16 or a multiple of 32)");
  kernels::check_linear("linear", w, x.size(), tokens, y.size(), bias.size());
  if (tokens == 0) return;
  linear_workspace local;
  linear_workspace& ws = workspace ? *workspace : local;
  if constexpr (path == linear_path::int8_dot) {
#if LOWBIT_HAS_AVX2
    kernels::avx2::quantize_activations<S>(x, tokens, w.cols(), ws.activations);
    ws.scratch.resize(static_cast<std::size_t>(max_threads()) * kernels::avx2::int8_scratch_size(w));
    kernels::avx2::linear_int8(w, ws.activations, y, bias, ws.scratch.data());
#else
    kernels::quantize_activations<S>(x, tokens, w.cols(), ws.activations);
    ws.scratch.resize(static_cast<std::size_t>(max_threads()) * kernels::scalar::int8_scratch_size(w));
    kernels::scalar::linear_int8(w, ws.activations, y, bias, ws.scratch.data());
#endif
  } else {
    // X widened to fp32, rows padded with zeros to kx columns.
    const std::size_t cols = w.cols(), kx = (cols + 7) / 8 * 8;
    ws.x.resize(tokens * kx);
    for (std::size_t t = 0; t < tokens; ++t) {
      for (std::size_t k = 0; k < cols; ++k) ws.x[t * kx + k] = lowbit::detail::widen(x[t * cols + k]);
      for (std::size_t k = cols; k < kx; ++k) ws.x[t * kx + k] = 0.0f;
    }
#if LOWBIT_HAS_AVX512_BW
    ws.scratch.resize(kernels::avx512::float_scratch_total(w, tokens, kx));
    kernels::avx512::linear_float(w, ws.x.data(), tokens, kx, y, bias, ws.scratch.data());
#elif LOWBIT_HAS_AVX2
    ws.scratch.resize(kernels::avx2::float_scratch_total(w));
    kernels::avx2::linear_float(w, ws.x.data(), tokens, kx, y, bias, ws.scratch.data());
#else
    ws.scratch.resize(static_cast<std::size_t>(max_threads()) * kernels::scalar::float_scratch_size(w));
    kernels::scalar::linear_float(w, ws.x.data(), tokens, kx, y, bias, ws.scratch.data());
#endif
  }
}

// The LUT path (kernels/lut.hpp) on a matrix packed once by kernels::pack_for_lut in either layout:
// bit-exact against reference::linear_lut, within the documented table-quantization error of the
// float product. The permute layout runs on the AVX-512 VBMI + VNNI kernel where that is
// compiled, else on its scalar kernel.
template <kernels::lut_scheme S, kernels::lut_layout L, kernels::activation_type T>
void linear(std::span<const T> x, std::size_t tokens, const kernels::lut_matrix<S, L>& w, std::span<float> y,
            std::span<const float> bias = {}, linear_workspace* workspace = nullptr) {
  kernels::check_linear_lut("linear", w, x.size(), tokens, y.size(), bias.size());
  if (tokens == 0) return;
  linear_workspace local;
  linear_workspace& ws = workspace ? *workspace : local;
#if LOWBIT_HAS_AVX2
  if constexpr (L == kernels::lut_layout::permute && !LOWBIT_HAS_AVX512_VBMI) {
    detail::lut_kernels::build_lut_tables(x, tokens, w.cols(), ws.tables);
    kernels::scalar::linear_lut(w, ws.tables, y, bias);
  } else {
    if (tokens == 1) return detail::lut_kernels::linear_lut_token(w, x, y, bias, ws.token_tables);
    detail::lut_kernels::build_lut_tables(x, tokens, w.cols(), ws.tables);
    detail::lut_kernels::linear_lut(w, ws.tables, y, bias);
  }
#else
  kernels::build_lut_tables(x, tokens, w.cols(), ws.tables);
  kernels::scalar::linear_lut(w, ws.tables, y, bias);
#endif
}

// The codebook LUT path (kernels/codebook_lut.hpp) on a matrix packed once by
// kernels::pack_for_codebook_lut: bit-exact against reference::linear_codebook_lut, within the
// documented table-quantization error of the float product with the exact codebook.
template <kernels::codebook_lut_scheme S, kernels::activation_type T>
void linear(std::span<const T> x, std::size_t tokens, const kernels::codebook_lut_matrix<S>& w, std::span<float> y,
            std::span<const float> bias = {}, linear_workspace* workspace = nullptr) {
  kernels::check_linear_shape("linear", w.rows(), w.cols(), x.size(), tokens, y.size(), bias.size());
  if (tokens == 0) return;
  linear_workspace local;
  linear_workspace& ws = workspace ? *workspace : local;
#if LOWBIT_HAS_AVX2
  kernels::avx2::build_codebook_tables<S>(x, tokens, w.cols(), ws.codebook_tables, w.blocks());
  kernels::avx2::linear_codebook_lut(w, ws.codebook_tables, y, bias);
#else
  kernels::build_codebook_tables<S>(x, tokens, w.cols(), ws.codebook_tables, w.blocks());
  kernels::scalar::linear_codebook_lut(w, ws.codebook_tables, y, bias);
#endif
}

// The base-3 LUT path for ternary weights (kernels/ternary_lut.hpp) on a matrix packed once by
// kernels::pack_for_ternary_lut in either layout: bit-exact against reference::linear_ternary_lut,
// within the documented table-quantization error of the float product. The permute layout runs
// on the AVX-512 VBMI + VNNI kernel where that is compiled, else on its scalar kernel.
template <kernels::ternary_lut_scheme S, kernels::ternary_lut_layout L, kernels::activation_type T>
void linear(std::span<const T> x, std::size_t tokens, const kernels::ternary_lut_matrix<S, L>& w, std::span<float> y,
            std::span<const float> bias = {}, linear_workspace* workspace = nullptr) {
  kernels::check_linear_shape("linear", w.rows(), w.cols(), x.size(), tokens, y.size(), bias.size());
  if (tokens == 0) return;
  linear_workspace local;
  linear_workspace& ws = workspace ? *workspace : local;
#if LOWBIT_HAS_AVX2
  if constexpr (L == kernels::ternary_lut_layout::permute && !LOWBIT_HAS_AVX512_VBMI) {
    detail::lut_kernels::build_ternary_tables(x, tokens, w.cols(), ws.ternary_tables);
    kernels::scalar::linear_ternary_lut(w, ws.ternary_tables, y, bias);
  } else {
    if (tokens == 1) return detail::lut_kernels::linear_ternary_lut_token(w, x, y, bias, ws.token_ternary_tables);
    detail::lut_kernels::build_ternary_tables(x, tokens, w.cols(), ws.ternary_tables);
    detail::lut_kernels::linear_ternary_lut(w, ws.ternary_tables, y, bias);
  }
#else
  kernels::build_ternary_tables(x, tokens, w.cols(), ws.ternary_tables);
  kernels::scalar::linear_ternary_lut(w, ws.ternary_tables, y, bias);
#endif
}

// The integer-dot GEMM on a matrix packed once by kernels::pack_for_int8_tiles (row-interleaved
// tiles, kernels/int8_tiles.hpp): bit-exact against reference::linear_int8_tiled; the same int8
// products as linear_path::int8_dot, summed in another fp32 order.
template <kernels::int8_tiles_scheme S, kernels::activation_type T>
void linear(std::span<const T> x, std::size_t tokens, const kernels::int8_tiled<S>& w, std::span<float> y,
            std::span<const float> bias = {}, linear_workspace* workspace = nullptr) {
  kernels::check_linear_shape("linear", w.rows(), w.cols(), x.size(), tokens, y.size(), bias.size());
  if (tokens == 0) return;
  linear_workspace local;
  linear_workspace& ws = workspace ? *workspace : local;
#if LOWBIT_HAS_AVX2
  kernels::avx2::quantize_activations<S>(x, tokens, w.cols(), ws.activations);
  kernels::avx2::prepare_tile_activations<S>(ws.activations, ws.tile_segments);
  ws.scratch.resize(static_cast<std::size_t>(max_threads()) * detail::tile_kernels::int8_tiles_scratch_size(w));
  detail::tile_kernels::linear_int8_tiled(w, ws.activations, ws.tile_segments, y, bias, ws.scratch.data());
#else
  kernels::quantize_activations<S>(x, tokens, w.cols(), ws.activations);
  kernels::prepare_tile_activations<S>(ws.activations, ws.tile_segments);
  ws.scratch.resize(static_cast<std::size_t>(max_threads()) * kernels::scalar::int8_tiles_scratch_size(w));
  kernels::scalar::linear_int8_tiled(w, ws.activations, ws.tile_segments, y, bias, ws.scratch.data());
#endif
}

// The largest token count at which the LUT kernel beat the integer-dot kernel on S in the
// measurements of bench/README.md (small_batch, this AVX2 machine, 2 threads, from DRAM and
// L3-resident); 0 where the LUT kernel does not run. Used by the linear_weights overload.
// 4-bit schemes with int8 tiles (kernels/int8_tiles.hpp) get 0: the tiled integer-dot kernel was
// 1.2-1.4x faster than the LUT kernel at N = 1-16 (INT4-g32, 4096 x 4096, 2 threads); 2-bit codes
// keep the LUT kernel, 1.3-1.9x faster than the tiles at N = 2-16. 4-bit codes with zero points
// get 1: the LUT kernel took 0.87-0.95x the tiles' time at N = 1 from DRAM, the tiles 0.79-0.86x
// the LUT kernel's at N = 2 and 0.59-0.63x in L3 and at N = 8 (INT4-g128 with zero points,
// bench/README.md, run 9). With AVX-512 VNNI (bench/README.md, run 13, a Zen 4): 4-bit codes with
// zero points get 0, the tiles took 0.66-0.99x the LUT kernel's time at N = 1; 2-bit codes get 2
// (LOWBIT_LUT_MAX_TOKENS_2BIT): the LUT kernels took 0.72-0.90x the tiles' time at N = 1-2 on INT2
// and ternary (base 3), 0.96-1.05x on INT2 and 1.05-1.25x on ternary at N = 4, 0.94-1.35x at N = 8.
// With the 512-bit tiles as well (AVX-512 BW and VNNI): INT2 4, ternary 2 (its own macro,
// LOWBIT_LUT_MAX_TOKENS_TERNARY), INT3 4 (run 18, a Zen 5); with VBMI as well, on the permute
// layouts, INT2 8, ternary on the base-3 kernel 512 (LOWBIT_LUT_MAX_TOKENS_BASE3, runs 23-24) and
// INT3 8 (run 24). With AVX-VNNI and no AVX-512 the choices of AVX-512 VNNI without BW: on a Xeon
// (run 26, AVX2 + AVX-VNNI build, 4096^2 in L3, 2 threads) the LUT kernels took 0.60-0.86x the
// tiles' time at N = 1 on INT2-g32 and ternary, tied at N = 2 and took 1.14-1.26x at N = 4-8; the
// tiles were faster at N = 1 on INT4-g128 with zero points (239 against 291 us).
template <scheme S>
constexpr std::size_t lut_max_tokens() noexcept {
  if constexpr (!kernels::lut_scheme<S> || !LOWBIT_HAS_AVX2) {
    return 0;
  } else if constexpr (kernels::int8_tiles_scheme<S> && S::code_bits == 4) {
    return S::has_zero_point && !LOWBIT_HAS_VNNI ? 1 : 0;
  } else {
    constexpr int bits = kernels::lut_traits<S>::bits;
    if constexpr (std::is_same_v<typename S::element, ternary>)
      return LOWBIT_TERNARY_BASE3_LUT && kernels::ternary_lut_scheme<S> ? LOWBIT_LUT_MAX_TOKENS_BASE3
                                                                        : LOWBIT_LUT_MAX_TOKENS_TERNARY;
    else
      return bits <= 2 ? LOWBIT_LUT_MAX_TOKENS_2BIT : LOWBIT_LUT_MAX_TOKENS_4BIT;
  }
}

// Whether linear_weights<S> holds the base-3 LUT copy (kernels::pack_for_ternary_lut) instead of
// the bit-plane one for the LUT range: for ternary schemes with tensor or row scales (or groups of
// a multiple of 96). Measured on ternary_absmean_base3, 4096 x 8192 from DRAM and 4096 x 4096 in
// L3, 2 threads (bench/README.md, run 7): 1.03-1.28x the bit-plane kernel's speed at N = 1 from
// DRAM in three alternating rounds (1.00x in one pass; it reads 1.67 bits per weight instead of
// 2), 0.92-1.29x at N = 2-8 from DRAM, 0.92-1.13x in cache: close, ahead where decoding streams
// the weights, and a 17 % smaller copy. Its table rounding is coarser: relative RMS error 1.0e-2
// against 0.6e-2 (int8 path 0.8e-2), so LOWBIT_TERNARY_BASE3_LUT=0 keeps the bit-plane kernel.
template <scheme S>
constexpr bool prefers_ternary_lut() noexcept {
  return LOWBIT_TERNARY_BASE3_LUT && kernels::ternary_lut_scheme<S> && lut_max_tokens<S>() > 0;
}

// The packing of the base-3 LUT copy in linear_weights<S>: the permute layout where its AVX-512
// VBMI + VNNI kernel is compiled (0.65-0.78x the time of the shuffle layout's AVX-512 kernel at
// N = 1-8 in L3, Zen 5, bench/README.md run 23), else the shuffle layout.
inline constexpr kernels::ternary_lut_layout base3_layout =
    LOWBIT_HAS_AVX512_VBMI ? kernels::ternary_lut_layout::permute : kernels::ternary_lut_layout::shuffle;
// The packing of the bit-plane LUT copy in linear_weights<S>: the permute layout where its AVX-512
// VBMI + VNNI kernel is compiled (in L3, 4096 x 4096, 2 threads, Zen 5, bench/README.md run 23:
// INT2-g32 0.76x the time of the shuffle layout's kernels at N = 1 and 0.86-0.90x at N = 2-8,
// INT3-g32 0.85-0.89x, INT4-g128 with zero points 0.68-0.94x), else the shuffle layout.
inline constexpr kernels::lut_layout plane_layout =
    LOWBIT_HAS_AVX512_VBMI ? kernels::lut_layout::permute : kernels::lut_layout::shuffle;

// W prepared once for linear() (the one-time pack step): the qmatrix, plus
// - its LUT packing where S runs on the LUT kernel: linear() on it picks the LUT kernel for
//   tokens <= lut_max_tokens<S>() (for ternary the base-3 LUT kernel, see prefers_ternary_lut);
// - row-interleaved int8 tiles (kernels::pack_for_int8_tiles) for every token count the LUT
//   kernel does not take:
//   - of W itself where S is an int8_tiles_scheme (the integer-dot schemes but base 3);
//   - of W repacked two bits per weight for base-3 ternary with any scales
//     (kernels::repack_ternary_2bit): 0.37-0.42x the time of the in-place base-3 kernel at
//     N = 16-128 (bench/README.md, run 10). Its activations are quantized per 32 positions, so
//     past the LUT range it is not bit for bit linear(x, W) (per 160 for base 3 in place); base-3
//     groups, which the in-place kernel does not take, ran the exact float path before;
//   - of W's int8 packing (kernels::pack_for_int8) where the integer-dot kernels cannot read S's
//     codes in place (FP8, FP6, 8-bit codebooks, 1-, 3-, 5-7-bit integers), within the int8
//     table's documented error of the exact product (exact for integers and FP6 E2M3). On MXFP8
//     E4M3 (4096 x 4096, 2 threads) they took 0.46-0.82x the time of the integer-dot kernel on
//     the packing in place at N = 1-32 and 0.67x the float path's at N = 128-512 (run 10);
// - otherwise nothing: linear() on it runs linear_path::automatic on the qmatrix.
// linear<linear_path::float_weights> on matrix() always gives the exact product.
// The LUT copies' byte layouts follow the compiled ISA (base3_layout, plane_layout), so translation
// units that share a linear_weights object must be compiled with the same instruction-set flags.
// The copies cost memory: up to three layouts of W (for base-3 ternary 1.6 + 1.67 + 2 bits per
// weight); code that needs only one can keep just a kernels::lut_matrix or kernels::int8_tiled.
// The codebook LUT kernels (kernels::pack_for_codebook_lut) are not held: on NF4, MXFP4, NVFP4 and
// INT4 they took 0.89-1.22x the int8 tiles' time at N = 1 from DRAM and were up to 1.75x slower in
// cache and at N = 2-8 (bench/README.md, run 6), with about twice the tiles' rounding error.
template <scheme S>
class linear_weights {
  static constexpr bool has_base3 = prefers_ternary_lut<S>();
  static constexpr bool has_lut = lut_max_tokens<S>() > 0 && !has_base3;
  // Tiles of W itself (base-3 ternary repacked two bits each), or of its int8 packing.
  static constexpr bool own_tiles = kernels::int8_tiles_scheme<S> || kernels::int8_tiles_base3_scheme<S>;
  static constexpr bool packed_tiles = !own_tiles && kernels::int8_pack_scheme<S>;
  static constexpr bool has_tiles = own_tiles || packed_tiles;

public:
  explicit linear_weights(qmatrix<S> w) : w_(std::move(w)) {
    if constexpr (has_lut) lut_ = kernels::pack_for_lut<plane_layout>(w_);
    if constexpr (has_base3) base3_ = kernels::pack_for_ternary_lut<base3_layout>(w_);
    if constexpr (own_tiles) tiles_ = kernels::pack_for_int8_tiles(w_);
    if constexpr (packed_tiles) tiles_ = kernels::pack_for_int8_tiles(kernels::pack_for_int8(w_));
  }
  const qmatrix<S>& matrix() const noexcept { return w_; }
  const auto& lut() const noexcept requires(has_lut) { return lut_; }
  const auto& ternary_lut() const noexcept requires(has_base3) { return base3_; }
  // The int8 tiles: of W, or of kernels::pack_for_int8(W) for the schemes that need the packing.
  const auto& tiles() const noexcept requires(has_tiles) { return tiles_; }
  // The kernel linear() uses for `tokens` tokens.
  static constexpr const char* kernel_for(std::size_t tokens) noexcept {
    if (tokens <= lut_max_tokens<S>()) return has_base3 ? "ternary_lut" : "lut";
    if (has_tiles) return "int8_tiles";
    return automatic_path<S>() == linear_path::int8_dot ? "int8_dot" : "float_weights";
  }

private:
  // The packed copies' types, named only where S has the copy (they constrain S).
  struct none {};
  struct lut_of {
    template <class X>
    using type = kernels::lut_matrix<X, plane_layout>;
  };
  struct base3_of {
    template <class X>
    using type = kernels::ternary_lut_matrix<X, base3_layout>;
  };
  struct tiles_of {
    template <class X>
    using type = decltype(kernels::pack_for_int8_tiles(std::declval<const qmatrix<X>&>()));
  };
  struct packed_tiles_of {
    template <class X>
    using type = kernels::int8_tiled<kernels::int8_packed_scheme<X>>;
  };
  template <bool, class Of>
  struct slot {
    using type = none;
  };
  template <class Of>
  struct slot<true, Of> {
    using type = typename Of::template type<S>;
  };
  qmatrix<S> w_;
  [[no_unique_address]] typename slot<has_lut, lut_of>::type lut_{};
  [[no_unique_address]] typename slot<has_base3, base3_of>::type base3_{};
  [[no_unique_address]]
  typename slot<has_tiles, std::conditional_t<own_tiles, tiles_of, packed_tiles_of>>::type tiles_{};
};

template <scheme S, kernels::activation_type T>
void linear(std::span<const T> x, std::size_t tokens, const linear_weights<S>& w, std::span<float> y,
            std::span<const float> bias = {}, linear_workspace* workspace = nullptr) {
  if constexpr (lut_max_tokens<S>() > 0) {
    if (tokens <= lut_max_tokens<S>()) {
      if constexpr (prefers_ternary_lut<S>())
        linear(x, tokens, w.ternary_lut(), y, bias, workspace);
      else
        linear(x, tokens, w.lut(), y, bias, workspace);
      return;
    }
  }
  if constexpr (requires { w.tiles(); })
    linear(x, tokens, w.tiles(), y, bias, workspace);
  else
    linear<linear_path::automatic>(x, tokens, w.matrix(), y, bias, workspace);
}

} // namespace lowbit
