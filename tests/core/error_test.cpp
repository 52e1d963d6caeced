#include "lowbit/core/error.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

TEST(error, size_mismatch_names_the_argument_and_both_sizes) {
  try {
    lowbit::detail::throw_size_mismatch("encode_span: output span", 3, 5);
    FAIL() << "no exception";
  } catch (const lowbit::invalid_argument& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("output span"), std::string::npos);
    EXPECT_NE(msg.find('3'), std::string::npos);
    EXPECT_NE(msg.find('5'), std::string::npos);
  }
  EXPECT_TRUE((std::is_base_of_v<std::runtime_error, lowbit::error>));
}

} // namespace
