// lowbit quickstart: quantize a Gaussian and a heavy-tailed (Student-t, 3 dof) matrix to every
// scalar format with one per-tensor absmax scale, then to every block format (scheme), and
// print bits, range, MSE and SQNR; then quantize a linear layer whose input has outlier
// channels with several quantizer policies and print the output SQNR of each.
#include <lowbit/lowbit.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <span>
#include <vector>

namespace {

struct result {
  double mse, sqnr_db;
};

// Scale x so its absmax lands on the format's max finite value, encode, decode, measure.
template <class F>
result quantize_roundtrip(const std::vector<float>& x) {
  float amax = 0.0f;
  for (float v : x) amax = std::max(amax, std::fabs(v));
  const float scale = amax / static_cast<float>(F::max_finite);
  std::vector<float> scaled(x.size()), back(x.size());
  std::transform(x.begin(), x.end(), scaled.begin(), [&](float v) { return v / scale; });
  std::vector<typename F::storage> codes(x.size());
  lowbit::encode_span<F>(std::span<const float>(scaled), std::span(codes));
  lowbit::decode_span<F>(std::span<const typename F::storage>(codes), std::span(back));
  double err = 0, sig = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double d = static_cast<double>(back[i]) * scale - x[i];
    err += d * d;
    sig += static_cast<double>(x[i]) * x[i];
  }
  return {err / static_cast<double>(x.size()), 10 * std::log10(sig / err)};
}

template <class S>
void scheme_row(const char* name, const std::vector<float>& g, const std::vector<float>& t, std::size_t rows,
                std::size_t cols) {
  const auto qg = lowbit::quantize<S>(g, rows, cols);
  const auto mg = lowbit::measure_error(g, lowbit::dequantize(qg));
  const auto mt = lowbit::measure_error(t, lowbit::dequantize(lowbit::quantize<S>(t, rows, cols)));
  std::printf("%-22s %7.3f | %10.3e %8.2f dB | %10.3e %8.2f dB\n", name, qg.bits_per_weight(), mg.mse, mg.sqnr_db,
              mt.mse, mt.sqnr_db);
}

// Output SQNR (dB) of a quantized linear layer against the float product X * W^T.
template <class S, class Policy>
double layer_sqnr(const Policy& policy, const std::vector<float>& x, std::size_t tokens, const std::vector<float>& w,
                  std::size_t rows, std::size_t cols, const lowbit::activation_stats& stats) {
  const auto layer = policy.template quantize<S>(w, rows, cols, &stats);
  return lowbit::measure_error(lowbit::reference::linear(x, tokens, w, rows, cols), layer.forward_reference(x, tokens))
      .sqnr_db;
}

template <class Policy>
void policy_row(const Policy& policy, const std::vector<float>& x, std::size_t tokens, const std::vector<float>& w,
                std::size_t rows, std::size_t cols, const lowbit::activation_stats& stats) {
  std::printf("%-40s %8.2f dB %8.2f dB %8.2f dB\n", Policy::name().c_str(),
              layer_sqnr<lowbit::int_sym<3, 128>>(policy, x, tokens, w, rows, cols, stats),
              layer_sqnr<lowbit::int4_group<128>>(policy, x, tokens, w, rows, cols, stats),
              layer_sqnr<lowbit::mxfp4>(policy, x, tokens, w, rows, cols, stats));
}

} // namespace

int main() {
  const std::size_t rows = 512, cols = 512;
  std::mt19937 rng(2026);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  std::student_t_distribution<float> heavy(3.0f);
  std::vector<float> g(rows * cols), t(rows * cols);
  for (auto& v : g) v = gauss(rng);
  for (auto& v : t) v = heavy(rng);

  std::printf("lowbit %d.%d.%d (%s) - %zux%zu matrices, one absmax scale per tensor, round to nearest even\n\n",
              LOWBIT_VERSION_MAJOR, LOWBIT_VERSION_MINOR, LOWBIT_VERSION_PATCH, lowbit::isa_name(lowbit::compiled_isa),
              rows, cols);
  std::printf("%-14s %4s %12s | %-22s | %-22s\n", "format", "bits", "max finite", "Gaussian  MSE / SQNR dB",
              "Student-t(3) MSE / SQNR");
  lowbit::for_each_format<lowbit::all_scalar_formats>([&]<class F>() {
    if constexpr (!F::is_signed) return; // scale formats and unsigned integers hold magnitudes only
    const result rg = quantize_roundtrip<F>(g), rt = quantize_roundtrip<F>(t);
    std::printf("%-14s %4d %12.6g | %10.3e %8.2f dB | %10.3e %8.2f dB\n", lowbit::format_name<F>.data(), F::bits,
                F::max_finite, rg.mse, rg.sqnr_db, rt.mse, rt.sqnr_db);
  });

  std::printf("\nBlock formats (scales per block of the reduction axis):\n");
  std::printf("%-22s %7s | %-22s | %-22s\n", "scheme", "bits/w", "Gaussian  MSE / SQNR dB", "Student-t(3) MSE / SQNR");
  scheme_row<lowbit::mxfp8_e4m3>("mxfp8_e4m3", g, t, rows, cols);
  scheme_row<lowbit::mxfp6_e2m3>("mxfp6_e2m3", g, t, rows, cols);
  scheme_row<lowbit::mxfp4>("mxfp4", g, t, rows, cols);
  scheme_row<lowbit::mxint8>("mxint8", g, t, rows, cols);
  scheme_row<lowbit::nvfp4>("nvfp4", g, t, rows, cols);
  scheme_row<lowbit::int8_group<128>>("int8 g128 fp16", g, t, rows, cols);
  scheme_row<lowbit::int4_group<128>>("int4 g128 fp16", g, t, rows, cols);
  scheme_row<lowbit::int_asym<4, 128>>("uint4 g128 + zero", g, t, rows, cols);
  scheme_row<lowbit::int_sym<3, 64>>("int3 g64 fp16", g, t, rows, cols);
  scheme_row<lowbit::int_asym<2, 32>>("uint2 g32 + zero", g, t, rows, cols);
  scheme_row<lowbit::nf4_scheme<64>>("nf4 b64", g, t, rows, cols);
  scheme_row<lowbit::nf4_dq>("nf4 b64 + double quant", g, t, rows, cols);
  scheme_row<lowbit::ternary_absmean_base3>("ternary (BitNet) base3", g, t, rows, cols);

  // A linear layer: Student-t weights, activations with a few outlier channels (as in LLMs).
  const std::size_t tokens = 64, out_features = 256, in_features = 1024;
  std::vector<float> w(out_features * in_features), x(tokens * in_features);
  for (auto& v : w) v = 0.02f * heavy(rng);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = gauss(rng) * (i % in_features % 97 == 5 ? 40.0f : 1.0f);
  lowbit::activation_stats stats(in_features); // calibration: stream batches of activations
  stats.observe(x, tokens);
  std::printf("\nQuantizer policies on a %zux%zu linear layer (outlier input channels), output SQNR:\n", out_features,
              in_features);
  std::printf("%-40s %11s %11s %11s\n", "policy", "int3 g128", "int4 g128", "mxfp4");
  using namespace lowbit;
  policy_row(pipeline{rtn_absmax{}}, x, tokens, w, out_features, in_features, stats);
  policy_row(pipeline{rtn_mse{}}, x, tokens, w, out_features, in_features, stats);
  policy_row(pipeline{hadamard{.seed = 1}, rtn_mse{}}, x, tokens, w, out_features, in_features, stats);
  policy_row(pipeline{smooth_quant{.alpha = 0.3f}, hadamard{.seed = 1}, rtn_mse{}}, x, tokens, w, out_features,
             in_features, stats);
}
