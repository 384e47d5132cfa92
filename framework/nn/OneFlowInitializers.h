// OneFlow initializers (specs/oneflow-vardir.md §10): OneFlow's API names and defaults, the formulas of
// its C++ kernels, and the correct fan rules (not OneFlow's misspelt "channel_first" comparison).
//
// Fan rules: shape[0] is the output dimension (dense weights [out, in]). data_format "NC..." is
// channels_first, "N...C" channels_last, "" no format (rank 2 required).
//   fan_in  = prod(shape[1:])
//   fan_out = shape[0]·prod(shape[2:]) (channels_first), shape[0]·prod(shape[1:-1]) (channels_last),
//             shape[0] ("")
//   fan_avg = (fan_in + fan_out) / 2
//
// Every initializer is an nn::Initializer: fill(t, gen) overwrites t drawing from `gen` in row-major
// order (deterministic per seed), and name() is a complete description of the configuration
// (e.g. "random_uniform(minval=0, maxval=1)") that VariableStore compares for equality.
#pragma once

#include <memory>
#include <string>

#include "framework/nn/Initializer.h"

namespace anvil::nn::oneflow {

using InitializerPtr = std::shared_ptr<const Initializer>;

/// Fans of `shape` under `data_format` as above. Throws anvil::Error for a 0-d shape, an unknown
/// data_format, or data_format "" with a rank other than 2.
Fans oneflow_fans(const Shape& shape, const std::string& data_format);
/// The fan that `mode` selects (fan_in / fan_out / fan_avg, case-insensitive); anything else throws
/// "Invalid variance_norm".
double select_oneflow_fan(const Fans& fans, const std::string& mode);

/// Fills with `value`: float32/float64 store it as float, int8/int32/int64 as an int64; any other
/// dtype throws "Do not support such data type".
InitializerPtr constant_initializer(double value = 0.0);
/// constant(0) / constant(1).
InitializerPtr zeros_initializer();
InitializerPtr ones_initializer();
/// Float: U[minval, nextafter(maxval, +inf)) (maxval effectively included); int32/int64: uniform over
/// [minval, maxval] inclusive. Requires minval <= maxval.
InitializerPtr random_uniform_initializer(double minval = 0.0, double maxval = 1.0);
/// N(mean, stddev); requires stddev > 0.
InitializerPtr random_normal_initializer(double mean = 0.0, double stddev = 1.0);
/// N(mean, stddev) redrawing any sample with |x − mean| >= 2·stddev (kept std ≈ 0.8796·stddev).
InitializerPtr truncated_normal_initializer(double mean = 0.0, double stddev = 1.0);
/// s = scale / fan(mode). distribution "truncated_normal": std = sqrt(s)/0.87962566103423978 truncated
/// at ±2·std; "random_normal": N(0, sqrt(s)); "random_uniform": U(±sqrt(3s)). Validates mode and
/// distribution at construction.
InitializerPtr variance_scaling_initializer(double scale = 1.0, const std::string& mode = "fan_in",
                                            const std::string& distribution = "truncated_normal",
                                            const std::string& data_format = "");
/// variance_scaling(1, fan_avg, random_uniform): U(±sqrt(6/(fan_in+fan_out))). xavier_* are aliases.
InitializerPtr glorot_uniform_initializer(const std::string& data_format = "");
/// N(0, sqrt(2/(fan_in+fan_out))), not truncated.
InitializerPtr glorot_normal_initializer(const std::string& data_format = "");
InitializerPtr xavier_uniform_initializer(const std::string& data_format = "");
InitializerPtr xavier_normal_initializer(const std::string& data_format = "");
/// std = gain/sqrt(fan(mode)); "random_normal": N(0, std); "random_uniform": U(±sqrt(3)·std). Gain: none/
/// sigmoid 1, tanh 5/3, relu sqrt(2), leaky_relu sqrt(2/(1+slope²)). Rank 2: fan_in = shape[1], fan_out =
/// shape[0]. Requires rank >= 2, elements > 0, data_format NCHW or NHWC.
InitializerPtr kaiming_initializer(const std::string& distribution = "random_normal", const std::string& mode = "fan_in",
                                   const std::string& nonlinearity = "leaky_relu", double negative_slope = 0.0,
                                   const std::string& data_format = "NCHW");

}  // namespace anvil::nn::oneflow
