// lowbit quickstart: quantize one linear layer with several schemes and policies, run it with
// lowbit::linear, and compare each result with the fp32 layer in accuracy and speed.
//
// The weights are heavy-tailed (Student-t, 3 dof); the input has a few outlier channels, as LLM
// activations do. 256 calibration tokens give the per-channel statistics that SmoothQuant and the
// importance-weighted MSE search use. Each row shows the storage cost, the SQNR of the output
// Y = X W^T on 16 fresh tokens against fp32, and the median one-token GEMV time (online input
// transform included) against a plain fp32 loop on the same threads. Each layer is prepared once
// as a linear_weights: the one-token GEMV runs the kernel it picks (the "GEMV kernel" column: the
// int8-dot kernel on row-interleaved tiles for INT4/INT8/MXFP4/NVFP4/NF4, the base-3 LUT kernel for
// ternary); the 16 tokens of the SQNR run the int8-dot kernel on the tiles (the LUT kernel's range
// ends at 8 tokens), which also rounds the activations to int8 per 32 inputs.
//
//   quickstart [features]   (a features x features layer, default 4096)
#include <lowbit/lowbit.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <span>
#include <vector>

namespace {

// Median wall time of f() in microseconds.
template <class F>
double median_us(F&& f, int reps = 21) {
  std::vector<double> us;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  std::nth_element(us.begin(), us.begin() + reps / 2, us.end());
  return us[reps / 2];
}

// The fp32 baseline y = W x: rows split over threads as the kernels do, and 16 partial sums per
// row so that the compiler can vectorize the dot product without reassociating it.
void gemv_fp32(std::span<const float> w, const float* x, float* y, std::size_t n, std::size_t k) {
  lowbit::parallel_rows(n, n * k, [&](std::size_t r0, std::size_t r1) {
    for (std::size_t r = r0; r < r1; ++r) {
      const float* row = &w[r * k];
      float acc[16] = {}, sum = 0.0f;
      std::size_t c = 0;
      for (; c + 16 <= k; c += 16)
        for (std::size_t j = 0; j < 16; ++j) acc[j] += row[c + j] * x[c + j];
      for (; c < k; ++c) sum += row[c] * x[c];
      for (float a : acc) sum += a;
      y[r] = sum;
    }
  });
}

} // namespace

int main(int argc, char** argv) {
  const std::size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 4096, k = n, tokens = 16;
  if (n < 128 || n % 128) {
    std::fprintf(stderr, "usage: quickstart [features], a multiple of 128 (got %s)\n", argv[1]);
    return 2;
  }
  std::mt19937 rng(2026);
  std::normal_distribution<float> gauss;
  std::student_t_distribution<float> student_t(3.0f);
  std::vector<float> w(n * k);
  for (float& v : w) v = 0.02f * student_t(rng);
  const auto activations = [&](std::size_t count) { // every 509th channel is 40x larger
    std::vector<float> x(count * k);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = gauss(rng) * (i % k % 509 == 7 ? 40.0f : 1.0f);
    return x;
  };
  lowbit::activation_stats calib(k); // streamed from calibration batches of the layer's input
  calib.observe(activations(256), 256);
  const std::vector<float> x = activations(tokens);

  std::vector<float> y32(tokens * n);
  for (std::size_t t = 0; t < tokens; ++t) gemv_fp32(w, &x[t * k], &y32[t * n], n, k);
  const double fp32_us = median_us([&] { gemv_fp32(w, x.data(), y32.data(), n, k); });
  std::printf("lowbit %d.%d.%d: %zux%zu linear layer, input with outlier channels, %s kernels, %d thread(s)\n",
              LOWBIT_VERSION_MAJOR, LOWBIT_VERSION_MINOR, LOWBIT_VERSION_PATCH, n, k,
              lowbit::isa_name(lowbit::compiled_isa), lowbit::max_threads());
  std::printf("SQNR of Y on %zu tokens vs fp32; GEMV = median of 21 one-token calls, fp32 loop %.0f us\n\n", tokens,
              fp32_us);
  std::printf("%-10s %-34s %6s %8s %8s %8s  %s\n", "scheme", "policy", "bits/w", "SQNR dB", "GEMV us", "speed-up",
              "GEMV kernel");

  const auto row = [&]<lowbit::scheme S>(S, const char* label, const auto& policy) {
    const auto layer = policy.template quantize<S>(w, n, k, &calib);
    // Packed once for every kernel that runs S: the LUT kernel at small batches where S has one.
    const lowbit::linear_weights<S> weight(layer.weight);
    lowbit::linear_workspace ws; // reused: calls after the first do not allocate
    std::vector<float> xt(x.size()), y(tokens * n);
    const auto forward = [&](std::size_t count) { // Y[0:count] = input(X[0:count]) * Q^T
      const std::span<float> in = std::span(xt).first(count * k);
      std::copy_n(x.begin(), in.size(), in.begin());
      layer.input.apply(in, count); // the smoothing and rotation folded into the weights
      lowbit::linear(std::span<const float>(in), count, weight, std::span(y).first(count * n), {}, &ws);
    };
    forward(tokens);
    const double sqnr = lowbit::measure_error(y32, y).sqnr_db;
    const double us = median_us([&] { forward(1); });
    std::printf("%-10s %-34s %6.2f %8.2f %8.0f %7.2fx  %s\n", label, policy.name().c_str(),
                layer.weight.bits_per_weight(), sqnr, us, fp32_us / us, lowbit::linear_weights<S>::kernel_for(1));
  };
  using namespace lowbit;
  const pipeline plain{rtn_absmax{}};
  const pipeline searched{rtn_mse{}};
  const pipeline rotated{hadamard{.seed = 1}, rtn_absmax{}};
  const pipeline rotated_searched{hadamard{.seed = 1}, rtn_mse{}};
  const pipeline smoothed{smooth_quant{.alpha = 0.5f}, hadamard{.seed = 1}, rtn_mse{}};
  row(int8_group<128>{}, "INT8-g128", plain);
  row(int4_group<128>{}, "INT4-g128", plain);
  row(int4_group<128>{}, "INT4-g128", searched);
  row(int4_group<128>{}, "INT4-g128", rotated);
  row(int4_group<128>{}, "INT4-g128", smoothed);
  row(mxfp4{}, "MXFP4", plain);
  row(mxfp4{}, "MXFP4", rotated);
  row(nvfp4{}, "NVFP4", plain);
  row(nvfp4{}, "NVFP4", rotated_searched);
  row(nf4_dq{}, "NF4-dq", plain);
  row(nf4_dq{}, "NF4-dq", rotated_searched);
  row(ternary_absmean{}, "ternary", plain);
}
