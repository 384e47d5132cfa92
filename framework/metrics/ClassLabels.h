// Helpers shared by the classification metrics: reading [N, C] scores and class labels on the host.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/tensor/Tensor.h"

namespace anvil::detail {

/// Scores of a classification batch, row-major [N, C], converted to double.
struct ClassScores {
  std::int64_t n = 0;
  std::int64_t c = 0;
  std::vector<double> values;
};

/// Reads `scores` (float32/float64, shape [N, C] with C >= 1). Throws anvil::Error("<who>: ...")
/// naming the tensor otherwise.
ClassScores read_class_scores(const std::string& who, const Tensor& scores);

/// Class index per sample from `labels`: int32/int64 [N] class indices, or a float32/float64 [N, C]
/// one-hot (or probability) matrix, whose argmax (first maximum) is taken, as MindSpore does.
/// Throws anvil::Error("<who>: ...") for another dtype or shape, a batch size other than n, or an
/// index outside [0, c).
std::vector<std::int64_t> read_class_labels(const std::string& who, const Tensor& labels, std::int64_t n,
                                            std::int64_t c);

}  // namespace anvil::detail
