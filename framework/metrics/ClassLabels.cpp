#include "framework/metrics/ClassLabels.h"

#include <fmt/format.h>

#include "framework/core/Error.h"

namespace anvil::detail {

ClassScores read_class_scores(const std::string& who, const Tensor& scores) {
  if (!scores.defined()) throw Error(fmt::format("{}: the predictions are an undefined tensor", who));
  if (!is_compute_type(scores.dtype()) || scores.rank() != 2 || scores.dim(1) < 1)
    throw Error(fmt::format("{}: predictions must be float32/float64 [N, C] with C >= 1, got {}", who,
                            scores.desc()));
  return ClassScores{scores.dim(0), scores.dim(1), scores.to_vector<double>()};
}

std::vector<std::int64_t> read_class_labels(const std::string& who, const Tensor& labels, std::int64_t n,
                                            std::int64_t c) {
  if (!labels.defined()) throw Error(fmt::format("{}: the labels are an undefined tensor", who));
  std::vector<std::int64_t> out;
  if ((labels.dtype() == DType::kI32 || labels.dtype() == DType::kI64) && labels.rank() == 1) {
    out = labels.to_vector<std::int64_t>();
  } else if (is_compute_type(labels.dtype()) && labels.rank() == 2 && labels.dim(1) == c) {
    const auto v = labels.to_vector<double>();
    out.resize(static_cast<std::size_t>(labels.dim(0)));
    for (std::size_t i = 0; i < out.size(); ++i) {
      std::int64_t best = 0;
      for (std::int64_t j = 1; j < c; ++j)
        if (v[i * static_cast<std::size_t>(c) + static_cast<std::size_t>(j)] >
            v[i * static_cast<std::size_t>(c) + static_cast<std::size_t>(best)])
          best = j;
      out[i] = best;
    }
  } else {
    throw Error(fmt::format("{}: labels must be int32/int64 [N] class indices or a float [N, {}] one-hot matrix, got {}",
                            who, c, labels.desc()));
  }
  if (static_cast<std::int64_t>(out.size()) != n)
    throw Error(fmt::format("{}: {} labels for {} predictions ({})", who, out.size(), n, labels.desc()));
  for (std::size_t i = 0; i < out.size(); ++i)
    if (out[i] < 0 || out[i] >= c)
      throw Error(fmt::format("{}: label {} of sample {} is outside [0, {})", who, out[i], i, c));
  return out;
}

}  // namespace anvil::detail
