// Typed-test name generator: each format's test is named after lowbit::format_name<F>.
#pragma once

#include "lowbit/formats/concepts.hpp"

#include <string>

namespace lowbit_test {

struct format_test_names {
  template <class F>
  static std::string GetName(int) {
    return std::string(lowbit::format_name<F>);
  }
};

} // namespace lowbit_test
