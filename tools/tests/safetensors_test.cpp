#include "lowbit_tools/safetensors.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace lowbit::tools;

using bytes = std::vector<std::uint8_t>;

// A file from a header text and a data section, the length field written by hand.
bytes make_file(const std::string& header, const bytes& data, std::uint64_t declared = UINT64_MAX) {
  const std::uint64_t n = declared == UINT64_MAX ? header.size() : declared;
  bytes f;
  f.reserve(8 + header.size() + data.size());
  for (int i = 0; i < 8; ++i) f.push_back(static_cast<std::uint8_t>(n >> (8 * i)));
  for (char c : header) f.push_back(static_cast<std::uint8_t>(c));
  for (std::uint8_t b : data) f.push_back(b);
  return f;
}

void push16(bytes& d, std::uint16_t h) {
  d.push_back(static_cast<std::uint8_t>(h & 0xFF));
  d.push_back(static_cast<std::uint8_t>(h >> 8));
}

bytes f32_bytes(std::initializer_list<float> v) {
  bytes b(v.size() * 4);
  std::memcpy(b.data(), std::data(v), b.size());
  return b;
}

void expect_error(const bytes& file, const std::string& why) {
  try {
    safetensors_view v{std::span<const std::uint8_t>(file)};
    ADD_FAILURE() << "accepted a file that should fail with: " << why;
  } catch (const lowbit::error& e) {
    EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
  }
}

// Two F32 values and three BF16 values, with the header as a header file writer would pad it.
const std::string good_header =
    R"({"__metadata__":{"format":"pt"},"b":{"dtype":"BF16","shape":[3],"data_offsets":[8,14]},)"
    R"("a":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]}})";

bytes good_data() {
  bytes d = f32_bytes({1.5f, -2.0f});
  // BF16 1.0 = 0x3F80, -0.5 = 0xBF00, 2^-133 (the smallest subnormal) = 0x0001
  for (std::uint16_t h : {0x3F80, 0xBF00, 0x0001}) push16(d, h);
  return d;
}

TEST(tools_safetensors, reads_tensors_metadata_and_values) {
  const bytes file = make_file(good_header, good_data());
  const safetensors_view v{std::span<const std::uint8_t>(file)};
  ASSERT_EQ(v.tensors().size(), 2u);
  EXPECT_EQ(v.tensors()[0].name, "a"); // data-section order, not header order
  EXPECT_EQ(v.at("a").shape, (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(v.at("b").type, dtype::BF16);
  EXPECT_EQ(v.find("c"), nullptr);
  EXPECT_THROW(v.at("c"), lowbit::error);
  ASSERT_NE(v.metadata("format"), nullptr);
  EXPECT_EQ(*v.metadata("format"), "pt");
  EXPECT_EQ(v.to_float(v.at("a")), (std::vector<float>{1.5f, -2.0f}));
  EXPECT_EQ(v.to_float(v.at("b")), (std::vector<float>{1.0f, -0.5f, std::ldexp(1.0f, -133)}));
}

TEST(tools_safetensors, converts_f16_exactly) {
  // F16 0x3C00 = 1, 0xC500 = -5, 0x0001 = 2^-24, 0x7BFF = 65504.
  bytes d;
  for (std::uint16_t h : {0x3C00, 0xC500, 0x0001, 0x7BFF}) push16(d, h);
  const bytes file = make_file(R"({"h":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]}})", d);
  const safetensors_view v{std::span<const std::uint8_t>(file)};
  EXPECT_EQ(v.to_float(v.at("h")), (std::vector<float>{1.0f, -5.0f, std::ldexp(1.0f, -24), 65504.0f}));
}

TEST(tools_safetensors, to_float_refuses_other_dtypes) {
  const bytes file = make_file(R"({"i":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}})", bytes(4));
  const safetensors_view v{std::span<const std::uint8_t>(file)};
  EXPECT_THROW(v.to_float(v.at("i")), lowbit::error);
}

TEST(tools_safetensors, writer_output_reads_back) {
  std::ostringstream out;
  safetensors_writer w(
      out, {{"x", dtype::F32, {2}}, {"empty", dtype::F16, {0, 3}}, {"s", dtype::I64, {}}, {"u", dtype::U8, {3}}},
      {{"k \"quoted\"", "v\n"}});
  w.write_values(std::span<const float>(std::vector<float>{3.0f, -1.0f}));
  w.write({});
  w.write_values(std::span<const std::int64_t>(std::vector<std::int64_t>{-7}));
  EXPECT_THROW(w.write(bytes(2)), lowbit::invalid_argument); // "u" is 3 bytes
  w.write(bytes{1, 2, 3});
  EXPECT_THROW(w.write(bytes{}), lowbit::invalid_argument); // nothing more was declared
  w.finish();
  const std::string s = out.str();
  std::uint64_t n;
  std::memcpy(&n, s.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(s.size(), 8 + n + 8 + 0 + 8 + 3);
  const safetensors_view v({reinterpret_cast<const std::uint8_t*>(s.data()), s.size()});
  EXPECT_EQ(v.to_float(v.at("x")), (std::vector<float>{3.0f, -1.0f}));
  EXPECT_EQ(v.at("empty").elements(), 0u);
  EXPECT_TRUE(v.at("s").shape.empty());
  EXPECT_EQ(v.data(v.at("s"))[0], 0xF9); // -7 little-endian
  EXPECT_EQ(v.data(v.at("u"))[2], 3);
  EXPECT_EQ(*v.metadata("k \"quoted\""), "v\n");
}

TEST(tools_safetensors, writer_refuses_repeated_or_reserved_names) {
  std::ostringstream out;
  EXPECT_THROW(safetensors_writer(out, {{"a", dtype::U8, {1}}, {"a", dtype::U8, {1}}}, {}), lowbit::invalid_argument);
  EXPECT_THROW(safetensors_writer(out, {{"__metadata__", dtype::U8, {1}}}, {}), lowbit::invalid_argument);
  safetensors_writer w(out, {{"a", dtype::U8, {1}}}, {});
  EXPECT_THROW(w.finish(), lowbit::invalid_argument);
}

TEST(tools_safetensors, rejects_bad_header_length) {
  expect_error(bytes(7), "fewer than the 8-byte header length");
  const std::size_t rest = good_header.size() + good_data().size();
  expect_error(make_file(good_header, good_data(), rest + 1),
               "header length " + std::to_string(rest + 1) + " exceeds the " + std::to_string(rest) + " bytes");
  expect_error(make_file(good_header, good_data(), std::uint64_t{1} << 40), "exceeds the limit");
  expect_error(make_file(good_header, good_data(), UINT64_MAX - 1), "exceeds the limit");
  // A length that cuts the JSON short leaves invalid JSON.
  expect_error(make_file(good_header, good_data(), 10), "invalid JSON");
}

TEST(tools_safetensors, rejects_bad_json) {
  expect_error(make_file("{\"a\":", {}), "invalid JSON at byte 5");
  expect_error(make_file("[]", {}), "not a JSON object");
  expect_error(make_file("{\"a\": 1", {}), "invalid JSON");
  expect_error(make_file("{} {}", {}), "unexpected data after");
  expect_error(make_file("{\"\xFF\": 1}", {}), "UTF-8");
  expect_error(make_file(R"({"__metadata__": {"k": 1}})", {}), "value of \"k\" is not a string");
  expect_error(make_file(R"({"__metadata__": []})", {}), "\"__metadata__\" is not an object");
}

TEST(tools_safetensors, rejects_bad_entries) {
  const auto one = [](const std::string& entry, std::size_t data = 8) {
    return make_file("{\"t\":" + entry + "}", bytes(data));
  };
  expect_error(one("1"), "tensor \"t\" is not an object");
  expect_error(one(R"({"dtype":"F32","shape":[2]})"), "needs \"dtype\", \"shape\" and \"data_offsets\"");
  expect_error(one(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1})"), "unknown field \"x\"");
  expect_error(one(R"({"dtype":"F31","shape":[2],"data_offsets":[0,8]})"), "unknown dtype \"F31\"");
  expect_error(one(R"({"dtype":4,"shape":[2],"data_offsets":[0,8]})"), "dtype is not a string");
  expect_error(one(R"({"dtype":"F32","shape":2,"data_offsets":[0,8]})"), "shape is not an array");
  expect_error(one(R"({"dtype":"F32","shape":[-2],"data_offsets":[0,8]})"), "shape[0] is not a non-negative");
  expect_error(one(R"({"dtype":"F32","shape":[2.0],"data_offsets":[0,8]})"), "shape[0] is not a non-negative");
  expect_error(one(R"({"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]})"), "overflows");
  expect_error(one(R"({"dtype":"F64","shape":[4294967296,1073741824],"data_offsets":[0,8]})"), "more than 2^64");
  expect_error(one(R"({"dtype":"F32","shape":[2],"data_offsets":[0]})"), "not an array of two integers");
  expect_error(one(R"({"dtype":"F32","shape":[2],"data_offsets":[8,0]})"), "end before begin");
  expect_error(one(R"({"dtype":"F32","shape":[2],"data_offsets":[0,16]})"), "past the data section of 8 bytes");
  expect_error(one(R"({"dtype":"F32","shape":[3],"data_offsets":[0,8]})"), "needs 12 bytes, data_offsets give 8");
  expect_error(one(R"({"dtype":"F16","shape":[2],"data_offsets":[0,8]})"), "needs 4 bytes");
}

TEST(tools_safetensors, rejects_overlaps_gaps_and_trailing_bytes) {
  const std::string a = R"("a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]})";
  expect_error(make_file("{" + a + R"(,"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}})", bytes(6)),
               "tensors \"a\" and \"b\" overlap");
  expect_error(make_file("{" + a + R"(,"b":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})", bytes(4)), "overlap");
  expect_error(make_file("{" + a + R"(,"b":{"dtype":"U8","shape":[2],"data_offsets":[6,8]}})", bytes(8)),
               "bytes 4 to 6 of the data section belong to no tensor");
  expect_error(make_file(R"({"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})", bytes(4)), "bytes 0 to 2");
  expect_error(make_file("{" + a + "}", bytes(5)), "1 bytes after the last tensor");
  // An empty tensor may sit anywhere in the tiling.
  EXPECT_NO_THROW(
      safetensors_view(make_file("{" + a + R"(,"e":{"dtype":"F32","shape":[0,5],"data_offsets":[4,4]}})", bytes(4))));
}

TEST(tools_safetensors, every_truncation_is_a_clean_error) {
  std::ostringstream out;
  safetensors_writer w(out, {{"w", dtype::F32, {3, 4}}, {"b", dtype::BF16, {4}}, {"m", dtype::U8, {5}}},
                       {{"format", "pt"}});
  w.write(bytes(48, 0x3F));
  w.write(bytes(8, 0x40));
  w.write(bytes(5, 1));
  w.finish();
  const std::string s = out.str();
  for (std::size_t n = 0; n < s.size(); ++n) {
    // A fresh allocation of exactly n bytes, so that AddressSanitizer sees any read past it.
    const bytes prefix(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_THROW(safetensors_view{std::span<const std::uint8_t>(prefix)}, lowbit::error) << "prefix of " << n;
  }
  const bytes whole(s.begin(), s.end());
  EXPECT_NO_THROW(safetensors_view{std::span<const std::uint8_t>(whole)});
}

TEST(tools_safetensors, mapped_file_reports_missing_files) {
  try {
    safetensors_file f("/nonexistent/dir/x.safetensors");
    ADD_FAILURE();
  } catch (const lowbit::error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot open \"/nonexistent/dir/x.safetensors\""), std::string::npos);
  }
}

} // namespace
