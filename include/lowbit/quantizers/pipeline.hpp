// Composing quantizer policies at compile time: pipeline<Transforms..., Quantizer> applies
// weight transforms in order (SmoothQuant, Hadamard rotation), then quantizes the transformed
// weights into any scheme. Each transform records what the layer's input must undergo online
// so that input(X) * dequantize(Q)^T approximates X * W^T; the result carries that record.
//
//   pipeline p{smooth_quant{.alpha = 0.5f}, hadamard{.seed = 1}, rtn_mse{}};
//   auto layer = p.quantize<lowbit::int4_group<128>>(w, rows, cols, &stats);
//   layer.input.apply(x, tokens);  // X <- X diag(s)^-1 Q, then the kernel multiplies
//
// Calibration statistics (activation_stats) feed SmoothQuant's factors and the importance
// weights (diag(X^T X)) of the final search. Transforms keep them current: smoothing divides
// channel j's absmax by s_j and its importance by s_j^2. A rotation mixes channels, so the
// diagonal of the rotated X^T X is not known from the diagonal alone: after a rotation the
// search weighs columns uniformly, and SmoothQuant must come before any rotation.
#pragma once

#include "lowbit/core/error.hpp"
#include "lowbit/kernels/reference.hpp"
#include "lowbit/quantizers/calibration.hpp"
#include "lowbit/quantizers/hadamard.hpp"
#include "lowbit/quantizers/rtn.hpp"
#include "lowbit/quantizers/smoothquant.hpp"
#include "lowbit/schemes/qmatrix.hpp"

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace lowbit {

// What the layer's input undergoes online: steps applied in order to each token (row of X).
class input_transform {
public:
  struct step {
    std::vector<float> divide;               // x_j /= divide[j] (SmoothQuant), or empty
    std::optional<hadamard_rotation> rotate; // x <- x Q, or none
    std::vector<std::uint32_t> gather;       // x'_j = x_{gather[j]} (GPTQ's act-order), or empty
  };

  explicit input_transform(std::size_t cols = 0) : cols_(cols) {}
  std::size_t cols() const noexcept { return cols_; }
  const std::vector<step>& steps() const noexcept { return steps_; }
  bool identity() const noexcept { return steps_.empty(); }
  void add_smoothing(std::vector<float> s) { steps_.push_back({std::move(s), std::nullopt, {}}); }
  void add_rotation(hadamard_rotation q) { steps_.push_back({{}, std::move(q), {}}); }
  void add_gather(std::vector<std::uint32_t> order) {
    if (order.size() != cols_) detail::throw_size_mismatch("input_transform::add_gather", order.size(), cols_);
    std::vector<bool> seen(cols_, false);
    for (std::uint32_t j : order) {
      if (j >= cols_ || seen[j]) throw invalid_argument("input_transform::add_gather: not a permutation");
      seen[j] = true;
    }
    steps_.push_back({{}, std::nullopt, std::move(order)});
  }

  // Applies every step to the tokens x cols activations x, in place.
  void apply(std::span<float> x, std::size_t tokens) const {
    if (x.size() != tokens * cols_) detail::throw_size_mismatch("input_transform::apply", x.size(), tokens * cols_);
    std::vector<float> row;
    for (const step& s : steps_) {
      if (!s.divide.empty()) smooth_activations(x, tokens, cols_, s.divide);
      if (s.rotate) s.rotate->apply_rows(x, tokens);
      if (!s.gather.empty())
        for (std::size_t t = 0; t < tokens; ++t) {
          row.assign(x.begin() + static_cast<std::ptrdiff_t>(t * cols_),
                     x.begin() + static_cast<std::ptrdiff_t>((t + 1) * cols_));
          for (std::size_t j = 0; j < cols_; ++j) x[t * cols_ + j] = row[s.gather[j]];
        }
    }
  }

private:
  std::size_t cols_;
  std::vector<step> steps_;
};

// A quantized linear layer: the packed weights and the transform its input needs.
template <scheme S>
struct quantized_linear {
  qmatrix<S> weight;
  input_transform input;

  // Y = input(X) * dequantize(weight)^T through the scalar reference (for checks, not speed).
  std::vector<float> forward_reference(std::span<const float> x, std::size_t tokens) const {
    std::vector<float> xt(x.begin(), x.end());
    input.apply(xt, tokens);
    return reference::linear(xt, tokens, dequantize(weight), weight.rows(), weight.cols());
  }
};

// No Hessian in the pipeline's state (see layer_state).
struct no_hessian {
  void scale_channels(std::span<const float>) noexcept {}
  void rotate(const hadamard_rotation&) noexcept {}
};

// State a pipeline threads through its transforms. Hessian: the type of the calibration
// Hessian carried along (gptq.hpp's `hessian`), kept consistent with every transform.
template <class Hessian = no_hessian>
struct layer_state {
  using hessian_type = Hessian;
  std::vector<float> act_absmax; // per input channel, empty when unknown
  std::vector<float> importance; // per input channel, empty for uniform
  bool rotated = false;
  input_transform input;
  std::optional<Hessian> hess; // sum X^T X of the layer's (transformed) input, if given
};

// SmoothQuant as a pipeline stage (needs calibration statistics, and must precede rotations).
struct smooth_quant {
  float alpha = 0.5f;
  float floor = 1e-5f;
  static constexpr const char* name() noexcept { return "smoothquant"; }

  template <class State>
  void transform(std::vector<float>& w, std::size_t rows, std::size_t cols, State& st) const {
    if (st.rotated)
      throw invalid_argument("smooth_quant: place SmoothQuant before any rotation (per-channel statistics of "
                             "rotated activations are not known)");
    if (st.act_absmax.empty())
      throw invalid_argument("smooth_quant: needs calibration statistics (activation_stats) of the layer's input");
    std::vector<float> s = smoothing_factors(st.act_absmax, w, rows, cols, alpha, floor);
    fold_smoothing_into_weights(w, rows, cols, s);
    for (std::size_t j = 0; j < cols; ++j) {
      st.act_absmax[j] /= s[j];
      if (!st.importance.empty()) st.importance[j] /= s[j] * s[j];
    }
    if (st.hess) st.hess->scale_channels(s);
    st.input.add_smoothing(std::move(s));
  }
};

// Randomized Hadamard rotation as a pipeline stage (weights rotated offline, input online).
struct hadamard {
  std::uint64_t seed = 0;
  std::size_t block = 0; // 0: the largest power of two dividing the input size
  static constexpr const char* name() noexcept { return "hadamard"; }

  template <class State>
  void transform(std::vector<float>& w, std::size_t rows, std::size_t cols, State& st) const {
    hadamard_rotation q(cols, seed, block);
    q.apply_rows(w, rows);
    if (st.hess) st.hess->rotate(q);
    st.act_absmax.clear();
    st.importance.clear();
    st.rotated = true;
    st.input.add_rotation(std::move(q));
  }
};

template <class T>
concept weight_transform = requires(const T t, std::vector<float>& w, layer_state<>& st) {
  t.transform(w, std::size_t{}, std::size_t{}, st);
};

// A policy that quantizes a weight matrix into any scheme (probed with INT4 groups), given
// optional per-column importance: rtn<...>, and later GPTQ.
template <class P>
concept weight_quantizer = requires(const P p, std::span<const float> w, std::span<const float> importance) {
  {
    p.template quantize<int4_group<128>>(w, std::size_t{}, std::size_t{}, importance)
    } -> std::same_as<qmatrix<int4_group<128>>>;
};

// A policy that quantizes given the Hessian of the layer's input (GPTQ); its result holds the
// packed `weight` and, when `permuted`, the input order in `permutation`.
template <class P, class H>
concept hessian_quantizer = requires(const P p, std::span<const float> w, const H& h) {
  p.template quantize<int4_group<128>>(w, std::size_t{}, std::size_t{}, h).weight;
  p.template quantize<int4_group<128>>(w, std::size_t{}, std::size_t{}, h).permuted;
};

template <class... Stages>
struct pipeline {
  static_assert(sizeof...(Stages) >= 1, "a pipeline ends with a quantizer policy such as rtn<>");
  std::tuple<Stages...> stages;

  pipeline() = default;
  explicit pipeline(Stages... s) : stages(std::move(s)...) {}

  static std::string name() {
    std::string n;
    ((n += (n.empty() ? "" : " + ") + std::string(Stages::name())), ...);
    return n;
  }

  // Transforms a copy of w (rows x cols), then quantizes it into S. calib: statistics of the
  // layer's input (required by SmoothQuant; gives the search its importance weights).
  template <scheme S>
  quantized_linear<S> quantize(std::span<const float> w, std::size_t rows, std::size_t cols,
                               const activation_stats* calib = nullptr) const {
    return quantize_impl<S>(w, rows, cols, calib, static_cast<const no_hessian*>(nullptr));
  }
  // The same with the Hessian (sum X^T X) of the layer's input, for a Hessian-based last stage
  // (GPTQ); the transforms keep it consistent (smoothing scales it, rotations rotate it).
  template <scheme S, class Hessian>
  quantized_linear<S> quantize(std::span<const float> w, std::size_t rows, std::size_t cols,
                               const activation_stats* calib, const Hessian& h) const {
    return quantize_impl<S>(w, rows, cols, calib, &h);
  }

private:
  template <scheme S, class Hessian>
  quantized_linear<S> quantize_impl(std::span<const float> w, std::size_t rows, std::size_t cols,
                                    const activation_stats* calib, const Hessian* h) const {
    detail::check_shape("pipeline::quantize", w.size(), rows, cols);
    layer_state<Hessian> st{{}, {}, false, input_transform(cols), std::nullopt};
    if (h && !std::is_same_v<Hessian, no_hessian>) st.hess.emplace(*h);
    if (calib) {
      if (calib->channels() != cols)
        throw invalid_argument("pipeline::quantize: calibration has " + std::to_string(calib->channels()) +
                               " channels, the weights have " + std::to_string(cols) + " input columns");
      if (calib->tokens() > 0) {
        st.act_absmax.assign(calib->absmax().begin(), calib->absmax().end());
        st.importance = calib->importance();
      }
    }
    std::vector<float> tw(w.begin(), w.end());
    return run<S>(tw, rows, cols, st, std::index_sequence_for<Stages...>{});
  }

  template <scheme S, class State, std::size_t... I>
  quantized_linear<S> run(std::vector<float>& w, std::size_t rows, std::size_t cols, State& st,
                          std::index_sequence<I...>) const {
    constexpr std::size_t last = sizeof...(Stages) - 1;
    const auto transform_one = [&]<std::size_t K>() {
      if constexpr (K != last) {
        static_assert(weight_transform<std::tuple_element_t<K, std::tuple<Stages...>>>,
                      "every stage but the last transforms the weights");
        std::get<K>(stages).transform(w, rows, cols, st);
      }
    };
    (transform_one.template operator()<I>(), ...);
    using Last = std::tuple_element_t<last, std::tuple<Stages...>>;
    using H = typename State::hessian_type;
    if constexpr (!std::is_same_v<H, no_hessian> && hessian_quantizer<Last, H>) {
      auto r = std::get<last>(stages).template quantize<S>(w, rows, cols, *st.hess);
      if (r.permuted) st.input.add_gather(r.permutation);
      return {std::move(r.weight), std::move(st.input)};
    } else {
      static_assert(weight_quantizer<Last>, "the last stage of a pipeline quantizes (e.g. rtn<mse_search>); a "
                                            "Hessian-based one (gptq) needs the Hessian passed to quantize");
      qmatrix<S> q = std::get<last>(stages).template quantize<S>(w, rows, cols, st.importance);
      return {std::move(q), std::move(st.input)};
    }
  }
};

} // namespace lowbit
