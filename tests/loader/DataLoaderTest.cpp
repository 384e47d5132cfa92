#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <memory>
#include <numeric>
#include <thread>
#include <vector>

#include "framework/core/Error.h"
#include "framework/data/DataLoader.h"
#include "framework/data/InMemoryDataset.h"
#include "tests/testutil/Errors.h"

using namespace anvil;
using anvil::testutil::has;

namespace {

// N examples; example i has data row [i, i + 0.5] and label i, so labels identify examples.
std::shared_ptr<InMemoryDataset> indexed_dataset(std::int64_t n) {
  std::vector<float> data;
  std::vector<std::int32_t> labels;
  for (std::int64_t i = 0; i < n; ++i) {
    data.push_back(static_cast<float>(i));
    data.push_back(static_cast<float>(i) + 0.5f);
    labels.push_back(static_cast<std::int32_t>(i));
  }
  return std::make_shared<InMemoryDataset>(Tensor::from_vector(data, Shape{n, 2}),
                                           Tensor::from_vector(labels, Shape{n}));
}

// Labels of every batch of the loader's current epoch (from its current position on).
std::vector<std::vector<int>> drain(DataLoader& loader) {
  std::vector<std::vector<int>> out;
  while (auto b = loader.next()) out.push_back(b->label.to_vector<int>());
  return out;
}

std::vector<std::vector<int>> epoch_labels(DataLoader& loader, std::int64_t epoch) {
  loader.start_epoch(epoch);
  return drain(loader);
}

std::vector<int> flat(const std::vector<std::vector<int>>& v) {
  std::vector<int> out;
  for (const auto& b : v) out.insert(out.end(), b.begin(), b.end());
  return out;
}

// Wraps a dataset: sleeps per batch, and throws for batches that contain `poison`.
class TrickyDataset final : public Dataset {
 public:
  TrickyDataset(std::shared_ptr<const Dataset> inner, std::int64_t poison, std::chrono::milliseconds delay)
      : inner_(std::move(inner)), poison_(poison), delay_(delay) {}
  std::int64_t size() const override { return inner_->size(); }
  Batch get_batch(std::span<const std::int64_t> indices) const override {
    calls_.fetch_add(1);
    if (delay_.count() > 0) std::this_thread::sleep_for(delay_);
    if (std::find(indices.begin(), indices.end(), poison_) != indices.end())
      throw Error("TrickyDataset: cannot read example " + std::to_string(poison_));
    return inner_->get_batch(indices);
  }
  int calls() const { return calls_.load(); }

 private:
  std::shared_ptr<const Dataset> inner_;
  std::int64_t poison_;
  std::chrono::milliseconds delay_;
  mutable std::atomic<int> calls_{0};
};

// Runs `f` on a thread and reports whether it finished within `limit` (a hang fails instead of blocking).
template <typename F>
bool finishes_within(F f, std::chrono::seconds limit) {
  auto done = std::make_shared<std::promise<void>>();
  auto fut = done->get_future();
  std::thread([f = std::move(f), done]() mutable {
    f();
    done->set_value();
  }).detach();
  return fut.wait_for(limit) == std::future_status::ready;
}

}  // namespace

TEST(InMemoryDataset, GathersRowsAndChecksCounts) {
  auto ds = indexed_dataset(5);
  EXPECT_EQ(ds->size(), 5);
  const std::vector<std::int64_t> idx{4, 1, 1};
  const Batch b = ds->get_batch(idx);
  EXPECT_EQ(b.data.shape(), (Shape{3, 2}));
  EXPECT_EQ(b.data.to_vector<float>(), (std::vector<float>{4, 4.5f, 1, 1.5f, 1, 1.5f}));
  EXPECT_EQ(b.label.to_vector<int>(), (std::vector<int>{4, 1, 1}));
  const std::vector<std::int64_t> bad{5};
  EXPECT_THROW(ds->get_batch(bad), Error);
  try {
    InMemoryDataset(Tensor::zeros(Shape{100, 3}), Tensor::zeros(Shape{99}, DType::kI32));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_TRUE(has(e.what(), "100")) << e.what();
    EXPECT_TRUE(has(e.what(), "99")) << e.what();
  }
  EXPECT_THROW(InMemoryDataset(Tensor::zeros(Shape{4, 3}), Tensor::zeros(Shape{4})), Error);  // float labels
  EXPECT_THROW(InMemoryDataset(Tensor::zeros(Shape{4}, DType::kI32), Tensor::zeros(Shape{4}, DType::kI32)), Error);
}

TEST(DataLoader, EveryIndexExactlyOncePerEpoch) {
  DataLoader loader(indexed_dataset(103), {.batch_size = 10, .seed = 7});
  EXPECT_EQ(loader.num_batches(), 11);
  for (std::int64_t epoch = 0; epoch < 3; ++epoch) {
    const auto batches = epoch_labels(loader, epoch);
    ASSERT_EQ(batches.size(), 11u);
    for (std::size_t k = 0; k < 10; ++k) EXPECT_EQ(batches[k].size(), 10u);
    EXPECT_EQ(batches.back().size(), 3u);
    auto all = flat(batches);
    std::sort(all.begin(), all.end());
    std::vector<int> want(103);
    std::iota(want.begin(), want.end(), 0);
    EXPECT_EQ(all, want) << "epoch " << epoch;
    EXPECT_EQ(loader.position(), (DataPosition{epoch, 11, 7}));
    EXPECT_FALSE(loader.next().has_value());  // stays at the end
  }
}

TEST(DataLoader, DropRemainderCounts) {
  auto ds = indexed_dataset(103);
  DataLoader keep(ds, {.batch_size = 10, .drop_remainder = false});
  DataLoader drop(ds, {.batch_size = 10, .drop_remainder = true});
  EXPECT_EQ(keep.num_batches(), 11);
  EXPECT_EQ(drop.num_batches(), 10);
  const auto batches = drain(drop);
  ASSERT_EQ(batches.size(), 10u);
  for (const auto& b : batches) EXPECT_EQ(b.size(), 10u);
  auto all = flat(batches);
  std::sort(all.begin(), all.end());
  EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end());  // distinct
  EXPECT_EQ(all.size(), 100u);
  // Exact multiple: no remainder either way; fewer examples than a batch: 0 or 1 batches.
  EXPECT_EQ(DataLoader(indexed_dataset(30), {.batch_size = 10, .drop_remainder = true}).num_batches(), 3);
  EXPECT_EQ(DataLoader(indexed_dataset(30), {.batch_size = 10}).num_batches(), 3);
  EXPECT_EQ(DataLoader(indexed_dataset(5), {.batch_size = 10, .drop_remainder = true}).num_batches(), 0);
  EXPECT_EQ(DataLoader(indexed_dataset(5), {.batch_size = 10}).num_batches(), 1);
}

TEST(DataLoader, NoShuffleKeepsDatasetOrder) {
  DataLoader loader(indexed_dataset(25), {.batch_size = 4, .shuffle = false});
  std::vector<int> want(25);
  std::iota(want.begin(), want.end(), 0);
  EXPECT_EQ(flat(epoch_labels(loader, 0)), want);
  EXPECT_EQ(flat(epoch_labels(loader, 5)), want);
}

TEST(DataLoader, SameSeedSameOrderDifferentEpochOrSeedDifferentOrder) {
  auto ds = indexed_dataset(200);
  DataLoader a(ds, {.batch_size = 16, .seed = 42});
  DataLoader b(ds, {.batch_size = 16, .seed = 42});
  DataLoader c(ds, {.batch_size = 16, .seed = 43});
  const auto a0 = flat(epoch_labels(a, 0));
  const auto a1 = flat(epoch_labels(a, 1));
  EXPECT_EQ(a0, flat(epoch_labels(b, 0)));
  EXPECT_EQ(a1, flat(epoch_labels(b, 1)));
  EXPECT_NE(a0, a1);
  EXPECT_NE(a0, flat(epoch_labels(c, 0)));
  // Any epoch can be reached directly: epoch 1 first, then epoch 0, same orders.
  DataLoader d(ds, {.batch_size = 16, .seed = 42});
  EXPECT_EQ(flat(epoch_labels(d, 1)), a1);
  EXPECT_EQ(flat(epoch_labels(d, 0)), a0);
  EXPECT_EQ(d.epoch_order(1), std::vector<std::int64_t>(a1.begin(), a1.end()));
  // The order is shuffled, not the identity.
  std::vector<int> identity(200);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_NE(a0, identity);
}

// Pins the permutation (Generator + Fisher-Yates are platform independent): a change here changes
// every resumed run's data order, so it must be deliberate.
TEST(DataLoader, OrderIsStableAcrossBuilds) {
  DataLoader loader(indexed_dataset(10), {.batch_size = 10, .seed = 0});
  EXPECT_EQ(loader.epoch_order(0), (std::vector<std::int64_t>{5, 3, 4, 7, 8, 1, 6, 9, 0, 2}));
  EXPECT_EQ(loader.epoch_order(1), (std::vector<std::int64_t>{0, 2, 4, 8, 5, 1, 3, 7, 6, 9}));
  EXPECT_THROW(loader.epoch_order(-1), Error);
}

TEST(DataLoader, SeekToMiddleOfEpoch3ReproducesUninterruptedRun) {
  auto ds = indexed_dataset(77);
  const DataLoaderOptions opts{.batch_size = 8, .seed = 1234, .prefetch = 3};
  // Uninterrupted: epochs 0..4, remembering where the 5th batch of epoch 3 starts.
  DataLoader full(ds, opts);
  std::vector<std::vector<int>> reference;
  DataPosition mid;
  for (std::int64_t e = 0; e < 5; ++e) {
    full.start_epoch(e);
    std::int64_t k = 0;
    while (true) {
      if (e == 3 && k == 5) mid = full.position();
      auto b = full.next();
      if (!b) break;
      if (e >= 3 && (e > 3 || k >= 5)) reference.push_back(b->label.to_vector<int>());
      ++k;
    }
  }
  EXPECT_EQ(mid, (DataPosition{3, 5, 1234}));

  // Resumed: a fresh loader (built with another seed: seek adopts the recorded one) jumps there.
  DataLoader resumed(ds, {.batch_size = 8, .seed = 999, .prefetch = 3});
  resumed.seek(mid);
  EXPECT_EQ(resumed.position(), mid);
  EXPECT_EQ(resumed.options().seed, 1234u);
  std::vector<std::vector<int>> got = drain(resumed);
  resumed.start_epoch(4);
  for (auto& b : drain(resumed)) got.push_back(b);
  EXPECT_EQ(got, reference);

  // Seeking a loader that is mid-way through another epoch (with batches prefetched) works too.
  DataLoader busy(ds, opts);
  busy.start_epoch(1);
  ASSERT_TRUE(busy.next().has_value());
  busy.seek(mid);
  const auto rest = drain(busy);
  EXPECT_EQ(rest, std::vector<std::vector<int>>(reference.begin(), reference.begin() + static_cast<long>(rest.size())));
  EXPECT_EQ(rest.size(), 5u);  // ceil(77/8) = 10 batches, 5 left
}

TEST(DataLoader, SeekValidatesPosition) {
  DataLoader loader(indexed_dataset(20), {.batch_size = 8});
  EXPECT_THROW(loader.seek({.epoch = -1, .index = 0}), Error);
  EXPECT_THROW(loader.seek({.epoch = 0, .index = 4}), Error);
  EXPECT_THROW(loader.start_epoch(-2), Error);
  loader.seek({.epoch = 2, .index = 3});  // end of epoch 2 (3 batches) is valid
  EXPECT_FALSE(loader.next().has_value());
  EXPECT_EQ(loader.position(), (DataPosition{2, 3, 0}));
}

TEST(DataLoader, PrefetchOnAndOffGiveIdenticalBatches) {
  auto ds = indexed_dataset(150);
  std::vector<std::vector<float>> reference;
  for (std::int64_t prefetch : {0, 1, 2, 8, 100}) {
    DataLoader loader(ds, {.batch_size = 7, .seed = 5, .prefetch = prefetch});
    std::vector<std::vector<float>> got;
    for (std::int64_t e = 0; e < 3; ++e) {
      loader.start_epoch(e);
      while (auto b = loader.next()) {
        auto v = b->data.to_vector<float>();
        const auto l = b->label.to_vector<float>();
        v.insert(v.end(), l.begin(), l.end());
        got.push_back(std::move(v));
      }
    }
    if (reference.empty()) reference = got;
    else EXPECT_EQ(got, reference) << "prefetch " << prefetch;
  }
  EXPECT_EQ(reference.size(), 3u * 22u);
}

TEST(DataLoader, WorkerExceptionSurfacesOnNext) {
  auto inner = indexed_dataset(40);
  for (std::int64_t prefetch : {0, 1, 4}) {
    auto ds = std::make_shared<TrickyDataset>(inner, /*poison=*/25, std::chrono::milliseconds(0));
    DataLoader loader(ds, {.batch_size = 10, .shuffle = false, .prefetch = prefetch});
    // Batches 0 and 1 arrive, even though the worker already failed on batch 2.
    ASSERT_TRUE(loader.next().has_value());
    ASSERT_TRUE(loader.next().has_value());
    try {
      loader.next();
      FAIL() << "expected the dataset's error, prefetch " << prefetch;
    } catch (const Error& e) {
      EXPECT_TRUE(has(e.what(), "cannot read example 25")) << e.what();
    }
    EXPECT_EQ(loader.position(), (DataPosition{0, 2, 0}));  // did not advance
    EXPECT_THROW(loader.next(), Error);                     // a retry fails again
    loader.seek({.epoch = 0, .index = 3});                  // skipping the bad batch works
    const auto b = loader.next();
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(b->label.to_vector<int>().front(), 30);
    EXPECT_FALSE(loader.next().has_value());
  }
}

TEST(DataLoader, DestroyMidEpochDoesNotHang) {
  auto inner = indexed_dataset(1000);
  // Worker blocked on a full queue (consumer stopped reading).
  EXPECT_TRUE(finishes_within(
      [inner] {
        DataLoader loader(inner, {.batch_size = 10, .prefetch = 2});
        (void)loader.next();
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      },
      std::chrono::seconds(30)));
  // Worker busy inside a slow get_batch.
  auto slow = std::make_shared<TrickyDataset>(inner, -1, std::chrono::milliseconds(30));
  EXPECT_TRUE(finishes_within(
      [slow] {
        DataLoader loader(slow, {.batch_size = 10, .prefetch = 4});
        (void)loader.next();
      },
      std::chrono::seconds(30)));
  // Restarting epochs repeatedly with a running worker.
  EXPECT_TRUE(finishes_within(
      [inner] {
        DataLoader loader(inner, {.batch_size = 3, .prefetch = 3});
        for (int e = 0; e < 50; ++e) {
          loader.start_epoch(e);
          (void)loader.next();
        }
      },
      std::chrono::seconds(30)));
  // A loader that never iterated starts no thread.
  EXPECT_TRUE(finishes_within([inner] { DataLoader loader(inner); }, std::chrono::seconds(30)));
  EXPECT_LE(slow->calls(), 1 + 4 + 1);  // it produced at most prefetch batches ahead (+1 in flight)
}

TEST(DataLoader, RejectsBadArguments) {
  EXPECT_THROW(DataLoader(nullptr), Error);
  EXPECT_THROW(DataLoader(indexed_dataset(3), {.batch_size = 0}), Error);
  EXPECT_THROW(DataLoader(indexed_dataset(3), {.prefetch = -1}), Error);
}

TEST(DataLoader, EmptyDataset) {
  auto ds = std::make_shared<InMemoryDataset>(Tensor::empty(Shape{0, 2}), Tensor::empty(Shape{0}, DType::kI32));
  DataLoader loader(ds, {.batch_size = 4});
  EXPECT_EQ(loader.num_batches(), 0);
  EXPECT_FALSE(loader.next().has_value());
}
