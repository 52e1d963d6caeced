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
#include <utility>
#include <vector>

namespace lowbit {

// What the layer's input undergoes online: steps applied in order to each token (row of X).
class input_transform {
public:
  struct step {
    std::vector<float> divide;               // x_j /= divide[j] (SmoothQuant), or empty
    std::optional<hadamard_rotation> rotate; // x <- x Q, or none
  };

  explicit input_transform(std::size_t cols = 0) : cols_(cols) {}
  std::size_t cols() const noexcept { return cols_; }
  const std::vector<step>& steps() const noexcept { return steps_; }
  bool identity() const noexcept { return steps_.empty(); }
  void add_smoothing(std::vector<float> s) { steps_.push_back({std::move(s), std::nullopt}); }
  void add_rotation(hadamard_rotation q) { steps_.push_back({{}, std::move(q)}); }

  // Applies every step to the tokens x cols activations x, in place.
  void apply(std::span<float> x, std::size_t tokens) const {
    if (x.size() != tokens * cols_) detail::throw_size_mismatch("input_transform::apply", x.size(), tokens * cols_);
    for (const step& s : steps_) {
      if (!s.divide.empty()) smooth_activations(x, tokens, cols_, s.divide);
      if (s.rotate) s.rotate->apply_rows(x, tokens);
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

// State a pipeline threads through its transforms.
struct layer_state {
  std::vector<float> act_absmax; // per input channel, empty when unknown
  std::vector<float> importance; // per input channel, empty for uniform
  bool rotated = false;
  input_transform input;
};

// SmoothQuant as a pipeline stage (needs calibration statistics, and must precede rotations).
struct smooth_quant {
  float alpha = 0.5f;
  float floor = 1e-5f;
  static constexpr const char* name() noexcept { return "smoothquant"; }

  void transform(std::vector<float>& w, std::size_t rows, std::size_t cols, layer_state& st) const {
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
    st.input.add_smoothing(std::move(s));
  }
};

// Randomized Hadamard rotation as a pipeline stage (weights rotated offline, input online).
struct hadamard {
  std::uint64_t seed = 0;
  std::size_t block = 0; // 0: the largest power of two dividing the input size
  static constexpr const char* name() noexcept { return "hadamard"; }

  void transform(std::vector<float>& w, std::size_t rows, std::size_t cols, layer_state& st) const {
    hadamard_rotation q(cols, seed, block);
    q.apply_rows(w, rows);
    st.act_absmax.clear();
    st.importance.clear();
    st.rotated = true;
    st.input.add_rotation(std::move(q));
  }
};

template <class T>
concept weight_transform = requires(const T t, std::vector<float>& w, layer_state& st) {
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
    detail::check_shape("pipeline::quantize", w.size(), rows, cols);
    layer_state st{{}, {}, false, input_transform(cols)};
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

private:
  template <scheme S, std::size_t... I>
  quantized_linear<S> run(std::vector<float>& w, std::size_t rows, std::size_t cols, layer_state& st,
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
    static_assert(weight_quantizer<std::tuple_element_t<last, std::tuple<Stages...>>>,
                  "the last stage of a pipeline quantizes (e.g. rtn<mse_search>)");
    qmatrix<S> q = std::get<last>(stages).template quantize<S>(w, rows, cols, st.importance);
    return {std::move(q), std::move(st.input)};
  }
};

} // namespace lowbit
