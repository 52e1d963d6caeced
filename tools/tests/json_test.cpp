#include "lowbit_tools/json.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

using lowbit::tools::json_parser;
using lowbit::tools::json_value;
using kind = json_value::kind;

json_value parse(const std::string& s) { return json_parser::parse(s); }

void expect_rejected(const std::string& s, const std::string& why) {
  try {
    parse(s);
    ADD_FAILURE() << "accepted: " << s;
  } catch (const lowbit::error& e) {
    EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << s << " -> " << e.what();
  }
}

TEST(tools_json, parses_every_kind_of_value) {
  const json_value v = parse(R"( {"a": [1, -2.5e+3, true, false, null], "b": {"c": "d"}, "e": []} )");
  ASSERT_TRUE(v.is(kind::object));
  ASSERT_EQ(v.keys().size(), 3u);
  const json_value& a = *v.find("a");
  ASSERT_EQ(a.items().size(), 5u);
  EXPECT_EQ(a.items()[0].text(), "1");
  EXPECT_EQ(a.items()[1].text(), "-2.5e+3");
  EXPECT_TRUE(a.items()[2].boolean());
  EXPECT_TRUE(a.items()[3].is(kind::boolean));
  EXPECT_FALSE(a.items()[3].boolean());
  EXPECT_TRUE(a.items()[4].is(kind::null));
  EXPECT_EQ(v.find("b")->find("c")->text(), "d");
  EXPECT_TRUE(v.find("e")->items().empty());
  EXPECT_EQ(v.find("zz"), nullptr);
}

TEST(tools_json, decodes_escapes_to_utf8) {
  // U+00E9 is C3 A9 and U+1F600 (surrogates D83D DE00) is F0 9F 98 80 in UTF-8.
  EXPECT_EQ(parse(R"("\"\\\/\b\f\n\r\t")").text(), "\"\\/\b\f\n\r\t");
  EXPECT_EQ(parse(R"("\u00e9")").text(), "\xC3\xA9");
  EXPECT_EQ(parse(R"("\ud83d\ude00")").text(), "\xF0\x9F\x98\x80");
  EXPECT_EQ(parse("\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\"").text(), "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
}

TEST(tools_json, converts_only_exact_unsigned_integers) {
  std::uint64_t x = 0;
  EXPECT_TRUE(parse("18446744073709551615").as_u64(x));
  EXPECT_EQ(x, UINT64_MAX);
  EXPECT_TRUE(parse("0").as_u64(x));
  EXPECT_EQ(x, 0u);
  EXPECT_FALSE(parse("18446744073709551616").as_u64(x));
  EXPECT_FALSE(parse("-1").as_u64(x));
  EXPECT_FALSE(parse("1.0").as_u64(x));
  EXPECT_FALSE(parse("1e3").as_u64(x));
  EXPECT_FALSE(parse("\"1\"").as_u64(x));
}

TEST(tools_json, rejects_malformed_syntax) {
  expect_rejected("", "unexpected end");
  expect_rejected("{", "expected a string key");
  expect_rejected("{\"a\" 1}", "expected ':'");
  expect_rejected("{\"a\": 1,}", "expected a string key");
  expect_rejected("[1 2]", "expected ','");
  expect_rejected("[1,]", "expected a JSON value");
  expect_rejected("{} x", "unexpected data after");
  expect_rejected("{\"a\": 1, \"a\": 2}", "duplicate key \"a\"");
  expect_rejected("tru", "expected a JSON value");
  expect_rejected("01", "unexpected data after");
  expect_rejected("-", "unexpected end");
  expect_rejected("1.", "expected a digit");
  expect_rejected("1e", "expected a digit");
  expect_rejected("+1", "expected a JSON value");
}

TEST(tools_json, rejects_bad_strings) {
  expect_rejected("\"abc", "unterminated string");
  expect_rejected("\"a\nb\"", "control character");
  expect_rejected(R"("\x")", "unknown escape");
  expect_rejected(R"("\u12G4")", "hex digit");
  expect_rejected(R"("\u12")", "truncated \\u escape");
  expect_rejected(R"("\udc00")", "unpaired low surrogate");
  expect_rejected(R"("\ud800x")", "without a low surrogate");
  expect_rejected(R"("\ud800\u0041")", "without a low surrogate");
}

TEST(tools_json, rejects_invalid_utf8) {
  expect_rejected("\"\xC0\x80\"", "lead byte");          // overlong NUL
  expect_rejected("\"\xE0\x80\xAF\"", "code point");     // overlong '/'
  expect_rejected("\"\xED\xA0\x80\"", "code point");     // a surrogate, encoded
  expect_rejected("\"\xF4\x90\x80\x80\"", "code point"); // past U+10FFFF
  expect_rejected("\"\xC3\"", "continuation");           // the quote is not a continuation byte
  expect_rejected("\"\xE2\x82", "truncated UTF-8");      // input ends inside the sequence
  expect_rejected("\"\x80\"", "lead byte");              // a lone continuation byte
  expect_rejected("\"\xFF\"", "lead byte");
}

TEST(tools_json, limits_nesting_depth) {
  const int limit = json_parser::max_depth;
  EXPECT_NO_THROW(parse(std::string(limit, '[') + std::string(limit, ']')));
  expect_rejected(std::string(limit + 2, '[') + std::string(limit + 2, ']'), "nesting deeper");
  // Deep input fails fast instead of exhausting the stack.
  expect_rejected(std::string(100000, '['), "nesting deeper");
}

TEST(tools_json, quote_round_trips_any_string) {
  const std::string samples[] = {"",
                                 "plain",
                                 "quote \" and \\ backslash",
                                 std::string("nul \0 tab \t", 11),
                                 "\x01\x1F control",
                                 "\xC3\xA9 utf-8 \xF0\x9F\x98\x80"};
  for (const std::string& s : samples) EXPECT_EQ(parse(lowbit::tools::json_quote(s)).text(), s);
}

} // namespace
