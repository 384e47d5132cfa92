// MnistDataset: MNIST-format image classification data (Fashion-MNIST by default) read from IDX files.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "framework/data/Dataset.h"

namespace anvil {

/// Where Fashion-MNIST lives when MnistOptions::dir is empty: $ANVIL_FASHION_MNIST_DIR when set and
/// non-empty, else /usr/share/datasets/fashion-mnist (Debian package dataset-fashion-mnist).
/// Reads the environment at each call. Never throws.
std::string default_fashion_mnist_dir();

/// How to load and preprocess an MNIST-format split. Use with designated initializers:
///   MnistDataset(MnistOptions{.split = "test", .pad_to = 32})
struct MnistOptions {
  /// Folder with the four IDX files; empty = default_fashion_mnist_dir().
  std::string dir{};
  /// "train" (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz]) or
  /// "test"  (t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]). The .gz name wins when both exist.
  std::string split = "train";
  /// 0 (or 28) = no padding; otherwise the output side H' = W' = pad_to >= 28: the 28x28 image is placed
  /// in the centre ((pad_to-28)/2 pixels before, the rest after) and the border holds the normalized value
  /// of a black pixel, i.e. zero padding before normalization (32 as in MindSpore's LeNet pipeline).
  std::int64_t pad_to = 0;
  /// normalized = (x * scale - mean) / std, x the raw byte in [0, 255].
  /// Defaults are MindSpore's LeNet pipeline; {.mean = 0, .std = 1} gives inputs in [0, 1].
  /// Computed in double and rounded to float once per byte value (a 256-entry table).
  double scale = 1.0 / 255.0;
  double mean = 0.1307;
  double std = 0.3081;
  /// Use only the first `limit` examples (0 = all; a limit above the split's size uses all).
  std::int64_t limit = 0;
};

/// One split of an MNIST-format dataset, held in memory as raw bytes (u8 images [N,28,28], labels [N]
/// in 0..9) and converted on the fly by get_batch. Immutable after construction; thread-safe reads.
class MnistDataset final : public Dataset {
 public:
  static constexpr std::int64_t kRows = 28;
  static constexpr std::int64_t kCols = 28;
  static constexpr std::int64_t kNumClasses = 10;

  /// Reads and validates the split's two IDX files (see read_idx).
  /// Errors (anvil::Error):
  ///   - invalid options: split not "train"/"test", pad_to in 1..27, std == 0, a non-finite
  ///     scale/mean/std, limit < 0 (names the option and value);
  ///   - the dataset folder does not exist, or lacks a file under both names: the message names the folder
  ///     and file and says to install the Debian package dataset-fashion-mnist or set ANVIL_FASHION_MNIST_DIR;
  ///   - any read_idx error (names the file), including a wrong magic number ("expected 2051 ... images" /
  ///     "expected 2049 ... labels");
  ///   - images not rank 3 [N,28,28] (names the file and its dims), labels not rank 1;
  ///   - image and label counts differ (names both files and both counts);
  ///   - a label > 9 (names the file, the example index and the value).
  explicit MnistDataset(const MnistOptions& options = {});

  /// Number of examples (after `limit`).
  std::int64_t size() const override;

  /// data float32 [B, 1, H', W'] (H' = W' = pad_to, or 28 without padding), normalized as in
  /// MnistOptions; label int32 [B]. Errors: anvil::Error for empty `indices` or an index outside [0, size()).
  Batch get_batch(std::span<const std::int64_t> indices) const override;

  /// Output side H' = W' of get_batch's images (28 or pad_to).
  std::int64_t image_size() const { return side_; }
  /// Label of example i (0..9). Errors: anvil::Error when i is outside [0, size()).
  std::int32_t label(std::int64_t i) const;
  /// Raw bytes: images [N, 28, 28] row-major, labels [N].
  std::span<const std::uint8_t> raw_images() const { return images_; }
  std::span<const std::uint8_t> raw_labels() const { return labels_; }
  /// The float a raw pixel byte becomes: (v * scale - mean) / std. The padding value is normalized(0).
  float normalized(std::uint8_t v) const { return lut_[v]; }
  /// The files that were read.
  const std::string& images_path() const { return images_path_; }
  const std::string& labels_path() const { return labels_path_; }
  const MnistOptions& options() const { return options_; }

 private:
  MnistOptions options_;
  std::string images_path_;
  std::string labels_path_;
  std::vector<std::uint8_t> images_;  // [N, 28, 28]
  std::vector<std::uint8_t> labels_;  // [N]
  std::int64_t side_ = kRows;         // H' = W'
  std::array<float, 256> lut_{};      // byte -> normalized float
};

/// Loads one split of Fashion-MNIST (or any MNIST-format folder given in options.dir).
/// Same effects and errors as the MnistDataset constructor.
std::shared_ptr<MnistDataset> load_fashion_mnist(const MnistOptions& options = {});

}  // namespace anvil
