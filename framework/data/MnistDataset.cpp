#include "framework/data/MnistDataset.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <utility>

#include "framework/core/Error.h"
#include "framework/data/IdxReader.h"

namespace anvil {
namespace {

constexpr const char* kDefaultDir = "/usr/share/datasets/fashion-mnist";
constexpr const char* kInstallHint =
    "install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or set "
    "ANVIL_FASHION_MNIST_DIR to a folder holding the IDX files";

std::string dims_str(const std::vector<std::int64_t>& dims) {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(dims[i]);
  }
  return s + "]";
}

// `<dir>/<stem>.gz`, else `<dir>/<stem>`; throws naming the folder and both names when neither exists.
std::string find_file(const std::filesystem::path& dir, const std::string& stem) {
  const auto gz = dir / (stem + ".gz");
  if (std::filesystem::exists(gz)) return gz.string();
  const auto raw = dir / stem;
  if (std::filesystem::exists(raw)) return raw.string();
  throw Error(fmt::format("MnistDataset: dataset folder '{}' has neither {}.gz nor {}; {}", dir.string(), stem, stem,
                          kInstallHint));
}

}  // namespace

std::string default_fashion_mnist_dir() {
  if (const char* e = std::getenv("ANVIL_FASHION_MNIST_DIR"); e && *e) return e;
  return kDefaultDir;
}

MnistDataset::MnistDataset(const MnistOptions& options) : options_(options) {
  const MnistOptions& o = options_;
  ANVIL_CHECK(o.split == "train" || o.split == "test", "split must be \"train\" or \"test\", got \"{}\"", o.split);
  ANVIL_CHECK(o.pad_to == 0 || o.pad_to >= kRows, "pad_to must be 0 (no padding) or >= {}, got {}", kRows, o.pad_to);
  ANVIL_CHECK(std::isfinite(o.scale) && std::isfinite(o.mean) && std::isfinite(o.std) && o.std != 0.0,
              "scale, mean and std must be finite and std non-zero, got scale={} mean={} std={}", o.scale, o.mean,
              o.std);
  ANVIL_CHECK(o.limit >= 0, "limit must be >= 0 (0 = all examples), got {}", o.limit);

  const std::filesystem::path dir = o.dir.empty() ? default_fashion_mnist_dir() : o.dir;
  ANVIL_CHECK(std::filesystem::is_directory(dir), "Fashion-MNIST directory '{}' not found; {}", dir.string(),
              kInstallHint);
  const std::string prefix = o.split == "train" ? "train" : "t10k";
  images_path_ = find_file(dir, prefix + "-images-idx3-ubyte");
  labels_path_ = find_file(dir, prefix + "-labels-idx1-ubyte");

  IdxArray images = read_idx(images_path_, {.expected_magic = kIdxMagicImages, .role = "MNIST images (u8, rank 3)"});
  IdxArray labels = read_idx(labels_path_, {.expected_magic = kIdxMagicLabels, .role = "MNIST labels (u8, rank 1)"});
  // The magic fixes the rank, but check the dims explicitly: they are what the rest relies on.
  ANVIL_CHECK(images.dims.size() == 3 && images.dims[1] == kRows && images.dims[2] == kCols,
              "'{}': images must be [N,{},{}], got dims {}", images_path_, kRows, kCols, dims_str(images.dims));
  ANVIL_CHECK(labels.dims.size() == 1, "'{}': labels must be [N], got dims {}", labels_path_, dims_str(labels.dims));
  ANVIL_CHECK(images.dims[0] == labels.dims[0],
              "image/label count mismatch: '{}' holds {} images but '{}' holds {} labels", images_path_,
              images.dims[0], labels_path_, labels.dims[0]);

  std::int64_t n = images.dims[0];
  if (o.limit > 0 && o.limit < n) n = o.limit;
  images_ = std::move(images.bytes);
  labels_ = std::move(labels.bytes);
  images_.resize(static_cast<std::size_t>(n * kRows * kCols));
  images_.shrink_to_fit();
  labels_.resize(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < labels_.size(); ++i)
    ANVIL_CHECK(labels_[i] < kNumClasses, "'{}': label of example {} is {}, expected 0..{}", labels_path_, i,
                labels_[i], kNumClasses - 1);

  side_ = o.pad_to == 0 ? kRows : o.pad_to;
  // Computed in double and rounded once, so that normalized(v) is the formula's value to float precision.
  for (int v = 0; v < 256; ++v)
    lut_[static_cast<std::size_t>(v)] = static_cast<float>((static_cast<double>(v) * o.scale - o.mean) / o.std);
}

std::int64_t MnistDataset::size() const { return static_cast<std::int64_t>(labels_.size()); }

std::int32_t MnistDataset::label(std::int64_t i) const {
  ANVIL_CHECK(i >= 0 && i < size(), "index {} is out of range for a dataset of {} examples", i, size());
  return labels_[static_cast<std::size_t>(i)];
}

Batch MnistDataset::get_batch(std::span<const std::int64_t> indices) const {
  const std::int64_t n = size();
  ANVIL_CHECK(!indices.empty(), "indices must not be empty (dataset of {} examples)", n);
  for (std::int64_t i : indices)
    ANVIL_CHECK(i >= 0 && i < n, "index {} is out of range for a dataset of {} examples", i, n);

  const auto b = static_cast<std::int64_t>(indices.size());
  const std::int64_t s = side_;
  Batch batch{Tensor::empty(Shape{b, 1, s, s}, DType::kF32), Tensor::empty(Shape{b}, DType::kI32)};
  float* out = batch.data.data<float>();                   // [B, 1, H', W']
  std::int32_t* out_label = batch.label.data<std::int32_t>();  // [B]

  const std::int64_t before = (s - kRows) / 2;  // padding rows/cols before the image
  const std::size_t plane = static_cast<std::size_t>(s * s);
  const float* lut = lut_.data();
  for (std::size_t k = 0; k < indices.size(); ++k) {
    const auto i = static_cast<std::size_t>(indices[k]);
    const std::uint8_t* src = images_.data() + i * kRows * kCols;  // [28, 28]
    float* dst = out + k * plane;                                   // [H', W']
    if (s != kRows) std::fill(dst, dst + plane, lut[0]);
    for (std::int64_t r = 0; r < kRows; ++r) {
      float* row = dst + (r + before) * s + before;
      const std::uint8_t* in = src + r * kCols;
      for (std::int64_t c = 0; c < kCols; ++c) row[c] = lut[in[c]];
    }
    out_label[k] = labels_[i];
  }
  return batch;
}

std::shared_ptr<MnistDataset> load_fashion_mnist(const MnistOptions& options) {
  return std::make_shared<MnistDataset>(options);
}

}  // namespace anvil
