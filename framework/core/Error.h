// anvil::Error and the check macros every layer uses to reject bad input.
//
// Every failure inside the library throws anvil::Error (or a subclass); the library never aborts or
// exits. Messages name the function, and the file, parameter, shape or value at fault, e.g.
//   "linear: shape mismatch: input [64,256] does not match weight [120,400] (in_features 400)".
#pragma once

#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace anvil {

/// The single exception type thrown by Anvil. `what()` is a complete, user-facing message.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {
[[noreturn]] void throw_error(const char* function, const std::string& message);
}  // namespace detail

}  // namespace anvil

/// Throws anvil::Error("<function>: <formatted message>"). Arguments follow fmt::format.
#define ANVIL_THROW(...) ::anvil::detail::throw_error(__func__, ::fmt::format(__VA_ARGS__))

/// If `cond` is false, throws anvil::Error("<function>: <formatted message>").
#define ANVIL_CHECK(cond, ...)                                                   \
  do {                                                                           \
    if (!(cond)) ::anvil::detail::throw_error(__func__, ::fmt::format(__VA_ARGS__)); \
  } while (0)
