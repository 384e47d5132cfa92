// Error-message helpers shared by the tests: what anvil::Error a call throws, and substring checks on it.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "framework/core/Error.h"

namespace anvil::testutil {

/// Runs `f` and returns the message of the anvil::Error it throws. When it throws none, records a
/// test failure ("expected anvil::Error") and returns "". Other exceptions propagate.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected anvil::Error";
  return {};
}

/// True when `s` contains `part`.
inline bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace anvil::testutil
