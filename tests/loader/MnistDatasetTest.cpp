#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "framework/core/Error.h"
#include "framework/data/IdxReader.h"
#include "framework/data/MnistDataset.h"
#include "tests/loader/IdxTestFiles.h"
#include "tests/testutil/TempDir.h"
#include "tests/testutil/Errors.h"

using namespace anvil;
using anvil::testutil::error_of;
using anvil::testutil::has;
using namespace anvil::loadertest;
using testutil::TempDir;

namespace {

// The documented formula, independently of the dataset's lookup table.
float norm(int v, double mean = 0.1307, double sd = 0.3081) { return static_cast<float>((v / 255.0 - mean) / sd); }

const char* kRealDir = "/usr/share/datasets/fashion-mnist";

// Sets an environment variable for the scope of the object and restores the previous value.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) setenv(name_, old_->c_str(), 1);
    else unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

}  // namespace

TEST(MnistDataset, ReadsSyntheticSplitsGzAndRaw) {
  TempDir tmp;
  write_mnist_split(tmp.path().string(), "train", 12, 12, true);
  write_mnist_split(tmp.path().string(), "t10k", 5, 5, false);  // names without .gz
  MnistDataset train(MnistOptions{.dir = tmp.path().string()});
  MnistDataset test(MnistOptions{.dir = tmp.path().string(), .split = "test"});
  EXPECT_EQ(train.size(), 12);
  EXPECT_EQ(test.size(), 5);
  EXPECT_EQ(train.images_path(), tmp.file("train-images-idx3-ubyte.gz"));
  EXPECT_EQ(test.labels_path(), tmp.file("t10k-labels-idx1-ubyte"));
  EXPECT_EQ(train.image_size(), 28);

  const std::vector<std::int64_t> idx{11, 0, 3};
  const Batch b = train.get_batch(idx);
  EXPECT_EQ(b.data.shape(), (Shape{3, 1, 28, 28}));
  EXPECT_EQ(b.data.dtype(), DType::kF32);
  EXPECT_EQ(b.label.shape(), (Shape{3}));
  EXPECT_EQ(b.label.dtype(), DType::kI32);
  EXPECT_EQ(b.label.to_vector<int>(), (std::vector<int>{1, 0, 3}));
  const auto pixels = synthetic_images(12);
  const float* d = b.data.data<float>();
  for (std::size_t k = 0; k < idx.size(); ++k)
    for (int p = 0; p < 784; ++p)
      ASSERT_FLOAT_EQ(d[k * 784 + p], norm(pixels[static_cast<std::size_t>(idx[k]) * 784 + p])) << k << " " << p;
}

TEST(MnistDataset, ScaleMeanStdAndLimit) {
  TempDir tmp;
  write_mnist_split(tmp.path().string(), "train", 20, 20, true);
  MnistDataset ds(MnistOptions{.dir = tmp.path().string(), .mean = 0.0, .std = 1.0, .limit = 7});
  EXPECT_EQ(ds.size(), 7);
  EXPECT_EQ(ds.raw_images().size(), 7u * 784u);
  EXPECT_FLOAT_EQ(ds.normalized(0), 0.0f);
  EXPECT_FLOAT_EQ(ds.normalized(255), 1.0f);
  const std::int64_t i = 6;
  const Batch b = ds.get_batch(std::span(&i, 1));
  EXPECT_FLOAT_EQ(b.data.data<float>()[5], static_cast<float>((6 * 7 + 5) / 255.0));
  EXPECT_EQ(ds.label(6), 6);
  EXPECT_THROW(ds.label(7), Error);
  // A limit above the size uses everything.
  EXPECT_EQ(MnistDataset(MnistOptions{.dir = tmp.path().string(), .limit = 1000}).size(), 20);
}

TEST(MnistDataset, PadTo32PutsNormalizedBlackAtBorder) {
  TempDir tmp;
  write_mnist_split(tmp.path().string(), "train", 3, 3, true);
  MnistDataset ds(MnistOptions{.dir = tmp.path().string(), .pad_to = 32});
  EXPECT_EQ(ds.image_size(), 32);
  const std::vector<std::int64_t> idx{2};
  const Batch b = ds.get_batch(idx);
  ASSERT_EQ(b.data.shape(), (Shape{1, 1, 32, 32}));
  const float* d = b.data.data<float>();
  const float black = norm(0);
  EXPECT_FLOAT_EQ(ds.normalized(0), black);
  const auto pixels = synthetic_images(3);
  for (int r = 0; r < 32; ++r)
    for (int c = 0; c < 32; ++c) {
      const bool border = r < 2 || r >= 30 || c < 2 || c >= 30;
      const float want = border ? black : norm(pixels[2 * 784 + (r - 2) * 28 + (c - 2)]);
      ASSERT_FLOAT_EQ(d[r * 32 + c], want) << r << "," << c;
    }
}

TEST(MnistDataset, MissingDirSaysHowToInstall) {
  TempDir tmp;
  const std::string dir = tmp.file("no-such-dir");
  const std::string msg = error_of([&] { MnistDataset(MnistOptions{.dir = dir}); });
  EXPECT_TRUE(has(msg, dir)) << msg;
  EXPECT_TRUE(has(msg, "dataset-fashion-mnist")) << msg;
  EXPECT_TRUE(has(msg, "ANVIL_FASHION_MNIST_DIR")) << msg;
}

TEST(MnistDataset, MissingFileSaysWhich) {
  TempDir tmp;
  write_mnist_split(tmp.path().string(), "train", 3, 3, true);
  std::filesystem::remove(tmp.file("train-labels-idx1-ubyte.gz"));
  const std::string msg = error_of([&] { MnistDataset(MnistOptions{.dir = tmp.path().string()}); });
  EXPECT_TRUE(has(msg, "train-labels-idx1-ubyte.gz")) << msg;
  EXPECT_TRUE(has(msg, "dataset-fashion-mnist")) << msg;
  // The test split is absent altogether.
  const std::string msg2 = error_of([&] { MnistDataset(MnistOptions{.dir = tmp.path().string(), .split = "test"}); });
  EXPECT_TRUE(has(msg2, "t10k-images-idx3-ubyte")) << msg2;
}

TEST(MnistDataset, DefaultDirFromEnvironment) {
  TempDir tmp;
  write_mnist_split(tmp.path().string(), "t10k", 4, 4, true);
  {
    ScopedEnv env("ANVIL_FASHION_MNIST_DIR", tmp.path().string());
    EXPECT_EQ(default_fashion_mnist_dir(), tmp.path().string());
    EXPECT_EQ(load_fashion_mnist({.split = "test"})->size(), 4);
  }
  ScopedEnv env("ANVIL_FASHION_MNIST_DIR", "");
  EXPECT_EQ(default_fashion_mnist_dir(), kRealDir);
}

TEST(MnistDataset, CountMismatchNamesBothFilesAndCounts) {
  TempDir tmp;
  write_mnist_split(tmp.path().string(), "train", 6, 5, true);
  const std::string msg = error_of([&] { MnistDataset(MnistOptions{.dir = tmp.path().string()}); });
  EXPECT_TRUE(has(msg, tmp.file("train-images-idx3-ubyte.gz"))) << msg;
  EXPECT_TRUE(has(msg, tmp.file("train-labels-idx1-ubyte.gz"))) << msg;
  EXPECT_TRUE(has(msg, "6 images")) << msg;
  EXPECT_TRUE(has(msg, "5 labels")) << msg;
}

TEST(MnistDataset, LabelAboveNineIsRejected) {
  TempDir tmp;
  write_mnist_split(tmp.path().string(), "train", 4, 4, true);
  write_file(tmp.file("train-labels-idx1-ubyte.gz"), idx_bytes(2049, {4}, {1, 2, 10, 3}), true);
  const std::string msg = error_of([&] { MnistDataset(MnistOptions{.dir = tmp.path().string()}); });
  EXPECT_TRUE(has(msg, "train-labels-idx1-ubyte.gz")) << msg;
  EXPECT_TRUE(has(msg, "example 2 is 10")) << msg;
}

TEST(MnistDataset, ImagesNot28x28NamesFileAndDims) {
  TempDir tmp;
  write_mnist_split(tmp.path().string(), "train", 2, 2, true);
  write_file(tmp.file("train-images-idx3-ubyte.gz"), idx_bytes(2051, {2, 27, 28}, std::vector<std::uint8_t>(2 * 27 * 28)), true);
  const std::string msg = error_of([&] { MnistDataset(MnistOptions{.dir = tmp.path().string()}); });
  EXPECT_TRUE(has(msg, "train-images-idx3-ubyte.gz")) << msg;
  EXPECT_TRUE(has(msg, "[2,27,28]")) << msg;
}

TEST(MnistDataset, WrongMagicSaysExpected2051Or2049) {
  TempDir tmp;
  write_mnist_split(tmp.path().string(), "train", 2, 2, true);
  const auto labels = idx_bytes(2049, {2}, {0, 1});
  const auto images = idx_bytes(2051, {2, 28, 28}, synthetic_images(2));
  write_file(tmp.file("train-images-idx3-ubyte.gz"), labels, true);  // swapped
  std::string msg = error_of([&] { MnistDataset(MnistOptions{.dir = tmp.path().string()}); });
  EXPECT_TRUE(has(msg, "train-images-idx3-ubyte.gz")) << msg;
  EXPECT_TRUE(has(msg, "expected 2051")) << msg;
  EXPECT_TRUE(has(msg, "images")) << msg;
  write_file(tmp.file("train-images-idx3-ubyte.gz"), images, true);
  write_file(tmp.file("train-labels-idx1-ubyte.gz"), images, true);
  msg = error_of([&] { MnistDataset(MnistOptions{.dir = tmp.path().string()}); });
  EXPECT_TRUE(has(msg, "train-labels-idx1-ubyte.gz")) << msg;
  EXPECT_TRUE(has(msg, "expected 2049")) << msg;
  EXPECT_TRUE(has(msg, "labels")) << msg;
}

TEST(MnistDataset, TruncatedImagesFile) {
  TempDir tmp;
  write_mnist_split(tmp.path().string(), "train", 3, 3, true);
  auto images = idx_bytes(2051, {3, 28, 28}, synthetic_images(3));
  images.resize(images.size() - 100);
  write_file(tmp.file("train-images-idx3-ubyte.gz"), images, true);
  const std::string msg = error_of([&] { MnistDataset(MnistOptions{.dir = tmp.path().string()}); });
  EXPECT_TRUE(has(msg, "train-images-idx3-ubyte.gz")) << msg;
  EXPECT_TRUE(has(msg, "expected 2352 bytes")) << msg;
  EXPECT_TRUE(has(msg, "got 2252")) << msg;
}

TEST(MnistDataset, RejectsBadOptionsAndIndices) {
  TempDir tmp;
  write_mnist_split(tmp.path().string(), "train", 3, 3, true);
  const std::string dir = tmp.path().string();
  EXPECT_TRUE(has(error_of([&] { MnistDataset(MnistOptions{.dir = dir, .split = "val"}); }), "\"val\""));
  EXPECT_TRUE(has(error_of([&] { MnistDataset(MnistOptions{.dir = dir, .pad_to = 20}); }), "pad_to"));
  EXPECT_TRUE(has(error_of([&] { MnistDataset(MnistOptions{.dir = dir, .std = 0.0}); }), "std"));
  EXPECT_TRUE(has(error_of([&] { MnistDataset(MnistOptions{.dir = dir, .limit = -1}); }), "limit"));
  MnistDataset ds(MnistOptions{.dir = dir});
  const std::vector<std::int64_t> bad{0, 3};
  EXPECT_TRUE(has(error_of([&] { ds.get_batch(bad); }), "index 3"));
  EXPECT_THROW(ds.get_batch({}), Error);
}

// ---- real Fashion-MNIST ----

TEST(FashionMnist, RealCountsAndFirstLabel) {
  if (!std::filesystem::is_directory(kRealDir))
    GTEST_SKIP() << kRealDir << " not found (apt-get install dataset-fashion-mnist)";
  auto train = load_fashion_mnist({.dir = kRealDir});
  auto test = load_fashion_mnist({.dir = kRealDir, .split = "test"});
  EXPECT_EQ(train->size(), 60000);
  EXPECT_EQ(test->size(), 10000);

  // Read the raw bytes independently of read_idx: label file = 8-byte header + labels.
  const auto labels = read_all(train->labels_path());
  ASSERT_EQ(labels.size(), 8u + 60000u);
  EXPECT_EQ(labels[0] * 0x1000000 + labels[1] * 0x10000 + labels[2] * 0x100 + labels[3], 2049);
  EXPECT_EQ(labels[8], 9);  // the first training example is an ankle boot
  EXPECT_EQ(train->label(0), 9);
  const auto images = read_all(train->images_path());
  ASSERT_EQ(images.size(), 16u + 60000u * 784u);

  const std::vector<std::int64_t> idx{0, 59999};
  const Batch b = train->get_batch(idx);
  EXPECT_EQ(b.label.to_vector<int>()[0], 9);
  EXPECT_EQ(b.label.to_vector<int>()[1], labels[8 + 59999]);
  const float* d = b.data.data<float>();
  for (int p = 0; p < 784; ++p) {
    ASSERT_FLOAT_EQ(d[p], norm(images[16 + p]));
    ASSERT_FLOAT_EQ(d[784 + p], norm(images[16 + 59999u * 784u + p]));
  }
  // Labels 0..9 all occur, 6000 each in the training split.
  std::vector<int> counts(10);
  for (auto l : train->raw_labels()) ++counts[l];
  EXPECT_EQ(counts, std::vector<int>(10, 6000));
}

TEST(FashionMnist, RealPaddedTo32) {
  if (!std::filesystem::is_directory(kRealDir))
    GTEST_SKIP() << kRealDir << " not found (apt-get install dataset-fashion-mnist)";
  auto test = load_fashion_mnist({.dir = kRealDir, .split = "test", .pad_to = 32, .limit = 16});
  EXPECT_EQ(test->size(), 16);
  std::vector<std::int64_t> idx(16);
  std::iota(idx.begin(), idx.end(), 0);
  const Batch b = test->get_batch(idx);
  ASSERT_EQ(b.data.shape(), (Shape{16, 1, 32, 32}));
  const float black = norm(0);
  const float* d = b.data.data<float>();
  for (int k = 0; k < 16; ++k)
    for (int r = 0; r < 32; ++r)
      for (int c = 0; c < 32; ++c)
        if (r < 2 || r >= 30 || c < 2 || c >= 30) {
          ASSERT_FLOAT_EQ(d[k * 1024 + r * 32 + c], black);
        }
  const auto raw = test->raw_images();
  for (int r = 0; r < 28; ++r)
    for (int c = 0; c < 28; ++c) ASSERT_FLOAT_EQ(d[(r + 2) * 32 + c + 2], norm(raw[r * 28 + c]));
}
