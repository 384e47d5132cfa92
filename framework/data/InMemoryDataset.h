// InMemoryDataset: a Dataset over tensors already in host memory (synthetic data, tests, small sets).
#pragma once

#include <cstdint>
#include <span>

#include "framework/data/Dataset.h"
#include "framework/tensor/Tensor.h"

namespace anvil {

/// Example i is row i of `data` (float32 [N, ...]) with class label `labels[i]` (int32 [N]).
///
/// The dataset keeps handles to the given tensors (no copy); the caller must not modify their
/// contents while the dataset is in use (get_batch may run on a DataLoader's worker thread).
class InMemoryDataset final : public Dataset {
 public:
  /// Preconditions: `data` is a defined float32 tensor of rank >= 1 ([N, ...]); `labels` is a defined
  ///   int32 tensor of rank 1 ([N]) with the same N.
  /// Errors: anvil::Error naming the offending tensor (its dtype and shape) when a precondition fails;
  ///   for a count mismatch the message names both counts ("data has 100 examples but labels has 99").
  InMemoryDataset(Tensor data, Tensor labels);

  /// N.
  std::int64_t size() const override;

  /// data float32 [B, ...] (rows of `data` in the order of `indices`), label int32 [B].
  /// Errors: anvil::Error when `indices` is empty or an index is outside [0, N) (names index and N).
  Batch get_batch(std::span<const std::int64_t> indices) const override;

  /// The tensors given at construction.
  const Tensor& data() const { return data_; }
  const Tensor& labels() const { return labels_; }

 private:
  Tensor data_;    // float32 [N, ...]
  Tensor labels_;  // int32 [N]
};

}  // namespace anvil
