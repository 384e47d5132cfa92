// The built-in transforms (MindSpore dataset.vision / dataset.transforms counterparts), applied per
// example by the DataLoader (see Transform.h for the randomness and threading contract).
//
// Images are float32 [C, H, W] (the layout the datasets produce for one example) or [H, W]; the
// transforms keep the rank they were given. Values are computed in float32.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/data/Transform.h"

namespace anvil {

/// Pixels added on each side of an image (MindSpore's padding argument): one number for all four
/// sides, two for (left/right, top/bottom), or four for (left, top, right, bottom). All >= 0.
struct Padding {
  std::int64_t left = 0;
  std::int64_t top = 0;
  std::int64_t right = 0;
  std::int64_t bottom = 0;
  Padding() = default;
  explicit Padding(std::int64_t all) : left(all), top(all), right(all), bottom(all) {}
  Padding(std::int64_t left_right, std::int64_t top_bottom)
      : left(left_right), top(top_bottom), right(left_right), bottom(top_bottom) {}
  Padding(std::int64_t l, std::int64_t t, std::int64_t r, std::int64_t b) : left(l), top(t), right(r), bottom(b) {}
  bool operator==(const Padding&) const = default;
};

/// out[c] = (x[c] - mean[c]) / std[c] along the first axis (the channel of [C, H, W]); `mean` and
/// `std` have one value (all channels) or C values. Any data rank >= 1. Deterministic.
/// Errors: constructor: empty or different-length mean/std (a length-1 one is broadcast), a zero or
/// non-finite std; apply: data not float32, or C != mean size (names the shape).
class Normalize final : public Transform {
 public:
  Normalize(std::vector<double> mean, std::vector<double> std);
  void apply(Sample& sample, Generator& gen) const override;
  std::string name() const override;

 private:
  std::vector<double> mean_;
  std::vector<double> std_;
};

/// Pads an image with a constant: [C, H, W] -> [C, top + H + bottom, left + W + right] (MindSpore
/// vision.Pad, padding_mode CONSTANT). Deterministic. Errors: negative padding (constructor); data not
/// float32 rank 2 or 3 (apply, names the shape).
class Pad final : public Transform {
 public:
  explicit Pad(Padding padding, float fill_value = 0.0f);
  void apply(Sample& sample, Generator& gen) const override;
  std::string name() const override;

 private:
  Padding padding_;
  float fill_;
};

/// Pads (optional, as Pad) and then cuts a height x width window at a random position (MindSpore
/// vision.RandomCrop(size, padding, fill_value)): top = gen.randint(H' - height + 1), then
/// left = gen.randint(W' - width + 1), where H', W' are the padded sizes. Draws exactly two numbers.
/// Errors: height or width < 1, negative padding (constructor); a window larger than the padded image
/// or data not float32 rank 2/3 (apply, names the shapes).
class RandomCrop final : public Transform {
 public:
  RandomCrop(std::int64_t height, std::int64_t width, Padding padding = {}, float fill_value = 0.0f);
  void apply(Sample& sample, Generator& gen) const override;
  std::string name() const override;

 private:
  std::int64_t height_, width_;
  Padding padding_;
  float fill_;
};

/// Mirrors an image left-right (reverses W) with probability `prob` (MindSpore
/// vision.RandomHorizontalFlip): flips when gen.uniform() < prob; always draws exactly one number.
/// Errors: prob outside [0, 1] (constructor); data not float32 rank 2/3 (apply).
class RandomHorizontalFlip final : public Transform {
 public:
  explicit RandomHorizontalFlip(double prob = 0.5);
  void apply(Sample& sample, Generator& gen) const override;
  std::string name() const override;

 private:
  double prob_;
};

/// Turns a class-index label (int32/int64 0-d or [1]) into a float32 [num_classes] vector (MindSpore
/// transforms.OneHot(num_classes, smoothing_rate)): (1 - smoothing_rate) * onehot + smoothing_rate /
/// num_classes. The DataLoader then yields float32 [B, num_classes] labels, which the classification
/// metrics accept (nn::SoftmaxCrossEntropyWithLogits takes sparse class indices only: train with a
/// loss that takes dense labels). Deterministic. Errors: num_classes < 1 or smoothing_rate outside [0, 1]
/// (constructor); a label that is not a single integer or is outside [0, num_classes) (apply, names it).
class OneHot final : public Transform {
 public:
  explicit OneHot(std::int64_t num_classes, double smoothing_rate = 0.0);
  void apply(Sample& sample, Generator& gen) const override;
  std::string name() const override;

 private:
  std::int64_t num_classes_;
  double smoothing_;
};

}  // namespace anvil
