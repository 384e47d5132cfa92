#include "callbacks/MonitorUtil.h"

#include <cmath>
#include <cstdlib>
#include <set>
#include <vector>

#include <fmt/format.h>

#include "framework/core/Error.h"

namespace anvil::cbutil {

double mean_of(const Tensor& t) {
  if (!t.defined()) return std::nan("");
  if (t.numel() == 1) return t.item();
  const std::vector<double> v = t.to_vector<double>();
  double s = 0.0;
  for (double x : v) s += x;
  return v.empty() ? std::nan("") : s / static_cast<double>(v.size());
}

std::optional<double> train_loss(const RunContext& ctx) {
  const Tensor& t = ctx.original_args().net_outputs;
  if (!t.defined()) return std::nullopt;
  return mean_of(t);
}

std::optional<double> monitored_value(const RunContext& ctx, const std::string& monitor) {
  if (monitor == "loss") return train_loss(ctx);
  const CallbackParams& p = ctx.original_args();
  if (auto it = p.eval_results.find(monitor); it != p.eval_results.end()) return it->second;
  if (auto it = p.metrics.find(monitor); it != p.metrics.end()) return it->second;
  return std::nullopt;
}

bool mode_is_min(const std::string& who, const std::string& mode, const std::string& monitor) {
  if (mode == "min") return true;
  if (mode == "max") return false;
  if (mode != "auto") throw Error(fmt::format("{}: mode must be 'auto', 'min' or 'max', got '{}'", who, mode));
  static const std::set<std::string> kMin = {"loss", "eval_loss", "mae", "mse", "perplexity", "hausdorff_distance",
                                             "mean_surface_distance", "root_mean_square_distance"};
  return kMin.count(monitor) != 0;
}

std::string format_double(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return fmt::format("{}", v);
}

double parse_double(const std::string& who, const std::string& text) {
  if (text == "nan") return std::nan("");
  if (text == "inf") return INFINITY;
  if (text == "-inf") return -INFINITY;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size())
    throw Error(fmt::format("{}: cannot parse '{}' as a number", who, text));
  return v;
}

}  // namespace anvil::cbutil
