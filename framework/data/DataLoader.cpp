#include "framework/data/DataLoader.h"

#include <algorithm>
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
    : dataset_(std::move(dataset)), options_(options) {
  ANVIL_CHECK(dataset_ != nullptr, "dataset is null");
  ANVIL_CHECK(options_.batch_size > 0, "batch_size must be > 0, got {}", options_.batch_size);
  ANVIL_CHECK(options_.prefetch >= 0, "prefetch must be >= 0 (0 = synchronous), got {}", options_.prefetch);
  size_ = dataset_->size();
  ANVIL_CHECK(size_ >= 0, "dataset reports a negative size {}", size_);
  order_ = epoch_order(0);
}

DataLoader::~DataLoader() { stop_worker(); }

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
  stop_worker();
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
  stop_worker();
  const bool same_order = pos.epoch == epoch_ && pos.seed == options_.seed;
  options_.seed = pos.seed;
  if (!same_order) order_ = epoch_order(pos.epoch);
  epoch_ = pos.epoch;
  index_ = pos.index;
}

Batch DataLoader::make_batch(std::int64_t k) const {
  const std::int64_t begin = k * options_.batch_size;
  const std::int64_t count = std::min(options_.batch_size, size_ - begin);
  Batch b = dataset_->get_batch(std::span<const std::int64_t>(order_.data() + begin, static_cast<std::size_t>(count)));
  ANVIL_CHECK(b.data.defined() && b.label.defined() && b.data.rank() >= 1 && b.label.rank() >= 1 &&
                  b.data.dim(0) == count && b.label.dim(0) == count,
              "dataset returned data {} and label {} for a batch of {} indices", b.data.desc(), b.label.desc(),
              count);
  return b;
}

std::optional<Batch> DataLoader::next() {
  if (index_ >= num_batches()) return std::nullopt;
  if (options_.prefetch == 0) {
    Batch b = make_batch(index_);
    ++index_;
    return b;
  }
  if (!worker_.joinable()) start_worker();

  std::unique_lock lock(mutex_);
  ready_.wait(lock, [&] { return !queue_.empty() || worker_done_; });
  if (!queue_.empty()) {
    Batch b = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    space_.notify_one();
    ++index_;
    return b;
  }
  // The worker stopped before producing batch index_: it failed on exactly this batch.
  std::exception_ptr error = std::exchange(worker_error_, nullptr);
  lock.unlock();
  stop_worker();  // joins; the next call starts a fresh worker at index_ (a retry)
  if (error) std::rethrow_exception(error);
  ANVIL_THROW("internal error: prefetch worker ended at batch {} of {} without a batch or an error", index_,
              num_batches());
}

void DataLoader::start_worker() {
  {
    std::lock_guard lock(mutex_);
    queue_.clear();
    worker_error_ = nullptr;
    worker_done_ = false;
    stop_ = false;
  }
  worker_ = std::thread([this, first = index_] { worker_loop(first); });
}

void DataLoader::worker_loop(std::int64_t first) {
  const std::int64_t end = num_batches();
  const auto capacity = static_cast<std::size_t>(options_.prefetch);
  try {
    for (std::int64_t k = first; k < end; ++k) {
      {
        std::unique_lock lock(mutex_);
        space_.wait(lock, [&] { return stop_ || queue_.size() < capacity; });
        if (stop_) break;
      }
      Batch b = make_batch(k);  // outside the lock: this is the slow part
      {
        std::lock_guard lock(mutex_);
        if (stop_) break;
        queue_.push_back(std::move(b));
      }
      ready_.notify_one();
    }
  } catch (...) {
    std::lock_guard lock(mutex_);
    worker_error_ = std::current_exception();
  }
  {
    std::lock_guard lock(mutex_);
    worker_done_ = true;
  }
  ready_.notify_one();
}

void DataLoader::stop_worker() noexcept {
  if (worker_.joinable()) {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    space_.notify_all();
    worker_.join();
  }
  std::lock_guard lock(mutex_);
  queue_.clear();
  worker_error_ = nullptr;
  worker_done_ = false;
  stop_ = false;
}

}  // namespace anvil
