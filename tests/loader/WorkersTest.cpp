// Multi-worker DataLoader: identical batch sequences for every num_workers (with random transforms and
// after seek), errors, shutdown mid-epoch, and the data-wait statistics.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "framework/core/Error.h"
#include "framework/data/DataLoader.h"
#include "framework/data/InMemoryDataset.h"
#include "framework/data/Transforms.h"

using namespace anvil;

namespace {

using Batches = std::vector<std::pair<std::vector<float>, std::vector<int>>>;

// N images [1, 5, 5]; pixel p of image i holds i + p / 100; label i.
std::shared_ptr<InMemoryDataset> images(std::int64_t n) {
  std::vector<float> data;
  std::vector<std::int32_t> labels;
  for (std::int64_t i = 0; i < n; ++i) {
    for (int p = 0; p < 25; ++p) data.push_back(static_cast<float>(i) + static_cast<float>(p) / 100.0f);
    labels.push_back(static_cast<std::int32_t>(i));
  }
  return std::make_shared<InMemoryDataset>(Tensor::from_vector(data, Shape{n, 1, 5, 5}),
                                           Tensor::from_vector(labels, Shape{n}));
}

std::shared_ptr<const Transform> augment() {
  return std::make_shared<Compose>(std::vector<std::shared_ptr<const Transform>>{
      std::make_shared<RandomCrop>(5, 5, Padding{1}), std::make_shared<RandomHorizontalFlip>(0.5),
      std::make_shared<Normalize>(std::vector<double>{0.5}, std::vector<double>{2.0})});
}

Batches drain(DataLoader& loader) {
  Batches out;
  while (auto b = loader.next()) out.emplace_back(b->data.to_vector<float>(), b->label.to_vector<int>());
  return out;
}

// Wraps a dataset: a per-batch delay that varies with the first index (so workers finish out of order),
// and an error for batches holding `poison`.
class JitterDataset final : public Dataset {
 public:
  JitterDataset(std::shared_ptr<const Dataset> inner, std::int64_t poison = -1, int max_delay_ms = 3)
      : inner_(std::move(inner)), poison_(poison), max_delay_ms_(max_delay_ms) {}
  std::int64_t size() const override { return inner_->size(); }
  Batch get_batch(std::span<const std::int64_t> indices) const override {
    calls_.fetch_add(1);
    if (max_delay_ms_ > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds((indices[0] * 7) % (max_delay_ms_ + 1)));
    if (std::find(indices.begin(), indices.end(), poison_) != indices.end())
      throw Error("JitterDataset: cannot read example " + std::to_string(poison_));
    return inner_->get_batch(indices);
  }
  int calls() const { return calls_.load(); }

 private:
  std::shared_ptr<const Dataset> inner_;
  std::int64_t poison_;
  int max_delay_ms_;
  mutable std::atomic<int> calls_{0};
};

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

TEST(DataLoaderWorkers, SameBatchesForEveryWorkerCountWithTransforms) {
  auto ds = std::make_shared<JitterDataset>(images(53));
  Batches reference;
  for (std::int64_t epoch : {0, 2}) {
    DataLoader sync(ds, {.batch_size = 4, .seed = 9, .prefetch = 0, .transform = augment()});
    sync.start_epoch(epoch);
    reference = drain(sync);
    ASSERT_EQ(reference.size(), 14u);
    for (std::int64_t workers : {1, 2, 3}) {
      for (std::int64_t prefetch : {0, 1, 4}) {
        DataLoader loader(ds, {.batch_size = 4, .seed = 9, .prefetch = prefetch, .transform = augment(),
                               .num_workers = workers});
        loader.start_epoch(epoch);
        EXPECT_EQ(drain(loader), reference) << "epoch " << epoch << " workers " << workers << " prefetch " << prefetch;
      }
    }
  }
}

TEST(DataLoaderWorkers, SeekAndResumeMatchAcrossWorkerCounts) {
  auto ds = std::make_shared<JitterDataset>(images(40));
  DataLoader full(ds, {.batch_size = 3, .seed = 21, .transform = augment(), .num_workers = 1});
  full.start_epoch(4);
  const Batches reference = drain(full);
  for (std::int64_t workers : {0, 2, 3}) {
    DataLoader loader(ds, {.batch_size = 3, .seed = 1, .transform = augment(), .num_workers = workers});
    // Consume part of another epoch first so workers are running when seek arrives.
    (void)loader.next();
    (void)loader.next();
    loader.seek({.epoch = 4, .index = 6, .seed = 21});
    const Batches rest = drain(loader);
    ASSERT_EQ(rest.size() + 6, reference.size()) << "workers " << workers;
    EXPECT_TRUE(std::equal(rest.begin(), rest.end(), reference.begin() + 6)) << "workers " << workers;
    EXPECT_EQ(loader.position(), (DataPosition{4, static_cast<std::int64_t>(reference.size()), 21}));
  }
}

TEST(DataLoaderWorkers, ErrorSurfacesWhenDueAndRetries) {
  auto inner = images(40);
  for (std::int64_t workers : {2, 3}) {
    auto ds = std::make_shared<JitterDataset>(inner, /*poison=*/25);
    DataLoader loader(ds, {.batch_size = 10, .shuffle = false, .num_workers = workers});
    ASSERT_TRUE(loader.next().has_value());
    ASSERT_TRUE(loader.next().has_value());
    EXPECT_THROW(loader.next(), Error);
    EXPECT_EQ(loader.position(), (DataPosition{0, 2, 0}));
    EXPECT_THROW(loader.next(), Error);  // retried, fails again
    loader.seek({.epoch = 0, .index = 3});
    const auto b = loader.next();
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(b->label.to_vector<int>().front(), 30);
    EXPECT_FALSE(loader.next().has_value());
  }
}

TEST(DataLoaderWorkers, DestroyMidEpochWithPendingWork) {
  auto slow = std::make_shared<JitterDataset>(images(500), -1, 20);
  EXPECT_TRUE(finishes_within(
      [slow] {
        DataLoader loader(slow, {.batch_size = 5, .prefetch = 4, .transform = augment(), .num_workers = 3});
        (void)loader.next();
      },
      std::chrono::seconds(30)));
  EXPECT_TRUE(finishes_within(
      [slow] {
        DataLoader loader(slow, {.batch_size = 5, .prefetch = 1, .num_workers = 3});
        for (int e = 0; e < 20; ++e) {
          loader.start_epoch(e);
          (void)loader.next();
        }
      },
      std::chrono::seconds(60)));
  // Workers never ran further ahead than prefetch + workers batches beyond the consumer.
  auto counted = std::make_shared<JitterDataset>(images(500), -1, 20);
  EXPECT_TRUE(finishes_within(
      [counted] {
        DataLoader loader(counted, {.batch_size = 5, .prefetch = 2, .num_workers = 2});
        (void)loader.next();
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      },
      std::chrono::seconds(30)));
  EXPECT_LE(counted->calls(), 1 + 2 + 2);
  EXPECT_THROW(DataLoader(images(3), {.num_workers = -1}), Error);
}

TEST(DataLoaderWorkers, WaitStatistics) {
  auto slow = std::make_shared<JitterDataset>(images(12), -1, 0);
  DataLoader loader(slow, {.batch_size = 3, .prefetch = 0});
  EXPECT_EQ(loader.waited_batches(), 0);
  EXPECT_EQ(loader.wait_seconds(), 0.0);
  const auto batches = drain(loader);
  EXPECT_EQ(loader.waited_batches(), 4);
  EXPECT_GE(loader.wait_seconds(), 0.0);
  loader.reset_wait_stats();
  EXPECT_EQ(loader.waited_batches(), 0);

  // A synchronous loader over a dataset taking 10 ms per batch waits at least 10 ms per batch.
  class Sleepy final : public Dataset {
   public:
    explicit Sleepy(std::shared_ptr<const Dataset> d) : d_(std::move(d)) {}
    std::int64_t size() const override { return d_->size(); }
    Batch get_batch(std::span<const std::int64_t> i) const override {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      return d_->get_batch(i);
    }

   private:
    std::shared_ptr<const Dataset> d_;
  };
  DataLoader sleepy(std::make_shared<Sleepy>(images(12)), {.batch_size = 3, .prefetch = 0});
  (void)drain(sleepy);
  EXPECT_EQ(sleepy.waited_batches(), 4);
  EXPECT_GE(sleepy.wait_seconds(), 0.039);
}
