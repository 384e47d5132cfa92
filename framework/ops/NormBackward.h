// The autograd node shared by batch norm and layer norm (framework/ops internal): both backends' backward
// takes (dy, x, gamma, mean, var, eps) with the statistics the forward returned and gives dx, dgamma, dbeta.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "framework/autograd/Function.h"
#include "framework/backend/Backend.h"

namespace anvil::ops::detail {

template <typename Grads, Grads (Backend::*Backward)(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                                     const Tensor&, double)>
class NormBackward final : public autograd::Node {
 public:
  /// `name` must outlive the node (a string literal).
  NormBackward(const char* name, Backend& bk, Tensor x, Tensor gamma, Tensor mean, Tensor var, double eps)
      : name_(name), bk_(bk), x_(std::move(x)), gamma_(std::move(gamma)), mean_(std::move(mean)),
        var_(std::move(var)), eps_(eps) {}
  std::vector<Tensor> apply(const Tensor& dy) override {
    Grads g = (bk_.*Backward)(dy, x_, gamma_, mean_, var_, eps_);
    return {g.dx, g.dgamma, g.dbeta};
  }
  std::string name() const override { return name_; }
  void release_saved() override { x_ = gamma_ = mean_ = var_ = Tensor(); }

 private:
  const char* name_;
  Backend& bk_;
  Tensor x_, gamma_, mean_, var_;
  double eps_;
};

}  // namespace anvil::ops::detail
