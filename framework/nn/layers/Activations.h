// Activation cells: ReLU, LeakyReLU, Sigmoid, Tanh, GELU (exact), and Flatten.
#pragma once

#include "framework/nn/Cell.h"

namespace anvil::nn {

class ReLU : public Cell {
 public:
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "ReLU"; }
};

class LeakyReLU : public Cell {
 public:
  explicit LeakyReLU(double alpha = 0.2) : alpha_(alpha) {}
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "LeakyReLU"; }

 private:
  double alpha_;
};

class Sigmoid : public Cell {
 public:
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Sigmoid"; }
};

class Tanh : public Cell {
 public:
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Tanh"; }
};

class GELU : public Cell {
 public:
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "GELU"; }
};

/// [N, ...] -> [N, prod(...)].
class Flatten : public Cell {
 public:
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Flatten"; }
};

}  // namespace anvil::nn
