// Helpers for the optimizer tests: small named parameters, gradients, error expectations.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "framework/core/Error.h"
#include "framework/tensor/Tensor.h"

namespace anvil::test {

/// A float32 leaf parameter [values.size()] that requires grad.
inline Tensor make_param(const std::vector<float>& values) {
  Tensor p = Tensor::from_vector<float>(values, Shape{static_cast<std::int64_t>(values.size())});
  p.set_requires_grad(true);
  return p;
}

/// A float32 tensor [values.size()].
inline Tensor make_vec(const std::vector<float>& values) {
  return Tensor::from_vector<float>(values, Shape{static_cast<std::int64_t>(values.size())});
}

/// Expects `f` to throw anvil::Error whose message contains every string in `needles`.
template <typename F>
void expect_error(F&& f, const std::vector<std::string>& needles) {
  try {
    f();
    ADD_FAILURE() << "expected an anvil::Error";
  } catch (const Error& e) {
    for (const auto& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
  }
}

}  // namespace anvil::test
