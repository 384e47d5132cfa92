#include "framework/data/DataLoader.h"

#include <algorithm>
#include <chrono>
#include <span>
#include <utility>

#include "framework/core/Error.h"
#include "framework/core/Random.h"

namespace anvil {
namespace {

// splitmix64's finalizer: a bijective 64-bit mix.
std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// The generator seed of one epoch. Mixing seed before combining keeps (seed, epoch) pairs apart that a
// plain sum would merge (seed 1 / epoch 0 vs seed 0 / epoch 1).
std::uint64_t epoch_seed(std::uint64_t seed, std::int64_t epoch) {
  return mix64(mix64(seed ^ 0x5851f42d4c957f2dULL) + 0x9e3779b97f4a7c15ULL * (static_cast<std::uint64_t>(epoch) + 1));
}

}  // namespace

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options)
    : dataset_(std::move(dataset)), options_(std::move(options)) {
  ANVIL_CHECK(dataset_ != nullptr, "dataset is null");
  ANVIL_CHECK(options_.batch_size > 0, "batch_size must be > 0, got {}", options_.batch_size);
  ANVIL_CHECK(options_.prefetch >= 0, "prefetch must be >= 0 (0 = synchronous), got {}", options_.prefetch);
  ANVIL_CHECK(options_.num_workers >= 0, "num_workers must be >= 0, got {}", options_.num_workers);
  if (options_.seed == kSeedFromGlobal) options_.seed = global_seed();
  size_ = dataset_->size();
  ANVIL_CHECK(size_ >= 0, "dataset reports a negative size {}", size_);
  order_ = epoch_order(0);
}

DataLoader::~DataLoader() { stop_workers(); }

std::int64_t DataLoader::num_batches() const {
  const std::int64_t b = options_.batch_size;
  return options_.drop_remainder ? size_ / b : (size_ + b - 1) / b;
}

std::vector<std::int64_t> DataLoader::epoch_order(std::int64_t epoch) const {
  ANVIL_CHECK(epoch >= 0, "epoch must be >= 0, got {}", epoch);
  std::vector<std::int64_t> order(static_cast<std::size_t>(size_));
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::int64_t>(i);
  if (options_.shuffle && order.size() > 1) {
    // Fisher-Yates with the platform-independent Generator (std::shuffle's output is implementation-defined).
    Generator gen(epoch_seed(options_.seed, epoch));
    for (std::size_t i = order.size() - 1; i > 0; --i) {
      const auto j = static_cast<std::size_t>(gen.randint(i + 1));
      std::swap(order[i], order[j]);
    }
  }
  return order;
}

void DataLoader::start_epoch(std::int64_t epoch) {
  ANVIL_CHECK(epoch >= 0, "epoch must be >= 0, got {}", epoch);
  stop_workers();
  if (epoch != epoch_) order_ = epoch_order(epoch);
  epoch_ = epoch;
  index_ = 0;
}

DataPosition DataLoader::position() const { return DataPosition{epoch_, index_, options_.seed}; }

void DataLoader::seek(const DataPosition& pos) {
  ANVIL_CHECK(pos.epoch >= 0, "position epoch must be >= 0, got {}", pos.epoch);
  ANVIL_CHECK(pos.index >= 0 && pos.index <= num_batches(),
              "position index {} is outside [0, {}] (batches per epoch for {} examples, batch_size {}{})", pos.index,
              num_batches(), size_, options_.batch_size, options_.drop_remainder ? ", drop_remainder" : "");
  stop_workers();
  const bool same_order = pos.epoch == epoch_ && pos.seed == options_.seed;
  options_.seed = pos.seed;
  if (!same_order) order_ = epoch_order(pos.epoch);
  epoch_ = pos.epoch;
  index_ = pos.index;
}

void DataLoader::reset_wait_stats() {
  wait_seconds_ = 0.0;
  waited_batches_ = 0;
}

Batch DataLoader::make_batch(std::int64_t k) const {
  const std::int64_t begin = k * options_.batch_size;
  const std::int64_t count = std::min(options_.batch_size, size_ - begin);
  const std::span<const std::int64_t> indices(order_.data() + begin, static_cast<std::size_t>(count));
  Batch b = dataset_->get_batch(indices);
  ANVIL_CHECK(b.data.defined() && b.label.defined() && b.data.rank() >= 1 && b.label.rank() >= 1 &&
                  b.data.dim(0) == count && b.label.dim(0) == count,
              "dataset returned data {} and label {} for a batch of {} indices", b.data.desc(), b.label.desc(),
              count);
  if (options_.transform) b = transform_batch(*options_.transform, b, indices, options_.seed, epoch_);
  if (!options_.device.is_cpu()) {
    b.data = b.data.to(options_.device);
    b.label = b.label.to(options_.device);
  }
  return b;
}

std::int64_t DataLoader::worker_count() const {
  if (options_.num_workers > 0) return options_.num_workers;
  return options_.prefetch > 0 ? 1 : 0;
}

std::optional<Batch> DataLoader::next() {
  if (index_ >= num_batches()) return std::nullopt;
  const auto t0 = std::chrono::steady_clock::now();
  auto record_wait = [&] {
    wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ++waited_batches_;
  };
  if (worker_count() == 0) {
    Batch b = make_batch(index_);
    ++index_;
    record_wait();
    return b;
  }
  if (workers_.empty()) start_workers();

  std::unique_lock lock(mutex_);
  ready_.wait(lock, [&] { return slots_.count(index_) != 0; });
  auto node = slots_.extract(index_);
  if (node.mapped().error) {
    // The batch due now failed: rethrow without advancing; the next call restarts the workers at
    // index_ (a retry of exactly this batch).
    std::exception_ptr error = node.mapped().error;
    lock.unlock();
    stop_workers();
    std::rethrow_exception(error);
  }
  ++index_;
  base_ = index_;
  lock.unlock();
  // The wait ends here, with the batch in hand: waking the workers can let one of them preempt this
  // thread on a busy machine, which is CPU contention, not waiting for data.
  record_wait();
  space_.notify_all();
  return std::move(*node.mapped().batch);
}

void DataLoader::start_workers() {
  {
    std::lock_guard lock(mutex_);
    slots_.clear();
    base_ = index_;
    next_claim_ = index_;
    end_ = num_batches();
    window_ = options_.prefetch + worker_count();
    stop_ = false;
  }
  const std::int64_t n = worker_count();
  workers_.reserve(static_cast<std::size_t>(n));
  try {
    for (std::int64_t i = 0; i < n; ++i) workers_.emplace_back([this] { worker_loop(); });
  } catch (...) {
    stop_workers();  // could not start every thread: join those that started
    throw;
  }
}

void DataLoader::worker_loop() {
  for (;;) {
    std::int64_t k = 0;
    {
      std::unique_lock lock(mutex_);
      space_.wait(lock, [&] { return stop_ || next_claim_ >= end_ || next_claim_ < base_ + window_; });
      if (stop_ || next_claim_ >= end_) return;
      k = next_claim_++;
    }
    Slot slot;
    try {
      slot.batch = make_batch(k);  // outside the lock: this is the slow part
    } catch (...) {
      slot.error = std::current_exception();
    }
    {
      std::lock_guard lock(mutex_);
      if (stop_) return;
      slots_.emplace(k, std::move(slot));
    }
    ready_.notify_one();  // the consumer is the only thread waiting on ready_
  }
}

void DataLoader::stop_workers() noexcept {
  if (!workers_.empty()) {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    space_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }
  std::lock_guard lock(mutex_);
  slots_.clear();
  stop_ = false;
}

}  // namespace anvil
