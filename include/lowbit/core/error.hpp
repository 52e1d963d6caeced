// Exceptions thrown at the API boundary. Messages name the argument, the value received and
// what was expected; hot loops assume inputs were validated once, here.
#pragma once

#include <stdexcept>
#include <string>

namespace lowbit {

// Base of everything the library throws; callers may catch std::exception as well.
class error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// A caller passed an argument outside the documented domain (wrong size, bad shape, …).
class invalid_argument : public error {
public:
  using error::error;
};

namespace detail {

[[noreturn]] inline void throw_size_mismatch(const char* what, std::size_t got, std::size_t expected) {
  throw invalid_argument(std::string(what) + ": got " + std::to_string(got) + " elements, expected " +
                         std::to_string(expected));
}

} // namespace detail
} // namespace lowbit
