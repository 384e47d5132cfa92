// Helpers shared by the monitoring callbacks (EarlyStopping, ReduceLROnPlateau, History, CSVLogger,
// TerminateOnNaN): reading a monitored value from the loop and resolving "auto" modes (spec §2).
#pragma once

#include <optional>
#include <string>

#include "framework/train/RunContext.h"

namespace anvil::cbutil {

/// Mean of every element of `t` as a double (NaN when `t` is undefined or empty).
double mean_of(const Tensor& t);

/// The step's loss: mean of original_args().net_outputs; nullopt when net_outputs is undefined.
std::optional<double> train_loss(const RunContext& ctx);

/// The value of `monitor` at a train epoch end: "loss" = the last train output (train_loss); any other
/// name from original_args().eval_results, then original_args().metrics. nullopt when absent.
std::optional<double> monitored_value(const RunContext& ctx, const std::string& monitor);

/// Resolves mode "min" | "max" | "auto" for `monitor`: true when smaller is better. "auto" means min for
/// loss, eval_loss, mae, mse, perplexity, hausdorff_distance, mean_surface_distance,
/// root_mean_square_distance, and max otherwise. Errors: anvil::Error naming `who` and the mode for any
/// other string.
bool mode_is_min(const std::string& who, const std::string& mode, const std::string& monitor);

/// A double as shortest round-trip text ("inf", "-inf", "nan" for non-finite values).
std::string format_double(double v);
/// Parses format_double's output. Errors: anvil::Error naming `who` when `text` is not a number.
double parse_double(const std::string& who, const std::string& text);

}  // namespace anvil::cbutil
