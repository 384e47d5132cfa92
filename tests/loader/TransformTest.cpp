// Transforms (Normalize, Pad, RandomCrop, RandomHorizontalFlip, OneHot, Compose) and their use in the
// DataLoader: exact values, seeded reproducibility, and resume.
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "framework/core/Error.h"
#include "framework/core/Random.h"
#include "framework/data/DataLoader.h"
#include "framework/data/InMemoryDataset.h"
#include "framework/data/Transforms.h"
#include "tests/testutil/Errors.h"

using namespace anvil;
using anvil::testutil::error_of;
using anvil::testutil::has;

namespace {

Sample image(std::vector<float> v, Shape shape, int label = 0) {
  return Sample{Tensor::from_vector(v, shape), Tensor::scalar(label, DType::kI32)};
}

// N images [1, 4, 4]; pixel p of image i holds 100 * i + p; label i % 3.
std::shared_ptr<InMemoryDataset> image_dataset(std::int64_t n) {
  std::vector<float> data;
  std::vector<std::int32_t> labels;
  for (std::int64_t i = 0; i < n; ++i) {
    for (int p = 0; p < 16; ++p) data.push_back(static_cast<float>(100 * i + p));
    labels.push_back(static_cast<std::int32_t>(i % 3));
  }
  return std::make_shared<InMemoryDataset>(Tensor::from_vector(data, Shape{n, 1, 4, 4}),
                                           Tensor::from_vector(labels, Shape{n}));
}

std::shared_ptr<const Transform> augment() {
  return std::make_shared<Compose>(std::vector<std::shared_ptr<const Transform>>{
      std::make_shared<RandomCrop>(4, 4, Padding{2}), std::make_shared<RandomHorizontalFlip>(0.5)});
}

// Every batch of one epoch as (data values, labels).
std::vector<std::pair<std::vector<float>, std::vector<int>>> epoch_batches(DataLoader& loader, std::int64_t epoch) {
  loader.start_epoch(epoch);
  std::vector<std::pair<std::vector<float>, std::vector<int>>> out;
  while (auto b = loader.next()) out.emplace_back(b->data.to_vector<float>(), b->label.to_vector<int>());
  return out;
}

}  // namespace

TEST(Transforms, NormalizePerChannelExactValues) {
  Generator gen(0);
  Sample s = image({1, 2, 3, 4}, Shape{2, 1, 2});
  Normalize({1.0, 2.0}, {2.0, 4.0}).apply(s, gen);
  EXPECT_EQ(s.data.shape(), (Shape{2, 1, 2}));
  EXPECT_EQ(s.data.to_vector<float>(), (std::vector<float>{0.0f, 0.5f, 0.25f, 0.5f}));
  Sample one = image({1, 2, 3, 4}, Shape{2, 1, 2});
  Normalize({1.0}, {0.5}).apply(one, gen);  // one value for every channel
  EXPECT_EQ(one.data.to_vector<float>(), (std::vector<float>{0, 2, 4, 6}));
  const std::string err = error_of([&] {
    Sample t = image({1, 2, 3}, Shape{3, 1, 1});
    Normalize({1, 2}, {1, 1}).apply(t, gen);
  });
  EXPECT_TRUE(has(err, "[3,1,1]")) << err;
  EXPECT_THROW(Normalize({0}, {0}), Error);
}

TEST(Transforms, PadExactValues) {
  Generator gen(0);
  Sample s = image({1, 2, 3, 4}, Shape{1, 2, 2});
  Pad(Padding{1, 0, 2, 1}, 9.0f).apply(s, gen);  // left 1, top 0, right 2, bottom 1
  EXPECT_EQ(s.data.shape(), (Shape{1, 3, 5}));
  EXPECT_EQ(s.data.to_vector<float>(), (std::vector<float>{9, 1, 2, 9, 9,  //
                                                           9, 3, 4, 9, 9,  //
                                                           9, 9, 9, 9, 9}));
  Sample hw = image({5}, Shape{1, 1});  // [H, W] keeps its rank
  Pad(Padding{1}).apply(hw, gen);
  EXPECT_EQ(hw.data.shape(), (Shape{3, 3}));
  EXPECT_EQ(hw.data.to_vector<float>(), (std::vector<float>{0, 0, 0, 0, 5, 0, 0, 0, 0}));
  EXPECT_THROW(Pad(Padding{-1}), Error);
  const std::string err = error_of([&] {
    Sample bad = image({1, 2}, Shape{2});
    Pad(Padding{1}).apply(bad, gen);
  });
  EXPECT_TRUE(has(err, "Pad")) << err;
  EXPECT_TRUE(has(err, "[2]")) << err;
}

TEST(Transforms, RandomCropWindowFollowsTheGenerator) {
  // 3x3 image 1..9, crop 2x2 without padding: the window's top-left is (randint(2), randint(2)).
  const std::vector<float> img{1, 2, 3, 4, 5, 6, 7, 8, 9};
  std::set<std::vector<float>> windows;
  for (std::uint64_t seed = 0; seed < 64; ++seed) {
    Generator gen(seed), expect(seed);
    Sample s = image(img, Shape{1, 3, 3});
    RandomCrop(2, 2).apply(s, gen);
    const auto top = static_cast<std::int64_t>(expect.randint(2));
    const auto left = static_cast<std::int64_t>(expect.randint(2));
    const float a = img[static_cast<std::size_t>(top * 3 + left)];
    EXPECT_EQ(s.data.to_vector<float>(), (std::vector<float>{a, a + 1, a + 3, a + 4})) << "seed " << seed;
    EXPECT_EQ(gen.state(), expect.state());  // exactly two draws
    windows.insert(s.data.to_vector<float>());
  }
  EXPECT_EQ(windows.size(), 4u);  // every position occurs

  // With padding 1 and a 3x3 crop of a 1x1 image, the pixel lands anywhere in the window; the rest is fill.
  std::set<std::size_t> where;
  for (std::uint64_t seed = 0; seed < 64; ++seed) {
    Generator gen(seed);
    Sample s = image({7}, Shape{1, 1, 1});
    RandomCrop(2, 2, Padding{1}, -1.0f).apply(s, gen);
    const auto v = s.data.to_vector<float>();
    ASSERT_EQ(v.size(), 4u);
    std::size_t sevens = 0;
    for (std::size_t i = 0; i < v.size(); ++i)
      if (v[i] == 7.0f) {
        ++sevens;
        where.insert(i);
      } else {
        EXPECT_EQ(v[i], -1.0f);
      }
    EXPECT_EQ(sevens, 1u);
  }
  EXPECT_EQ(where.size(), 4u);
  const std::string err = error_of([] {
    Generator gen(0);
    Sample s = image({1, 2, 3, 4}, Shape{1, 2, 2});
    RandomCrop(3, 3).apply(s, gen);
  });
  EXPECT_TRUE(has(err, "[3,3]")) << err;
  EXPECT_TRUE(has(err, "[1,2,2]")) << err;
}

TEST(Transforms, RandomHorizontalFlipExactAndSeeded) {
  Generator gen(3);
  Sample s = image({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, Shape{2, 2, 3});
  RandomHorizontalFlip(1.0).apply(s, gen);
  EXPECT_EQ(s.data.to_vector<float>(), (std::vector<float>{3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10}));
  Sample same = image({1, 2, 3}, Shape{1, 1, 3});
  RandomHorizontalFlip(0.0).apply(same, gen);
  EXPECT_EQ(same.data.to_vector<float>(), (std::vector<float>{1, 2, 3}));
  // p = 0.5: about half of 400 seeds flip, and a seed always decides the same way.
  int flips = 0;
  for (std::uint64_t seed = 0; seed < 400; ++seed) {
    Generator g1(seed), g2(seed);
    Sample a = image({1, 2}, Shape{1, 1, 2}), b = image({1, 2}, Shape{1, 1, 2});
    RandomHorizontalFlip(0.5).apply(a, g1);
    RandomHorizontalFlip(0.5).apply(b, g2);
    EXPECT_EQ(a.data.to_vector<float>(), b.data.to_vector<float>());
    if (a.data.to_vector<float>()[0] == 2.0f) ++flips;
  }
  EXPECT_GT(flips, 150);
  EXPECT_LT(flips, 250);
  EXPECT_THROW(RandomHorizontalFlip(1.5), Error);
}

TEST(Transforms, OneHotWithAndWithoutSmoothing) {
  Generator gen(0);
  Sample s = image({0}, Shape{1, 1, 1}, 2);
  OneHot(4).apply(s, gen);
  EXPECT_EQ(s.label.dtype(), DType::kF32);
  EXPECT_EQ(s.label.shape(), (Shape{4}));
  EXPECT_EQ(s.label.to_vector<float>(), (std::vector<float>{0, 0, 1, 0}));
  Sample t = image({0}, Shape{1, 1, 1}, 0);
  OneHot(4, 0.1).apply(t, gen);
  const auto v = t.label.to_vector<float>();
  EXPECT_FLOAT_EQ(v[0], 0.925f);
  EXPECT_FLOAT_EQ(v[1], 0.025f);
  const std::string err = error_of([&] {
    Sample u = image({0}, Shape{1, 1, 1}, 4);
    OneHot(4).apply(u, gen);
  });
  EXPECT_TRUE(has(err, "label 4")) << err;
}

TEST(Transforms, ComposeAppliesInOrder) {
  Compose c({std::make_shared<Pad>(Padding{1}), std::make_shared<Normalize>(std::vector<double>{1.0},
                                                                            std::vector<double>{2.0})});
  EXPECT_EQ(c.name().rfind("Compose(Pad(", 0), 0u) << c.name();
  Generator gen(0);
  Sample s = image({5}, Shape{1, 1, 1});
  c.apply(s, gen);  // pad with 0 first, then (x - 1) / 2
  EXPECT_EQ(s.data.to_vector<float>(), (std::vector<float>{-0.5f, -0.5f, -0.5f, -0.5f, 2.0f, -0.5f, -0.5f, -0.5f, -0.5f}));
  EXPECT_THROW(Compose({nullptr}), Error);
}

TEST(DataLoaderTransforms, SameSeedSameAugmentationOtherSeedOrEpochDiffers) {
  auto ds = image_dataset(20);
  const DataLoaderOptions opts{.batch_size = 6, .seed = 11, .prefetch = 0, .transform = augment()};
  DataLoader a(ds, opts), b(ds, opts);
  const auto a0 = epoch_batches(a, 0);
  EXPECT_EQ(a0, epoch_batches(b, 0));
  EXPECT_NE(a0, epoch_batches(b, 1));
  DataLoaderOptions other = opts;
  other.seed = 12;
  DataLoader c(ds, other);
  EXPECT_NE(a0, epoch_batches(c, 0));
  ASSERT_EQ(a0.size(), 4u);
  EXPECT_EQ(a0[0].first.size(), 6u * 16u);  // crop back to [1, 4, 4]

  // The augmentation is a function of (seed, epoch, example): without shuffling, with another batch
  // size, each example is augmented identically.
  DataLoader s1(ds, {.batch_size = 4, .shuffle = false, .seed = 11, .prefetch = 0, .transform = augment()});
  DataLoader s2(ds, {.batch_size = 7, .shuffle = false, .seed = 11, .prefetch = 0, .transform = augment()});
  std::vector<float> f1, f2;
  for (const auto& [d, l] : epoch_batches(s1, 2)) f1.insert(f1.end(), d.begin(), d.end());
  for (const auto& [d, l] : epoch_batches(s2, 2)) f2.insert(f2.end(), d.begin(), d.end());
  EXPECT_EQ(f1, f2);
  // And it really augments: some example differs from the raw data.
  DataLoader raw(ds, {.batch_size = 20, .shuffle = false, .prefetch = 0});
  EXPECT_NE(f1, raw.next()->data.to_vector<float>());
}

TEST(DataLoaderTransforms, SeekResumeReproducesAugmentedBatches) {
  auto ds = image_dataset(30);
  const DataLoaderOptions opts{.batch_size = 4, .seed = 5, .prefetch = 2, .transform = augment(), .num_workers = 2};
  DataLoader full(ds, opts);
  const auto reference = epoch_batches(full, 3);
  DataLoader resumed(ds, {.batch_size = 4, .seed = 999, .prefetch = 1, .transform = augment(), .num_workers = 3});
  resumed.seek({.epoch = 3, .index = 5, .seed = 5});
  std::vector<std::pair<std::vector<float>, std::vector<int>>> rest;
  while (auto b = resumed.next()) rest.emplace_back(b->data.to_vector<float>(), b->label.to_vector<int>());
  ASSERT_EQ(rest.size() + 5, reference.size());
  for (std::size_t k = 0; k < rest.size(); ++k) EXPECT_EQ(rest[k], reference[k + 5]) << "batch " << k + 5;
}

TEST(DataLoaderTransforms, OneHotLabelsAndMismatchedShapes) {
  auto ds = image_dataset(5);
  DataLoader loader(ds, {.batch_size = 5, .shuffle = false, .prefetch = 0, .transform = std::make_shared<OneHot>(3)});
  const auto b = loader.next();
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->label.shape(), (Shape{5, 3}));
  EXPECT_EQ(b->label.to_vector<float>(), (std::vector<float>{1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0}));

  // A transform whose output shape depends on the randomness cannot be stacked: a clear error.
  class RandomSize final : public Transform {
   public:
    void apply(Sample& s, Generator& gen) const override { s.data = Tensor::zeros(Shape{1 + static_cast<std::int64_t>(gen.randint(3))}); }
    std::string name() const override { return "RandomSize"; }
  };
  DataLoader bad(image_dataset(40), {.batch_size = 40, .prefetch = 0, .transform = std::make_shared<RandomSize>()});
  const std::string err = error_of([&] { (void)bad.next(); });
  EXPECT_TRUE(has(err, "disagree")) << err;
}

TEST(DataLoaderTransforms, DefaultSeedComesFromSetSeed) {
  auto ds = image_dataset(16);
  set_seed(42);
  DataLoader a(ds, {.batch_size = 4, .prefetch = 0, .transform = augment()});
  EXPECT_EQ(a.options().seed, 42u);
  EXPECT_EQ(a.position().seed, 42u);
  DataLoader explicit_seed(ds, {.batch_size = 4, .seed = 7, .prefetch = 0});
  EXPECT_EQ(explicit_seed.options().seed, 7u);  // an explicit seed wins
  const auto first = epoch_batches(a, 0);
  set_seed(43);
  DataLoader b(ds, {.batch_size = 4, .prefetch = 0, .transform = augment()});
  EXPECT_NE(first, epoch_batches(b, 0));
  set_seed(42);
  DataLoader c(ds, {.batch_size = 4, .prefetch = 0, .transform = augment()});
  EXPECT_EQ(first, epoch_batches(c, 0));
  set_seed(0);
}
