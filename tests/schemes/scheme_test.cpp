// Every scheme against an independently written reference of its published rule, on Gaussian,
// heavy-tailed, outlier-laden, all-zero, tiny and non-finite inputs.
#include "formats/reference.hpp"

#include "lowbit/schemes/all.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace {

using namespace lowbit;

constexpr std::size_t R = 8, C = 200; // C is not a multiple of 32 or 64: padded tails

std::vector<float> make(const std::string& kind, std::uint32_t seed = 1) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::student_t_distribution<float> t(3.0f);
  std::vector<float> x(R * C);
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (kind == "gauss")
      x[i] = g(rng);
    else if (kind == "student")
      x[i] = t(rng);
    else if (kind == "outliers")
      x[i] = g(rng) * (i % 97 == 0 ? 200.0f : 1.0f);
    else if (kind == "zero")
      x[i] = 0.0f;
    else if (kind == "tiny")
      x[i] = g(rng) * 1e-39f;
    else if (kind == "huge")
      x[i] = g(rng) * 1e37f;
  }
  return x;
}

// Nearest value of a minifloat element by the formats reference (ties to even, saturating).
template <class F>
double ref_round(double v) {
  static const ref::table t = ref::make_table(ref::spec_of<F>);
  return ref::decode(ref::spec_of<F>, ref::encode(t, v, ref::mode::nearest_even, ref::ovf::saturate));
}
double half_even(double v) {
  const double f = std::floor(v), d = v - f;
  return d > 0.5 ? f + 1 : d < 0.5 ? f : (std::fmod(f, 2.0) == 0 ? f : f + 1);
}

// ---- OCP MX: X = 2^clamp(floor(log2 amax) - emax, -127, 127); P = round_sat(V / X) ----
template <class E>
std::vector<double> ref_mx(const std::vector<float>& x, int emax, double (*round_elem)(double)) {
  std::vector<double> y(x.size());
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t c0 = 0; c0 < C; c0 += 32) {
      const std::size_t n = std::min<std::size_t>(32, C - c0);
      double amax = 0;
      bool finite = true;
      for (std::size_t j = 0; j < n; ++j) {
        const double v = x[r * C + c0 + j];
        finite &= std::isfinite(v);
        amax = std::max(amax, std::fabs(v));
      }
      int e = -127;
      if (amax > 0) {
        int p;
        std::frexp(amax, &p); // amax = m * 2^p, m in [0.5, 1)
        e = std::clamp(p - 1 - emax, -127, 127);
      }
      for (std::size_t j = 0; j < n; ++j)
        y[r * C + c0 + j] =
            finite ? round_elem(x[r * C + c0 + j] / std::ldexp(1.0, e)) * std::ldexp(1.0, e) : std::nan("");
    }
  return y;
}
double round_mxint8(double v) { return std::clamp(half_even(v * 64), -127.0, 127.0) / 64; }

void expect_same(const std::vector<double>& want, const std::vector<float>& got, const char* what) {
  ASSERT_EQ(want.size(), got.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (std::isnan(want[i])) {
      ASSERT_TRUE(std::isnan(got[i])) << what << " #" << i;
    } else {
      ASSERT_EQ(static_cast<float>(want[i]), got[i])
          << what << " #" << i << " (row " << i / C << ", col " << i % C << ")";
    }
  }
}

template <class S>
std::vector<float> roundtrip(const std::vector<float>& x) {
  auto q = quantize<S>(x, R, C);
  auto y = dequantize(q);
  std::vector<float> f(x.size());
  fake_quant<S>(x, R, C, f);
  for (std::size_t i = 0; i < y.size(); ++i) EXPECT_TRUE(y[i] == f[i] || (std::isnan(y[i]) && std::isnan(f[i])));
  return y;
}

const char* kinds[] = {"gauss", "student", "outliers", "zero", "tiny", "huge"};

TEST(mx_scheme, every_element_format_matches_the_ocp_rule) {
  for (const char* k : kinds) {
    const auto x = make(k);
    expect_same(ref_mx<fp8_e4m3>(x, 8, ref_round<fp8_e4m3>), roundtrip<mxfp8_e4m3>(x), k);
    expect_same(ref_mx<fp8_e5m2>(x, 15, ref_round<fp8_e5m2>), roundtrip<mxfp8_e5m2>(x), k);
    expect_same(ref_mx<fp6_e3m2>(x, 4, ref_round<fp6_e3m2>), roundtrip<mxfp6_e3m2>(x), k);
    expect_same(ref_mx<fp6_e2m3>(x, 2, ref_round<fp6_e2m3>), roundtrip<mxfp6_e2m3>(x), k);
    expect_same(ref_mx<fp4_e2m1>(x, 2, ref_round<fp4_e2m1>), roundtrip<mxfp4>(x), k);
    expect_same(ref_mx<mxint8_element>(x, 0, round_mxint8), roundtrip<mxint8>(x), k);
  }
}

TEST(mx_scheme, nan_or_inf_makes_its_whole_block_nan_and_only_that_block) {
  auto x = make("gauss");
  x[5] = std::numeric_limits<float>::infinity();
  x[C + 40] = std::numeric_limits<float>::quiet_NaN();
  const auto q = quantize<mxfp4>(x, R, C);
  EXPECT_EQ(q.scales()[0], 0xFF);
  const auto y = dequantize(q);
  for (std::size_t c = 0; c < 32; ++c) EXPECT_TRUE(std::isnan(y[c]));
  for (std::size_t c = 32; c < 64; ++c) EXPECT_FALSE(std::isnan(y[c]));
  for (std::size_t c = 32; c < 64; ++c) EXPECT_TRUE(std::isnan(y[C + c]));
  expect_same(ref_mx<fp4_e2m1>(x, 2, ref_round<fp4_e2m1>), y, "nan blocks");
}

TEST(mx_scheme, all_zero_blocks_get_the_smallest_scale_and_decode_to_zero) {
  const auto q = quantize<mxfp8_e4m3>(make("zero"), R, C);
  for (auto s : q.scales()) EXPECT_EQ(s, 0x00);
  for (float v : dequantize(q)) EXPECT_EQ(v, 0.0f);
}

// The three shared-scale roundings: floor saturates the largest elements, ceil never does.
template <scale_rounding Rd>
std::pair<double, int> sqnr_and_saturations(const std::vector<float>& x) {
  using S = mx_scheme<fp4_e2m1, Rd>;
  const auto q = quantize<S>(x, R, C);
  const auto y = dequantize(q);
  int saturated = 0;
  for (std::size_t i = 0; i < x.size(); ++i)
    if (std::fabs(x[i]) > 6.0 * q.scale_at(i / C, i % C) * (1 + 1e-9)) ++saturated;
  return {measure_error(x, y).sqnr_db, saturated};
}

TEST(mx_scheme, scale_rounding_policies_trade_saturation_for_resolution) {
  const auto x = make("gauss", 3);
  const auto [floor_db, floor_sat] = sqnr_and_saturations<scale_rounding::floor>(x);
  const auto [ceil_db, ceil_sat] = sqnr_and_saturations<scale_rounding::ceil>(x);
  const auto [near_db, near_sat] = sqnr_and_saturations<scale_rounding::nearest>(x);
  std::printf("MXFP4 on N(0,1): floor %.2f dB (%d saturated), ceil %.2f dB (%d), nearest %.2f dB (%d)\n", floor_db,
              floor_sat, ceil_db, ceil_sat, near_db, near_sat);
  EXPECT_GT(floor_sat, 0) << "floor lets the largest elements of a block saturate";
  EXPECT_EQ(ceil_sat, 0) << "ceil covers amax";
  EXPECT_LE(near_sat, floor_sat);
  EXPECT_GT(floor_db, ceil_db) << "on Gaussian data the finer floor scale wins despite saturation";
}

// ---- NVFP4: t = amax/(6*448); s_b = ue4m3(amax_b / 6 / t); P = e2m1(V / (s_b t)) ----
TEST(nvfp4, matches_the_two_level_recipe) {
  for (const char* k : {"gauss", "student", "outliers", "zero", "tiny"}) {
    const auto x = make(k);
    double amax = 0;
    for (float v : x) amax = std::max(amax, std::fabs(static_cast<double>(v)));
    double t = static_cast<float>(amax / (6.0 * 448.0));
    if (!(t > 0)) t = 1;
    std::vector<double> want(x.size());
    for (std::size_t r = 0; r < R; ++r)
      for (std::size_t c0 = 0; c0 < C; c0 += 16) {
        const std::size_t n = std::min<std::size_t>(16, C - c0);
        double bmax = 0;
        for (std::size_t j = 0; j < n; ++j) bmax = std::max(bmax, std::fabs(static_cast<double>(x[r * C + c0 + j])));
        const double s = ref_round<ue4m3>(static_cast<float>(static_cast<float>(bmax / 6.0) / static_cast<float>(t)));
        const double eff = static_cast<float>(s * t);
        for (std::size_t j = 0; j < n; ++j)
          want[r * C + c0 + j] = eff > 0 ? ref_round<fp4_e2m1>(static_cast<float>(x[r * C + c0 + j] / eff)) * eff : 0.0;
      }
    expect_same(want, roundtrip<nvfp4>(x), k);
  }
}

// ---- Integer groups, symmetric (absmax) and asymmetric (GPTQ min-max with zero point) ----
template <int Bits, std::size_t G>
void check_int_sym(const std::vector<float>& x, const char* k) {
  using S = int_sym<Bits, G, fp32_scale>;
  const double qmax = (1 << (Bits - 1)) - 1;
  std::vector<double> want(x.size());
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t c0 = 0; c0 < C; c0 += G) {
      const std::size_t n = std::min<std::size_t>(G, C - c0);
      float amax = 0;
      for (std::size_t j = 0; j < n; ++j) amax = std::max(amax, std::fabs(x[r * C + c0 + j]));
      const float s = static_cast<float>(amax / qmax);
      for (std::size_t j = 0; j < n; ++j) {
        const double q = s > 0 ? std::clamp(half_even(x[r * C + c0 + j] / s), -qmax - 1, qmax) : 0.0; // float division
        want[r * C + c0 + j] = static_cast<float>(s * q);
      }
    }
  expect_same(want, roundtrip<S>(x), k);
}

template <int Bits, std::size_t G>
void check_int_asym(const std::vector<float>& x, const char* k) {
  using S = int_asym<Bits, G, fp32_scale>;
  const double maxq = (1 << Bits) - 1;
  std::vector<double> want(x.size());
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t c0 = 0; c0 < C; c0 += G) {
      const std::size_t n = std::min<std::size_t>(G, C - c0);
      float lo = 0, hi = 0;
      for (std::size_t j = 0; j < n; ++j) {
        lo = std::min(lo, x[r * C + c0 + j]);
        hi = std::max(hi, x[r * C + c0 + j]);
      }
      const float s = static_cast<float>((hi - lo) / maxq);
      const double z = s > 0 ? std::clamp(half_even(-lo / s), 0.0, maxq) : 0.0; // float division
      for (std::size_t j = 0; j < n; ++j) {
        const double q = s > 0 ? std::clamp(half_even(x[r * C + c0 + j] / s) + z, 0.0, maxq) : z;
        want[r * C + c0 + j] = static_cast<float>(s * static_cast<float>(q - z));
      }
    }
  expect_same(want, roundtrip<S>(x), k);
}

TEST(int_groups, symmetric_and_asymmetric_match_their_rules) {
  for (const char* k : {"gauss", "student", "outliers", "zero", "tiny"}) {
    const auto x = make(k);
    check_int_sym<4, 32>(x, k);
    check_int_sym<4, 128>(x, k);
    check_int_sym<3, 64>(x, k);
    check_int_sym<8, 256>(x, k);
    check_int_sym<2, 32>(x, k);
    check_int_asym<4, 128>(x, k);
    check_int_asym<2, 64>(x, k);
    check_int_asym<8, 32>(x, k);
  }
}

TEST(int_groups, other_granularities_and_scale_formats) {
  const auto x = make("outliers");
  // Per-row and per-column int8 scales: each unit's largest magnitude is reproduced exactly.
  const auto yr = roundtrip<int_sym<8, 0, fp32_scale, granularity::row>>(x);
  const auto yc = roundtrip<int_sym<8, 0, fp32_scale, granularity::column>>(x);
  const auto yt = roundtrip<int_sym<8, 0, fp32_scale, granularity::tensor>>(x);
  for (std::size_t r = 0; r < R; ++r) {
    std::size_t arg = 0;
    for (std::size_t c = 0; c < C; ++c)
      if (std::fabs(x[r * C + c]) > std::fabs(x[r * C + arg])) arg = c;
    EXPECT_NEAR(yr[r * C + arg], x[r * C + arg], 1e-6 * std::fabs(x[r * C + arg]));
  }
  const double er = measure_error(x, yr).sqnr_db, ec = measure_error(x, yc).sqnr_db, et = measure_error(x, yt).sqnr_db;
  std::printf("int8 on outlier data: per-tensor %.2f dB, per-row %.2f dB, per-column %.2f dB\n", et, er, ec);
  EXPECT_GT(ec, et) << "outliers sit in a few columns: per-column scales isolate them";
  // fp16 / bf16 scales: the stored scale is the nearest value of that format.
  const auto q16 = quantize<int_sym<4, 32, fp16>>(x, R, C);
  const auto qbf = quantize<int_sym<4, 32, bf16>>(x, R, C);
  for (std::size_t g = 0; g < q16.scales().size(); ++g) {
    const std::size_t r = g / ((C + 31) / 32), c0 = g % ((C + 31) / 32) * 32;
    float amax = 0;
    for (std::size_t j = c0; j < std::min<std::size_t>(c0 + 32, C); ++j) amax = std::max(amax, std::fabs(x[r * C + j]));
    EXPECT_EQ(fp16::decode(q16.scales()[g]), static_cast<float>(ref_round<fp16>(amax / 7.0f)));
    EXPECT_EQ(bf16::decode(qbf.scales()[g]), static_cast<float>(ref_round<bf16>(amax / 7.0f)));
  }
}

// The table value nearest v; a tie goes to the smaller magnitude.
template <std::size_t N>
double nearest_value(const std::array<float, N>& values, float v) {
  double best = values[0];
  for (float t : values) {
    const double d = std::fabs(v - t), db = std::fabs(v - best);
    if (d < db || (d == db && std::fabs(t) < std::fabs(best))) best = t;
  }
  return best;
}

// ---- NF4 (QLoRA): absmax per 64, nearest NF4 value of x / absmax ----
TEST(nf4_scheme, matches_blockwise_absmax_and_the_nearest_table_value) {
  for (const char* k : {"gauss", "student", "outliers", "zero", "tiny"}) {
    const auto x = make(k);
    std::vector<double> want(x.size());
    for (std::size_t r = 0; r < R; ++r)
      for (std::size_t c0 = 0; c0 < C; c0 += 64) {
        const std::size_t n = std::min<std::size_t>(64, C - c0);
        float amax = 0;
        for (std::size_t j = 0; j < n; ++j) amax = std::max(amax, std::fabs(x[r * C + c0 + j]));
        for (std::size_t j = 0; j < n; ++j) {
          if (amax == 0) continue;
          const float v = x[r * C + c0 + j] / amax;
          const double best = nearest_value(nf4::values, v);
          want[r * C + c0 + j] = static_cast<float>(amax * best);
        }
      }
    expect_same(want, roundtrip<nf4_scheme<>>(x), k);
  }
}

// ---- GGUF IQ4_NL: s = fp16(max(max(x, 0) / 113, min(x, 0) / -127)) per 32, nearest table value of
// x / s (ties toward the smaller magnitude) ----
TEST(iq4_nl, matches_the_range_scale_and_the_nearest_table_value) {
  for (const char* k : {"gauss", "student", "outliers", "zero", "tiny"}) {
    for (float sign : {1.0f, -1.0f}) { // a block's largest magnitude on either side of zero
      auto x = make(k);
      for (float& v : x) v *= sign;
      std::vector<double> want(x.size());
      for (std::size_t r = 0; r < R; ++r)
        for (std::size_t c0 = 0; c0 < C; c0 += 32) {
          const std::size_t n = std::min<std::size_t>(32, C - c0);
          float lo = 0, hi = 0;
          for (std::size_t j = 0; j < n; ++j) {
            lo = std::min(lo, x[r * C + c0 + j]);
            hi = std::max(hi, x[r * C + c0 + j]);
          }
          const float s = static_cast<float>(
              ref_round<fp16>(std::max(static_cast<float>(hi / 113.0), static_cast<float>(lo / -127.0))));
          for (std::size_t j = 0; j < n; ++j) {
            if (s == 0) continue;
            const float v = x[r * C + c0 + j] / s;
            const double best = nearest_value(iq4nl::values, v);
            want[r * C + c0 + j] = static_cast<float>(s * best);
          }
        }
      expect_same(want, roundtrip<iq4_nl>(x), k);
    }
  }
  EXPECT_DOUBLE_EQ(iq4_nl::nominal_bits_per_weight(), 4.5);
  // The block's positive maximum lands on 113 exactly (here 113 * 2^-4, exact in fp16), where
  // absmax / max|v| would have clipped it to 113 / 127 of its value.
  std::vector<float> b(32, 0.0f);
  b[0] = 113.0f / 16;
  b[1] = -1.0f;
  const auto q = quantize<iq4_nl>(b, 1, 32);
  EXPECT_EQ(dequantize(q)[0], b[0]);
}

// range_scale equals absmax_scale on symmetric elements (INT4 [-7, 7], E2M1, NF4) and tracks both
// ends on an unsigned one.
TEST(range_scale, equals_absmax_on_symmetric_elements) {
  using int4_range = block_scheme<int4_sym, fp16, granularity::group, 32, range_scale>;
  using nf4_range = block_scheme<nf4, fp32_scale, granularity::group, 64, range_scale>;
  for (const char* k : {"gauss", "student", "outliers"}) {
    const auto x = make(k);
    EXPECT_EQ((roundtrip<int_sym<4, 32>>(x)), roundtrip<int4_range>(x)) << k;
    EXPECT_EQ((roundtrip<nf4_scheme<64>>(x)), roundtrip<nf4_range>(x)) << k;
  }
  static_assert(range_scale::value_range<iq4nl>() == std::pair<double, double>{-127.0, 113.0});
  static_assert(range_scale::value_range<fp4_e2m1>() == std::pair<double, double>{-6.0, 6.0});
  static_assert(range_scale::value_range<integer_format<4, false>>() == std::pair<double, double>{0.0, 15.0});
}

// ---- BitNet b1.58: gamma = max(mean|W|, 1e-5); W~ = clip(round(W / gamma), -1, 1) ----
TEST(ternary_scheme, absmean_and_absmedian_round_and_clip) {
  for (const char* k : {"gauss", "student", "zero"}) {
    const auto x = make(k);
    double sum = 0;
    std::vector<float> a;
    for (float v : x) {
      sum += std::fabs(v);
      a.push_back(std::fabs(v));
    }
    std::sort(a.begin(), a.end());
    for (bool median : {false, true}) {
      const float gamma =
          static_cast<float>(std::max(median ? static_cast<double>(a[(a.size() - 1) / 2]) : sum / x.size(), 1e-5));
      std::vector<double> want(x.size());
      for (std::size_t i = 0; i < x.size(); ++i)
        want[i] = static_cast<float>(gamma * std::clamp(half_even(x[i] / gamma), -1.0, 1.0)); // float division
      if (median)
        expect_same(
            want, roundtrip<ternary_scheme<granularity::tensor, 0, code_layout::bits, ternary_statistic::absmedian>>(x),
            k);
      else {
        expect_same(want, roundtrip<ternary_absmean>(x), k);
        expect_same(want, roundtrip<ternary_absmean_base3>(x), k);
      }
    }
  }
}

TEST(schemes, non_finite_input_is_rejected_by_schemes_without_a_nan_encoding) {
  auto x = make("gauss");
  x[3 * C + 7] = std::numeric_limits<float>::quiet_NaN();
  try {
    (void)quantize<nvfp4>(x, R, C);
    FAIL() << "no exception";
  } catch (const lowbit::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("(3, 7)"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)quantize<int4_group<>>(x, R, C), lowbit::invalid_argument);
  EXPECT_THROW((void)quantize<nf4_scheme<>>(x, R, C), lowbit::invalid_argument);
  EXPECT_THROW((void)quantize<ternary_absmean>(x, R, C), lowbit::invalid_argument);
  std::vector<float> out(x.size());
  EXPECT_THROW(fake_quant<int4_group<>>(x, R, C, out), lowbit::invalid_argument);
}

TEST(schemes, wrong_shapes_are_rejected) {
  const auto x = make("gauss");
  EXPECT_THROW((void)quantize<mxfp4>(x, R, C + 1), lowbit::invalid_argument);
  EXPECT_THROW((void)quantize<mxfp4>(x, 0, C), lowbit::invalid_argument);
  const auto q = quantize<mxfp4>(x, R, C);
  std::vector<float> small(10);
  EXPECT_THROW(dequantize(q, small), lowbit::invalid_argument);
}

TEST(schemes, bits_per_weight_match_the_published_figures) {
  EXPECT_DOUBLE_EQ(mxfp4::nominal_bits_per_weight(), 4.25);
  EXPECT_DOUBLE_EQ(mxfp6_e2m3::nominal_bits_per_weight(), 6.25);
  EXPECT_DOUBLE_EQ(mxfp8_e4m3::nominal_bits_per_weight(), 8.25);
  EXPECT_DOUBLE_EQ(nvfp4::nominal_bits_per_weight(), 4.5);
  EXPECT_DOUBLE_EQ(nvfp4::bits_per_weight(4096, 4096), 4.5 + 32.0 / (4096.0 * 4096.0)) << "plus the tensor scale";
  EXPECT_DOUBLE_EQ(nf4_scheme<>::nominal_bits_per_weight(), 4.5);
  EXPECT_DOUBLE_EQ((int_sym<4, 128>::nominal_bits_per_weight()), 4.125);
  EXPECT_DOUBLE_EQ((int_asym<4, 128>::nominal_bits_per_weight()), 4.1875);
  EXPECT_DOUBLE_EQ(ternary_absmean_base3::nominal_bits_per_weight(), 1.6);
  const auto q = quantize<mxfp4>(make("gauss"), R, C);
  EXPECT_DOUBLE_EQ(q.bits_per_weight(), (4.0 * R * 224 + 8.0 * R * 7) / (R * C)) << "rows padded to whole blocks";
}

// Orderings the literature reports at (about) equal bits, on Gaussian data.
TEST(schemes, sqnr_orderings_on_gaussian_data) {
  std::mt19937 rng(5);
  std::normal_distribution<float> g;
  const std::size_t rows = 64, cols = 1024;
  std::vector<float> x(rows * cols);
  for (auto& v : x) v = g(rng);
  auto sqnr = [&]<class S>() {
    const auto q = quantize<S>(x, rows, cols);
    const double db = measure_error(x, dequantize(q)).sqnr_db;
    std::printf("  %-44s %6.3f bits/weight %7.2f dB\n", scheme_name<S>().c_str(), q.bits_per_weight(), db);
    return db;
  };
  const double nv = sqnr.operator()<nvfp4>(), mx = sqnr.operator()<mxfp4>();
  const double nf = sqnr.operator()<nf4_scheme<64>>(), i4 = sqnr.operator()<int_sym<4, 64, fp32_scale>>();
  sqnr.operator()<mxfp6_e2m3>();
  sqnr.operator()<mxfp8_e4m3>();
  sqnr.operator()<mxint8>();
  sqnr.operator()<int_asym<4, 128>>();
  sqnr.operator()<ternary_absmean>();
  EXPECT_GT(nv, mx + 1.0) << "NVFP4 > MXFP4";
  EXPECT_GT(nf, i4 + 0.5) << "NF4 > INT4 absmax, block 64";
}

// A user-defined scheme named in one alias: MXFP4 elements, block 16, UE4M3 scales.
using mxfp4_b16_ue4m3 = block_scheme<fp4_e2m1, ue4m3, granularity::group, 16, absmax_scale<>>;
static_assert(scheme<mxfp4_b16_ue4m3>);

TEST(schemes, a_custom_scheme_goes_through_every_entry_point) {
  const auto x = make("gauss");
  const auto q = quantize<mxfp4_b16_ue4m3>(x, R, C);
  const auto y = roundtrip<mxfp4_b16_ue4m3>(x);
  EXPECT_GT(measure_error(x, y).sqnr_db, 15.0);
  const auto back = deserialize<mxfp4_b16_ue4m3>(serialize(q));
  EXPECT_EQ(dequantize(back), y);
  EXPECT_DOUBLE_EQ(mxfp4_b16_ue4m3::nominal_bits_per_weight(), 4.5);
}

} // namespace

namespace dq {

using namespace lowbit;

TEST(dynamic8, is_the_bitsandbytes_signed_dynamic_map) {
  const auto& v = dynamic8::values;
  EXPECT_EQ(v.size(), 256u);
  for (std::size_t i = 1; i < v.size(); ++i) EXPECT_LT(v[i - 1], v[i]);
  EXPECT_EQ(v[0], -0.99296875f);
  EXPECT_EQ(v[255], 1.0f);
  EXPECT_EQ(v[127], 0.0f);
  EXPECT_FLOAT_EQ(v[128], 5.5e-7f) << "0.55 * 10^-6, the midpoint of [0.1, 1] at the smallest exponent";
  for (std::size_t i = 0; i < 127; ++i) EXPECT_EQ(v[i], -v[254 - i]) << "symmetric apart from the extra 1.0";
}

// QLoRA double quantization: codes as plain NF4 (first-level absmax), dequantization with the
// absmax rebuilt as dyn[q2] * absmax2 + mean, q2 the nearest dynamic-map value.
TEST(nf4_dq, codes_match_nf4_and_scales_are_rebuilt_from_the_second_level) {
  std::mt19937 rng(12);
  std::normal_distribution<float> g;
  const std::size_t rows = 64, cols = 640; // 640 blocks of 64: three second-level blocks
  std::vector<float> x(rows * cols);
  for (auto& e : x) e = g(rng) * (1.0f + static_cast<float>(rng() % 100) / 10.0f);
  const auto plain = quantize<nf4_scheme<>>(x, rows, cols);
  const auto q = quantize<nf4_dq>(x, rows, cols);
  ASSERT_TRUE(std::equal(plain.codes().begin(), plain.codes().end(), q.codes().begin(), q.codes().end()));
  const auto first = plain.scales();
  double sum = 0;
  for (auto s : first) sum += fp32_scale::decode(s);
  const auto offset = static_cast<float>(sum / static_cast<double>(first.size()));
  EXPECT_EQ(q.scale_offset(), offset);
  ASSERT_EQ(q.scale_absmax().size(), 3u);
  for (std::size_t u = 0; u < first.size(); ++u) {
    const std::size_t k = u / 256;
    float amax2 = 0;
    for (std::size_t w = k * 256; w < std::min<std::size_t>(first.size(), (k + 1) * 256); ++w)
      amax2 = std::max(amax2, std::fabs(fp32_scale::decode(first[w]) - offset));
    ASSERT_EQ(q.scale_absmax()[k], amax2);
    const float v = (fp32_scale::decode(first[u]) - offset) / amax2;
    float best = dynamic8::values[0];
    for (float t : dynamic8::values)
      if (std::fabs(v - t) < std::fabs(v - best) ||
          (std::fabs(v - t) == std::fabs(v - best) && std::fabs(t) < std::fabs(best)))
        best = t;
    ASSERT_EQ(q.unit_scale(u), best * amax2 + offset) << u;
  }
  const auto y = dequantize(q);
  std::vector<float> f(x.size());
  fake_quant<nf4_dq>(x, rows, cols, f);
  EXPECT_EQ(y, f);
  const double db_plain = measure_error(x, dequantize(plain)).sqnr_db, db_dq = measure_error(x, y).sqnr_db;
  std::printf("NF4 %.4f bits/weight %.3f dB; NF4 + double quantization %.4f bits/weight %.3f dB\n",
              plain.bits_per_weight(), db_plain, q.bits_per_weight(), db_dq);
  EXPECT_NEAR(db_dq, db_plain, 0.1) << "double quantization costs almost nothing";
  EXPECT_NEAR(nf4_dq::nominal_bits_per_weight(), 4.127, 0.0005);
  // bitsandbytes' byte order holds the same codes, swapped within each byte.
  const auto bnb = quantize<nf4_dq_bnb>(x, rows, cols);
  EXPECT_EQ(dequantize(bnb), y);
  for (std::size_t i = 0; i < q.codes().size(); ++i)
    ASSERT_EQ(bnb.codes()[i], static_cast<std::uint8_t>((q.codes()[i] << 4) | (q.codes()[i] >> 4)));
  EXPECT_DOUBLE_EQ(nf4_dq::nominal_bits_per_weight(), 4.0 + 8.0 / 64 + 32.0 / (64 * 256));
}

} // namespace dq
