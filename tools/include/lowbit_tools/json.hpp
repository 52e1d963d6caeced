// A small strict JSON (RFC 8259) reader and string escaper for safetensors headers. Strict:
// one value and whitespace only, UTF-8 validated (no overlong forms, surrogates or code points
// past U+10FFFF), no control characters in strings, no duplicate object keys, nesting at most
// 64 deep. Numbers keep their text; as_u64 converts non-negative integers exactly. Every error
// throws lowbit::error naming the byte offset; the parser never reads past its input.
#pragma once

#include "lowbit/core/error.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit::tools {

class json_value {
public:
  enum class kind : std::uint8_t { null, boolean, number, string, array, object };

  kind type() const noexcept { return kind_; }
  bool is(kind k) const noexcept { return kind_ == k; }
  bool boolean() const noexcept { return boolean_; }
  // The string's decoded UTF-8, or the number's text.
  const std::string& text() const noexcept { return text_; }
  const std::vector<json_value>& items() const noexcept { return items_; }
  const std::vector<std::string>& keys() const noexcept { return keys_; }
  // The member named key, or nullptr.
  const json_value* find(std::string_view key) const noexcept {
    for (std::size_t i = 0; i < keys_.size(); ++i)
      if (keys_[i] == key) return &items_[i];
    return nullptr;
  }

  // Stores a non-negative integer number (no sign, fraction or exponent, at most 2^64 - 1) in out;
  // false for anything else.
  bool as_u64(std::uint64_t& out) const noexcept {
    if (kind_ != kind::number || text_.empty() || text_.size() > 20) return false;
    std::uint64_t v = 0;
    for (char c : text_) {
      if (c < '0' || c > '9') return false;
      const auto d = static_cast<std::uint64_t>(c - '0');
      if (v > (UINT64_MAX - d) / 10) return false;
      v = v * 10 + d;
    }
    out = v;
    return true;
  }

private:
  friend class json_parser;
  kind kind_ = kind::null;
  bool boolean_ = false;
  std::string text_;
  std::vector<json_value> items_; // array elements, or object values in key order
  std::vector<std::string> keys_; // object keys
};

class json_parser {
public:
  static constexpr int max_depth = 64;

  // Parses the whole of `in`; `what` prefixes error messages (e.g. "safetensors header").
  static json_value parse(std::string_view in, std::string_view what = "JSON") {
    json_parser p(in, what);
    p.skip_ws();
    json_value v = p.value(0);
    p.skip_ws();
    if (p.pos_ != in.size()) p.fail("unexpected data after the top-level value");
    return v;
  }

private:
  json_parser(std::string_view in, std::string_view what) : in_(in), what_(what) {}

  [[noreturn]] void fail(const std::string& why) const {
    throw lowbit::error(std::string(what_) + ": invalid JSON at byte " + std::to_string(pos_) + ": " + why);
  }
  bool at_end() const noexcept { return pos_ >= in_.size(); }
  unsigned char peek() const noexcept { return static_cast<unsigned char>(in_[pos_]); }
  void skip_ws() noexcept {
    while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) ++pos_;
  }
  void expect(char c) {
    if (at_end() || in_[pos_] != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  void literal(std::string_view word) {
    if (in_.substr(pos_, word.size()) != word) fail("expected a JSON value");
    pos_ += word.size();
  }

  json_value value(int depth) {
    if (depth > max_depth) fail("nesting deeper than " + std::to_string(max_depth));
    if (at_end()) fail("unexpected end of input, expected a value");
    json_value v;
    switch (peek()) {
    case '{': object(v, depth); break;
    case '[': array(v, depth); break;
    case '"':
      v.kind_ = json_value::kind::string;
      v.text_ = string();
      break;
    case 't':
      literal("true");
      v.kind_ = json_value::kind::boolean;
      v.boolean_ = true;
      break;
    case 'f':
      literal("false");
      v.kind_ = json_value::kind::boolean;
      break;
    case 'n': literal("null"); break;
    default: v.kind_ = json_value::kind::number; v.text_ = number();
    }
    return v;
  }

  void object(json_value& v, int depth) {
    v.kind_ = json_value::kind::object;
    ++pos_; // '{'
    skip_ws();
    if (!at_end() && peek() == '}') {
      ++pos_;
      return;
    }
    for (;;) {
      skip_ws();
      if (at_end() || peek() != '"') fail("expected a string key");
      std::string key = string();
      for (const auto& k : v.keys_)
        if (k == key) fail("duplicate key \"" + key + "\"");
      skip_ws();
      expect(':');
      skip_ws();
      v.items_.push_back(value(depth + 1));
      v.keys_.push_back(std::move(key));
      skip_ws();
      if (at_end()) fail("unexpected end of input inside an object");
      if (peek() == '}') {
        ++pos_;
        return;
      }
      expect(',');
    }
  }

  void array(json_value& v, int depth) {
    v.kind_ = json_value::kind::array;
    ++pos_; // '['
    skip_ws();
    if (!at_end() && peek() == ']') {
      ++pos_;
      return;
    }
    for (;;) {
      skip_ws();
      v.items_.push_back(value(depth + 1));
      skip_ws();
      if (at_end()) fail("unexpected end of input inside an array");
      if (peek() == ']') {
        ++pos_;
        return;
      }
      expect(',');
    }
  }

  std::string number() {
    const std::size_t start = pos_;
    auto digits = [&] {
      const std::size_t d0 = pos_;
      while (!at_end() && peek() >= '0' && peek() <= '9') ++pos_;
      if (pos_ == d0) fail("expected a digit");
    };
    if (!at_end() && peek() == '-') ++pos_;
    if (at_end()) fail("unexpected end of input in a number");
    if (peek() == '0') {
      ++pos_; // no leading zeros
    } else if (peek() >= '1' && peek() <= '9') {
      digits();
    } else {
      fail("expected a JSON value");
    }
    if (!at_end() && peek() == '.') {
      ++pos_;
      digits();
    }
    if (!at_end() && (peek() == 'e' || peek() == 'E')) {
      ++pos_;
      if (!at_end() && (peek() == '+' || peek() == '-')) ++pos_;
      digits();
    }
    return std::string(in_.substr(start, pos_ - start));
  }

  unsigned hex4() {
    if (in_.size() - pos_ < 4) fail("truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      const unsigned char c = peek();
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= c - '0';
      else if (c >= 'a' && c <= 'f')
        v |= c - 'a' + 10u;
      else if (c >= 'A' && c <= 'F')
        v |= c - 'A' + 10u;
      else
        fail("bad hex digit in a \\u escape");
      ++pos_;
    }
    return v;
  }

  static void put_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  // One raw UTF-8 sequence starting at pos_ (lead byte >= 0x80), copied to out after validation.
  void utf8_sequence(std::string& out) {
    const unsigned char lead = peek();
    std::size_t n;
    std::uint32_t cp, min;
    if (lead >= 0xC2 && lead <= 0xDF)
      n = 1, cp = lead & 0x1Fu, min = 0x80;
    else if (lead >= 0xE0 && lead <= 0xEF)
      n = 2, cp = lead & 0x0Fu, min = 0x800;
    else if (lead >= 0xF0 && lead <= 0xF4)
      n = 3, cp = lead & 0x07u, min = 0x10000;
    else
      fail("invalid UTF-8 lead byte");
    if (in_.size() - pos_ - 1 < n) fail("truncated UTF-8 sequence");
    for (std::size_t i = 1; i <= n; ++i) {
      const auto c = static_cast<unsigned char>(in_[pos_ + i]);
      if ((c & 0xC0) != 0x80) fail("invalid UTF-8 continuation byte");
      cp = (cp << 6) | (c & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) fail("invalid UTF-8 code point");
    out.append(in_.substr(pos_, n + 1));
    pos_ += n + 1;
  }

  std::string string() {
    ++pos_; // opening quote
    std::string out;
    for (;;) {
      if (at_end()) fail("unterminated string");
      const unsigned char c = peek();
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c < 0x20) fail("control character in a string");
      if (c >= 0x80) {
        utf8_sequence(out);
        continue;
      }
      ++pos_;
      if (c != '\\') {
        out += static_cast<char>(c);
        continue;
      }
      if (at_end()) fail("unterminated escape");
      const char e = in_[pos_++];
      switch (e) {
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      case '/': out += '/'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'u': {
        std::uint32_t cp = hex4();
        if (cp >= 0xDC00 && cp <= 0xDFFF) fail("unpaired low surrogate");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          if (in_.substr(pos_, 2) != "\\u") fail("high surrogate without a low surrogate");
          pos_ += 2;
          const std::uint32_t lo = hex4();
          if (lo < 0xDC00 || lo > 0xDFFF) fail("high surrogate without a low surrogate");
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        put_utf8(out, cp);
        break;
      }
      default: --pos_; fail("unknown escape");
      }
    }
  }

  std::string_view in_;
  std::string_view what_;
  std::size_t pos_ = 0;
};

// s as a JSON string literal, quotes included: quote and backslash escaped, control characters
// as \u00XX, everything else (UTF-8 included) as is.
inline std::string json_quote(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"')
      out += "\\\"";
    else if (c == '\\')
      out += "\\\\";
    else if (c < 0x20) {
      static const char hex[] = "0123456789abcdef";
      out += "\\u00";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else
      out += ch;
  }
  return out + "\"";
}

} // namespace lowbit::tools
