// OneFlow initializers: see OneFlowInitializers.h and specs/oneflow-vardir.md §10.
#include "framework/nn/OneFlowInitializers.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>
#include <limits>

namespace anvil::nn::oneflow {
namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Writes f() (a double) into every element of a float tensor.
void fill_float(Tensor& t, const std::function<double()>& f, const char* who) {
  const std::int64_t n = t.numel();
  if (t.dtype() == DType::kF32) {
    float* p = t.data<float>();
    for (std::int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(f());
  } else if (t.dtype() == DType::kF64) {
    double* p = t.data<double>();
    for (std::int64_t i = 0; i < n; ++i) p[i] = f();
  } else {
    ANVIL_THROW("{}: Do not support such data type ({}); expected float32 or float64", who, dtype_name(t.dtype()));
  }
}

class Fn : public Initializer {
 public:
  Fn(std::string name, std::function<void(Tensor&, Generator&)> f) : name_(std::move(name)), f_(std::move(f)) {}
  void fill(Tensor& t, Generator& g) const override { f_(t, g); }
  std::string name() const override { return name_; }

 private:
  std::string name_;
  std::function<void(Tensor&, Generator&)> f_;
};

double truncated(Generator& g, double mean, double std) {
  while (true) {
    double x = g.normal(mean, std);
    if (std::abs(x - mean) < 2.0 * std) return x;
  }
}

enum class Dist { kTruncated, kNormal, kUniform };
Dist parse_dist(const std::string& d) {
  std::string l = lower(d);
  if (l == "truncated_normal") return Dist::kTruncated;
  if (l == "random_normal" || l == "normal") return Dist::kNormal;
  if (l == "random_uniform" || l == "uniform") return Dist::kUniform;
  ANVIL_THROW("Invalid distribution '{}' (expected truncated_normal, random_normal or random_uniform)", d);
}

}  // namespace

Fans oneflow_fans(const Shape& shape, const std::string& data_format) {
  const std::size_t r = shape.rank();
  ANVIL_CHECK(r >= 1, "fans of a 0-d shape are undefined");
  double fan_in = 1;
  for (std::size_t i = 1; i < r; ++i) fan_in *= static_cast<double>(shape[i]);
  double fan_out = static_cast<double>(shape[0]);
  if (data_format.empty()) {
    ANVIL_CHECK(r == 2, "data_format \"\" requires a rank-2 shape, got {}", shape.str());
  } else if (data_format.size() >= 2 && data_format[0] == 'N' && data_format[1] == 'C') {
    for (std::size_t i = 2; i < r; ++i) fan_out *= static_cast<double>(shape[i]);
  } else if (data_format.size() >= 2 && data_format.front() == 'N' && data_format.back() == 'C') {
    for (std::size_t i = 1; i + 1 < r; ++i) fan_out *= static_cast<double>(shape[i]);
  } else {
    ANVIL_THROW("unknown data_format '{}' (expected \"\", \"NC...\" or \"N...C\")", data_format);
  }
  return Fans{fan_in, fan_out};
}

double select_oneflow_fan(const Fans& fans, const std::string& mode) {
  std::string m = lower(mode);
  if (m == "fan_in") return fans.fan_in;
  if (m == "fan_out") return fans.fan_out;
  if (m == "fan_avg") return (fans.fan_in + fans.fan_out) / 2.0;
  ANVIL_THROW("Invalid variance_norm '{}' (expected fan_in, fan_out or fan_avg)", mode);
}

InitializerPtr constant_initializer(double value) {
  return std::make_shared<Fn>(fmt::format("constant(value={})", value), [value](Tensor& t, Generator&) {
    const std::int64_t n = t.numel();
    switch (t.dtype()) {
      case DType::kF32: std::fill_n(t.data<float>(), n, static_cast<float>(value)); break;
      case DType::kF64: std::fill_n(t.data<double>(), n, static_cast<double>(static_cast<float>(value))); break;
      case DType::kI8: std::fill_n(static_cast<std::int8_t*>(t.data_ptr()), n, static_cast<std::int8_t>(static_cast<std::int64_t>(value))); break;
      case DType::kI32: std::fill_n(t.data<std::int32_t>(), n, static_cast<std::int32_t>(static_cast<std::int64_t>(value))); break;
      case DType::kI64: std::fill_n(t.data<std::int64_t>(), n, static_cast<std::int64_t>(value)); break;
      default: ANVIL_THROW("constant initializer: Do not support such data type ({})", dtype_name(t.dtype()));
    }
  });
}
InitializerPtr zeros_initializer() { return constant_initializer(0.0); }
InitializerPtr ones_initializer() { return constant_initializer(1.0); }

InitializerPtr random_uniform_initializer(double minval, double maxval) {
  ANVIL_CHECK(minval <= maxval, "random_uniform: minval {} > maxval {}", minval, maxval);
  return std::make_shared<Fn>(fmt::format("random_uniform(minval={}, maxval={})", minval, maxval), [=](Tensor& t, Generator& g) {
    const std::int64_t n = t.numel();
    if (t.dtype() == DType::kI32 || t.dtype() == DType::kI64) {
      const auto lo = static_cast<std::int64_t>(std::ceil(minval)), hi = static_cast<std::int64_t>(std::floor(maxval));
      ANVIL_CHECK(lo <= hi, "random_uniform: no integer in [{}, {}]", minval, maxval);
      const auto span = static_cast<std::uint64_t>(hi - lo) + 1;
      for (std::int64_t i = 0; i < n; ++i) {
        std::int64_t v = lo + static_cast<std::int64_t>(span == 0 ? g.next_u64() : g.randint(span));
        if (t.dtype() == DType::kI32) t.data<std::int32_t>()[i] = static_cast<std::int32_t>(v);
        else t.data<std::int64_t>()[i] = v;
      }
      return;
    }
    if (t.dtype() == DType::kF32) {
      const float lo = static_cast<float>(minval), hi = static_cast<float>(maxval);
      const double top = std::nextafter(hi, std::numeric_limits<float>::infinity());
      float* p = t.data<float>();
      for (std::int64_t i = 0; i < n; ++i) p[i] = std::min(static_cast<float>(lo + (top - lo) * g.uniform()), hi);
      return;
    }
    const double top = std::nextafter(maxval, std::numeric_limits<double>::infinity());
    fill_float(t, [&] { return std::min(minval + (top - minval) * g.uniform(), maxval); }, "random_uniform");
  });
}

InitializerPtr random_normal_initializer(double mean, double stddev) {
  ANVIL_CHECK(stddev > 0, "random_normal: stddev must be > 0, got {}", stddev);
  return std::make_shared<Fn>(fmt::format("random_normal(mean={}, stddev={})", mean, stddev), [=](Tensor& t, Generator& g) {
    fill_float(t, [&] { return g.normal(mean, stddev); }, "random_normal");
  });
}

InitializerPtr truncated_normal_initializer(double mean, double stddev) {
  ANVIL_CHECK(stddev > 0, "truncated_normal: stddev must be > 0, got {}", stddev);
  return std::make_shared<Fn>(fmt::format("truncated_normal(mean={}, stddev={})", mean, stddev),
                              [=](Tensor& t, Generator& g) {
                                fill_float(t, [&] { return truncated(g, mean, stddev); }, "truncated_normal");
                              });
}

InitializerPtr variance_scaling_initializer(double scale, const std::string& mode, const std::string& distribution,
                                            const std::string& data_format) {
  select_oneflow_fan(Fans{1, 1}, mode);  // validates mode
  Dist dist = parse_dist(distribution);
  ANVIL_CHECK(scale > 0, "variance_scaling: scale must be > 0, got {}", scale);
  std::string m = lower(mode);
  return std::make_shared<Fn>(
      fmt::format("variance_scaling(scale={}, mode={}, distribution={}, data_format={})", scale, m, static_cast<int>(dist),
                  data_format),
      [=](Tensor& t, Generator& g) {
        const double s = scale / select_oneflow_fan(oneflow_fans(t.shape(), data_format), m);
        if (dist == Dist::kTruncated) {
          const double std = std::sqrt(s) / 0.87962566103423978;
          fill_float(t, [&] { return truncated(g, 0.0, std); }, "variance_scaling");
        } else if (dist == Dist::kNormal) {
          const double std = std::sqrt(s);
          fill_float(t, [&] { return g.normal(0.0, std); }, "variance_scaling");
        } else {
          const double b = std::sqrt(3.0 * s);
          fill_float(t, [&] { return g.uniform(-b, b); }, "variance_scaling");
        }
      });
}

InitializerPtr glorot_uniform_initializer(const std::string& df) {
  return variance_scaling_initializer(1.0, "fan_avg", "random_uniform", df);
}
InitializerPtr glorot_normal_initializer(const std::string& df) {
  return variance_scaling_initializer(1.0, "fan_avg", "random_normal", df);
}
InitializerPtr xavier_uniform_initializer(const std::string& df) { return glorot_uniform_initializer(df); }
InitializerPtr xavier_normal_initializer(const std::string& df) { return glorot_normal_initializer(df); }

InitializerPtr kaiming_initializer(const std::string& distribution, const std::string& mode,
                                   const std::string& nonlinearity, double negative_slope,
                                   const std::string& data_format) {
  Dist dist = parse_dist(distribution);
  ANVIL_CHECK(dist != Dist::kTruncated, "kaiming: distribution must be random_normal or random_uniform, got '{}'",
              distribution);
  ANVIL_CHECK(data_format == "NCHW" || data_format == "NHWC", "kaiming: data_format must be NCHW or NHWC, got '{}'",
              data_format);
  select_oneflow_fan(Fans{1, 1}, mode);
  std::string nl = lower(nonlinearity);
  double gain;
  if (nl.empty() || nl == "none" || nl == "sigmoid" || nl == "linear") gain = 1.0;
  else if (nl == "tanh") gain = 5.0 / 3.0;
  else if (nl == "relu") gain = std::sqrt(2.0);
  else if (nl == "leaky_relu") gain = std::sqrt(2.0 / (1.0 + negative_slope * negative_slope));
  else ANVIL_THROW("kaiming: unsupported nonlinearity '{}'", nonlinearity);
  std::string m = lower(mode);
  return std::make_shared<Fn>(
      fmt::format("kaiming(distribution={}, mode={}, gain={}, data_format={})", static_cast<int>(dist), m, gain,
                  data_format),
      [=](Tensor& t, Generator& g) {
        const Shape& s = t.shape();
        ANVIL_CHECK(s.rank() >= 2, "kaiming: requires rank >= 2, got {}", s.str());
        ANVIL_CHECK(t.numel() > 0, "kaiming: requires elements, got {}", s.str());
        Fans f = s.rank() == 2 ? Fans{static_cast<double>(s[1]), static_cast<double>(s[0])}
                               : oneflow_fans(s, data_format);
        const double std = gain / std::sqrt(select_oneflow_fan(f, m));
        if (dist == Dist::kNormal) {
          fill_float(t, [&] { return g.normal(0.0, std); }, "kaiming");
        } else {
          const double b = std::sqrt(3.0) * std;
          fill_float(t, [&] { return g.uniform(-b, b); }, "kaiming");
        }
      });
}

}  // namespace anvil::nn::oneflow
