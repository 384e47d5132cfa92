// Transform: a per-example data augmentation / preprocessing step applied by the DataLoader when it
// produces batches (MindSpore dataset.transforms / vision), and Compose, which chains transforms.
//
//   auto t = std::make_shared<Compose>(std::vector<std::shared_ptr<const Transform>>{
//       std::make_shared<RandomCrop>(28, 28, Padding{4}), std::make_shared<RandomHorizontalFlip>(0.5),
//       std::make_shared<Normalize>(std::vector<double>{0.5}, std::vector<double>{0.5})});
//   DataLoader loader(dataset, {.batch_size = 64, .seed = 1, .transform = t, .num_workers = 2});
//
// Randomness: every example is transformed with its own Generator, seeded from (loader seed, epoch,
// example index) by sample_generator(). The augmented value of an example therefore depends only on
// those three numbers: not on the batch it lands in, the number of workers, the order workers run in, or
// whether the run was interrupted and resumed (DataPosition holds seed and epoch). Compose hands the same
// Generator to its transforms in order, so each draws after the previous ones.
//
// Thread safety: apply() is const and is called concurrently from the loader's worker threads on
// different samples; implementations must not mutate shared state (all transforms here are immutable).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "framework/core/Random.h"
#include "framework/data/Batch.h"
#include "framework/tensor/Tensor.h"

namespace anvil {

/// One example: data float32 [...] (images [C, H, W]) and its label (int32 0-d class index as the
/// datasets produce it, or whatever a label transform such as OneHot made of it).
struct Sample {
  Tensor data;
  Tensor label;
};

class Transform {
 public:
  virtual ~Transform() = default;
  /// Transforms `sample` in place (it may replace the tensors, e.g. with another shape). Draws any
  /// randomness from `gen` only. Errors: anvil::Error naming the transform and the offending shape/value.
  virtual void apply(Sample& sample, Generator& gen) const = 0;
  /// Short description, e.g. "RandomCrop(size=[28,28], padding=[4,4,4,4])".
  virtual std::string name() const = 0;

 protected:
  Transform() = default;
  Transform(const Transform&) = default;
  Transform& operator=(const Transform&) = default;
};

/// Applies its transforms in order (MindSpore transforms.Compose).
class Compose final : public Transform {
 public:
  /// Errors: anvil::Error when an element is null (names its position).
  explicit Compose(std::vector<std::shared_ptr<const Transform>> transforms);
  void apply(Sample& sample, Generator& gen) const override;
  /// "Compose(A, B, ...)".
  std::string name() const override;
  const std::vector<std::shared_ptr<const Transform>>& transforms() const { return transforms_; }

 private:
  std::vector<std::shared_ptr<const Transform>> transforms_;
};

/// The Generator example `example` of `epoch` is transformed with under loader seed `seed`: seeded by a
/// bijective 64-bit mix of the three numbers (a stream independent of the shuffle's). Pure.
Generator sample_generator(std::uint64_t seed, std::int64_t epoch, std::int64_t example);

/// Applies `transform` to every example of `batch` and stacks the results: example k (dataset index
/// indices[k]) is row k of batch.data / batch.label, transformed with sample_generator(seed, epoch,
/// indices[k]). The result has data [B, ...] and label [B, ...] of the transformed shapes and dtypes.
/// Errors: anvil::Error when indices.size() differs from the batch size, or when the transformed
/// examples disagree in shape or dtype (names both examples' shapes); errors of the transform propagate.
Batch transform_batch(const Transform& transform, const Batch& batch, std::span<const std::int64_t> indices,
                      std::uint64_t seed, std::int64_t epoch);

}  // namespace anvil
