// Parameter initializers (MindSpore mindspore.common.initializer names and formulas).
//
// Fan rules (shape[0] is the output dimension; Dense weights are [out, in], conv weights OIHW):
// fan_in = prod(shape[1:]), fan_out = shape[0] * prod(shape[2:]); a 1-D shape has fan_in = fan_out =
// shape[0]. Samples are drawn in float64 from the given Generator in row-major order, then stored in
// the tensor's dtype, so equal seeds give bit-identical parameters.
#pragma once

#include <memory>
#include <string>

#include "framework/core/Random.h"
#include "framework/tensor/Tensor.h"

namespace anvil::nn {

struct Fans {
  double fan_in = 0, fan_out = 0;
};
/// Fans of a weight shape as above; throws on a 0-d shape.
Fans compute_fans(const Shape& shape);

/// Gain for a nonlinearity: linear/sigmoid/conv 1; tanh 5/3; relu √2; leaky_relu √(2 / (1 + slope²)).
double calculate_gain(const std::string& nonlinearity, double negative_slope = 0.0);

class Initializer {
 public:
  virtual ~Initializer() = default;
  /// Overwrites every element of `t` (float32 or float64).
  virtual void fill(Tensor& t, Generator& gen) const = 0;
  virtual std::string name() const = 0;
};

/// Every element = value.
class Constant : public Initializer {
 public:
  explicit Constant(double value) : value_(value) {}
  void fill(Tensor& t, Generator& gen) const override;
  std::string name() const override { return "constant"; }

 private:
  double value_;
};

/// U(-scale, scale) (MindSpore Uniform, default scale 0.07).
class Uniform : public Initializer {
 public:
  explicit Uniform(double scale = 0.07);
  void fill(Tensor& t, Generator& gen) const override;
  std::string name() const override { return "uniform"; }

 private:
  double scale_;
};

/// N(mean, sigma²) (MindSpore Normal, default sigma 0.01).
class Normal : public Initializer {
 public:
  explicit Normal(double sigma = 0.01, double mean = 0.0);
  void fill(Tensor& t, Generator& gen) const override;
  std::string name() const override { return "normal"; }

 private:
  double sigma_, mean_;
};

/// N(mean, sigma²), redrawing samples with |x − mean| ≥ 2σ (MindSpore TruncatedNormal, sigma 0.01).
class TruncatedNormal : public Initializer {
 public:
  explicit TruncatedNormal(double sigma = 0.01, double mean = 0.0);
  void fill(Tensor& t, Generator& gen) const override;
  std::string name() const override { return "truncated_normal"; }

 private:
  double sigma_, mean_;
};

/// Glorot: uniform U(±gain·√(6/(fan_in+fan_out))) or normal N(0, gain·√(2/(fan_in+fan_out))).
class XavierUniform : public Initializer {
 public:
  explicit XavierUniform(double gain = 1.0) : gain_(gain) {}
  void fill(Tensor& t, Generator& gen) const override;
  std::string name() const override { return "xavier_uniform"; }

 private:
  double gain_;
};
class XavierNormal : public Initializer {
 public:
  explicit XavierNormal(double gain = 1.0) : gain_(gain) {}
  void fill(Tensor& t, Generator& gen) const override;
  std::string name() const override { return "xavier_normal"; }

 private:
  double gain_;
};

/// Kaiming/He: std = gain / √fan with fan = fan_in or fan_out (`mode`) and gain from
/// calculate_gain(nonlinearity, negative_slope). Uniform: U(±√3·std); normal: N(0, std).
/// MindSpore's Dense/Conv2d default weight init is HeUniform(negative_slope=√5).
class HeUniform : public Initializer {
 public:
  explicit HeUniform(double negative_slope = 0.0, std::string mode = "fan_in", std::string nonlinearity = "leaky_relu");
  void fill(Tensor& t, Generator& gen) const override;
  std::string name() const override { return "he_uniform"; }

 private:
  double slope_;
  std::string mode_, nonlinearity_;
};
class HeNormal : public Initializer {
 public:
  explicit HeNormal(double negative_slope = 0.0, std::string mode = "fan_in", std::string nonlinearity = "leaky_relu");
  void fill(Tensor& t, Generator& gen) const override;
  std::string name() const override { return "he_normal"; }

 private:
  double slope_;
  std::string mode_, nonlinearity_;
};

/// Initializer by (case-insensitive) name with default arguments: "zeros", "ones", "uniform",
/// "normal", "truncated_normal"/"truncatednormal", "xavier_uniform"/"glorot_uniform",
/// "xavier_normal"/"glorot_normal", "he_uniform"/"kaiming_uniform", "he_normal"/"kaiming_normal".
/// Throws listing the known names otherwise.
std::shared_ptr<Initializer> make_initializer(const std::string& name);

/// A new float tensor of `shape` filled by `init`.
Tensor initialized(const Shape& shape, const Initializer& init, Generator& gen, DType dtype = DType::kF32);

}  // namespace anvil::nn
