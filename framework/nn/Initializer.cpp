#include "framework/nn/Initializer.h"

#include <algorithm>
#include <cctype>
#include <cmath>

namespace anvil::nn {
namespace {

template <typename F>
void fill_with(Tensor& t, F&& draw) {
  ANVIL_CHECK(is_compute_type(t.dtype()), "initializer needs a float32/float64 tensor, got {}", t.desc());
  const auto n = static_cast<std::size_t>(t.numel());
  if (t.dtype() == DType::kF64) {
    double* p = t.data<double>();
    for (std::size_t i = 0; i < n; ++i) p[i] = draw();
  } else {
    float* p = t.data<float>();
    for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<float>(draw());
  }
}

double select_fan(const Shape& s, const std::string& mode) {
  Fans f = compute_fans(s);
  if (mode == "fan_in") return f.fan_in;
  if (mode == "fan_out") return f.fan_out;
  ANVIL_THROW("mode must be \"fan_in\" or \"fan_out\", got '{}'", mode);
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace

Fans compute_fans(const Shape& shape) {
  ANVIL_CHECK(shape.rank() >= 1, "fans are undefined for a 0-d shape");
  if (shape.rank() == 1) return {static_cast<double>(shape[0]), static_cast<double>(shape[0])};
  double receptive = 1;
  for (std::size_t i = 2; i < shape.rank(); ++i) receptive *= static_cast<double>(shape.dims()[i]);
  return {static_cast<double>(shape[1]) * receptive, static_cast<double>(shape[0]) * receptive};
}

double calculate_gain(const std::string& nonlinearity, double negative_slope) {
  const std::string n = lower(nonlinearity);
  if (n == "linear" || n == "sigmoid" || n == "identity" || n.rfind("conv", 0) == 0) return 1.0;
  if (n == "tanh") return 5.0 / 3.0;
  if (n == "relu") return std::sqrt(2.0);
  if (n == "leaky_relu") return std::sqrt(2.0 / (1.0 + negative_slope * negative_slope));
  ANVIL_THROW("unsupported nonlinearity '{}'", nonlinearity);
}

void Constant::fill(Tensor& t, Generator&) const { fill_with(t, [&] { return value_; }); }

Uniform::Uniform(double scale) : scale_(scale) { ANVIL_CHECK(scale >= 0, "scale must be >= 0, got {}", scale); }
void Uniform::fill(Tensor& t, Generator& g) const { fill_with(t, [&] { return g.uniform(-scale_, scale_); }); }

Normal::Normal(double sigma, double mean) : sigma_(sigma), mean_(mean) {
  ANVIL_CHECK(sigma > 0, "sigma must be > 0, got {}", sigma);
}
void Normal::fill(Tensor& t, Generator& g) const { fill_with(t, [&] { return g.normal(mean_, sigma_); }); }

TruncatedNormal::TruncatedNormal(double sigma, double mean) : sigma_(sigma), mean_(mean) {
  ANVIL_CHECK(sigma > 0, "sigma must be > 0, got {}", sigma);
}
void TruncatedNormal::fill(Tensor& t, Generator& g) const {
  fill_with(t, [&] {
    double x = g.normal(mean_, sigma_);
    while (std::abs(x - mean_) >= 2 * sigma_) x = g.normal(mean_, sigma_);
    return x;
  });
}

void XavierUniform::fill(Tensor& t, Generator& g) const {
  Fans f = compute_fans(t.shape());
  const double bound = gain_ * std::sqrt(6.0 / (f.fan_in + f.fan_out));
  fill_with(t, [&] { return g.uniform(-bound, bound); });
}

void XavierNormal::fill(Tensor& t, Generator& g) const {
  Fans f = compute_fans(t.shape());
  const double std = gain_ * std::sqrt(2.0 / (f.fan_in + f.fan_out));
  fill_with(t, [&] { return g.normal(0.0, std); });
}

HeUniform::HeUniform(double negative_slope, std::string mode, std::string nonlinearity)
    : slope_(negative_slope), mode_(std::move(mode)), nonlinearity_(std::move(nonlinearity)) {}
void HeUniform::fill(Tensor& t, Generator& g) const {
  const double std = calculate_gain(nonlinearity_, slope_) / std::sqrt(select_fan(t.shape(), mode_));
  const double bound = std::sqrt(3.0) * std;
  fill_with(t, [&] { return g.uniform(-bound, bound); });
}

HeNormal::HeNormal(double negative_slope, std::string mode, std::string nonlinearity)
    : slope_(negative_slope), mode_(std::move(mode)), nonlinearity_(std::move(nonlinearity)) {}
void HeNormal::fill(Tensor& t, Generator& g) const {
  const double std = calculate_gain(nonlinearity_, slope_) / std::sqrt(select_fan(t.shape(), mode_));
  fill_with(t, [&] { return g.normal(0.0, std); });
}

std::shared_ptr<Initializer> make_initializer(const std::string& name) {
  const std::string n = lower(name);
  if (n == "zeros" || n == "zero") return std::make_shared<Constant>(0.0);
  if (n == "ones" || n == "one") return std::make_shared<Constant>(1.0);
  if (n == "uniform") return std::make_shared<Uniform>();
  if (n == "normal") return std::make_shared<Normal>();
  if (n == "truncated_normal" || n == "truncatednormal") return std::make_shared<TruncatedNormal>();
  if (n == "xavier_uniform" || n == "xavieruniform" || n == "glorot_uniform") return std::make_shared<XavierUniform>();
  if (n == "xavier_normal" || n == "xaviernormal" || n == "glorot_normal") return std::make_shared<XavierNormal>();
  if (n == "he_uniform" || n == "heuniform" || n == "kaiming_uniform") return std::make_shared<HeUniform>();
  if (n == "he_normal" || n == "henormal" || n == "kaiming_normal") return std::make_shared<HeNormal>();
  ANVIL_THROW("unknown initializer '{}' (known: zeros, ones, uniform, normal, truncated_normal, xavier_uniform, "
              "xavier_normal, he_uniform, he_normal)", name);
}

Tensor initialized(const Shape& shape, const Initializer& init, Generator& gen, DType dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  init.fill(t, gen);
  return t;
}

}  // namespace anvil::nn
