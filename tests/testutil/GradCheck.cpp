#include "tests/testutil/GradCheck.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "framework/autograd/Engine.h"
#include "framework/autograd/GradMode.h"
#include "framework/backend/Backend.h"
#include "framework/core/Random.h"
#include "framework/ops/Arithmetic.h"
#include "framework/ops/Reduce.h"

namespace anvil::testutil {
namespace {

std::vector<std::size_t> sample_coords(std::size_t n, std::size_t max_coords, std::uint64_t seed) {
  std::vector<std::size_t> idx(n);
  for (std::size_t i = 0; i < n; ++i) idx[i] = i;
  if (max_coords == 0 || max_coords >= n) return idx;
  Generator g(seed);
  for (std::size_t i = n - 1; i > 0; --i) std::swap(idx[i], idx[g.randint(i + 1)]);
  idx.resize(max_coords);
  return idx;
}

::testing::AssertionResult compare(const std::string& what, std::size_t coord, double analytic, double numeric,
                                   const GradCheckOptions& o) {
  if (std::abs(analytic - numeric) <= o.atol + o.rtol * std::max(std::abs(analytic), std::abs(numeric)))
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << what << " coordinate " << coord << ": analytic " << analytic
                                       << " vs finite difference " << numeric;
}

}  // namespace

Tensor random_f64(const Shape& shape, std::uint64_t seed, double lo, double hi) {
  Tensor t = Tensor::empty(shape, DType::kF64);
  Generator g(seed);
  double* p = t.data<double>();
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = g.uniform(lo, hi);
  return t;
}

Tensor random_f32(const Shape& shape, std::uint64_t seed, double lo, double hi) {
  return random_f64(shape, seed, lo, hi).to(DType::kF32);
}

::testing::AssertionResult grad_check(const GradFn& f, const std::vector<Tensor>& inputs,
                                      const GradCheckOptions& o) {
  BackendScope scope(reference_backend());
  std::vector<Tensor> xs;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    Tensor x = inputs[i].clone();
    if (is_compute_type(x.dtype())) {
      x = x.to(DType::kF64);
      if (std::find(o.skip_inputs.begin(), o.skip_inputs.end(), i) == o.skip_inputs.end()) x.set_requires_grad(true);
    }
    xs.push_back(x);
  }
  Tensor w;
  auto loss = [&]() {
    Tensor y = f(xs);
    if (!w.defined()) w = random_f64(y.shape(), 1234, 0.5, 1.5);
    return ops::sum(ops::mul(y, w));
  };
  Tensor l = loss();
  backward(l);
  NoGradGuard ng;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (!xs[i].defined() || !xs[i].requires_grad()) continue;
    Tensor g = xs[i].grad();
    if (!g.defined()) return ::testing::AssertionFailure() << "input " << i << " received no gradient";
    double* p = xs[i].data<double>();
    for (std::size_t c : sample_coords(static_cast<std::size_t>(xs[i].numel()), o.max_coords, 77 + i)) {
      const double orig = p[c];
      p[c] = orig + o.eps;
      const double lp = loss().item();
      p[c] = orig - o.eps;
      const double lm = loss().item();
      p[c] = orig;
      auto r = compare("input " + std::to_string(i), c, g.data<double>()[c], (lp - lm) / (2 * o.eps), o);
      if (!r) return r;
    }
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult grad_check_params(const std::function<Tensor()>& loss, const NamedTensors& params,
                                             const GradCheckOptions& o) {
  BackendScope scope(reference_backend());
  for (auto& [n, p] : params) p.impl()->grad.reset();
  Tensor l = loss();
  backward(l);
  NoGradGuard ng;
  std::uint64_t seed = 99;
  for (const auto& [name, p] : params) {
    if (p.dtype() != DType::kF64) return ::testing::AssertionFailure() << name << " is not float64: " << p.desc();
    Tensor g = p.grad();
    if (!g.defined()) return ::testing::AssertionFailure() << name << " received no gradient";
    double* d = p.data<double>();
    for (std::size_t c : sample_coords(static_cast<std::size_t>(p.numel()), o.max_coords, seed++)) {
      const double orig = d[c];
      d[c] = orig + o.eps;
      const double lp = loss().item();
      d[c] = orig - o.eps;
      const double lm = loss().item();
      d[c] = orig;
      auto r = compare(name, c, g.data<double>()[c], (lp - lm) / (2 * o.eps), o);
      if (!r) return r;
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace anvil::testutil
