// DataLoader: deterministic, resumable mini-batch iteration over a Dataset with background prefetch.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "framework/data/Batch.h"
#include "framework/data/DataPosition.h"
#include "framework/data/Dataset.h"

namespace anvil {

/// Use with designated initializers: DataLoaderOptions{.batch_size = 64, .seed = 1}.
struct DataLoaderOptions {
  std::int64_t batch_size = 32;  // > 0
  bool shuffle = true;           // a fresh permutation per epoch; false = dataset order
  bool drop_remainder = false;   // drop the last, smaller batch of each epoch
  std::uint64_t seed = 0;        // shuffle seed; with the epoch number it fixes each epoch's order
  std::int64_t prefetch = 2;     // batches produced ahead on a worker thread (0 = synchronous, in next())
};

/// Splits each epoch of a Dataset into mini-batches, in an order that depends only on (seed, epoch):
///   - shuffle: example order = Fisher-Yates permutation of 0..N-1 drawn with anvil::Generator
///     (randint), seeded from a mix of seed and epoch, so epoch e's order is the same on every platform
///     and any epoch can be reached directly (seek) without replaying earlier ones;
///   - batch k of an epoch holds order[k*B, min((k+1)*B, N)); with drop_remainder the short last batch
///     is skipped.
/// With prefetch > 0 a worker thread gathers up to `prefetch` batches ahead, in the same order; results
/// are identical to prefetch = 0.
///
/// Typical use (what Model::train does):
///   for (epoch ...) { loader.start_epoch(epoch); while (auto b = loader.next()) train_step(*b); }
///
/// A DataLoader is used from one thread at a time (the worker is internal). It is neither copyable nor
/// movable (its worker refers to it). A new loader stands at {epoch 0, index 0} as if start_epoch(0)
/// had been called.
class DataLoader {
 public:
  /// Preconditions: dataset is non-null; options.batch_size > 0; options.prefetch >= 0.
  /// Errors: anvil::Error naming the offending argument and value.
  /// Effects: no thread is started until the first next().
  explicit DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options = {});
  /// Stops and joins the worker (waiting at most for the batch it is gathering). Never throws.
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  /// Batches per epoch: ceil(N / B), or floor(N / B) with drop_remainder (0 when N == 0, or N < B and
  /// drop_remainder).
  std::int64_t num_batches() const;

  /// Positions the loader at the start of `epoch` (>= 0): stops any worker, drops prefetched batches and
  /// computes the epoch's order. Errors: anvil::Error for a negative epoch.
  void start_epoch(std::int64_t epoch);

  /// The next batch of the current epoch, or std::nullopt once all num_batches() were returned (again
  /// on every later call, until start_epoch or seek).
  /// Errors: an exception thrown by Dataset::get_batch (here or on the worker) is rethrown here, on the
  ///   caller's thread, exactly when the batch that failed is due; the position does not advance, so
  ///   calling next() again retries that batch. anvil::Error when the dataset returns a batch whose
  ///   tensors do not hold as many examples as were asked for.
  std::optional<Batch> next();

  /// {current epoch, batches already returned in it, seed}.
  DataPosition position() const;

  /// Repositions to `pos`, after which next() returns exactly the batches an uninterrupted run would have
  /// returned from that point. Adopts pos.seed as the loader's seed (so a resumed run follows the
  /// recorded one). Stops any worker and drops prefetched batches; does not replay earlier batches.
  /// Errors: anvil::Error (nothing changed) when pos.epoch < 0 or pos.index is outside [0, num_batches()].
  void seek(const DataPosition& pos);

  /// Example indices of `epoch` in the order the loader visits them (length N; includes the examples a
  /// drop_remainder epoch skips at the end). Pure: does not change the position.
  /// Errors: anvil::Error for a negative epoch.
  std::vector<std::int64_t> epoch_order(std::int64_t epoch) const;

  /// The options given at construction, with `seed` as adopted by the last seek().
  const DataLoaderOptions& options() const { return options_; }
  /// The dataset batches are drawn from.
  const Dataset& dataset() const { return *dataset_; }

 private:
  Batch make_batch(std::int64_t k) const;  // gathers batch k of the current order_
  void start_worker();
  void stop_worker() noexcept;
  void worker_loop(std::int64_t first);

  std::shared_ptr<const Dataset> dataset_;
  DataLoaderOptions options_;
  std::int64_t size_ = 0;                // N, read once
  std::int64_t epoch_ = 0;
  std::int64_t index_ = 0;               // next batch to return
  std::vector<std::int64_t> order_;      // example order of epoch_; read-only while the worker runs

  std::thread worker_;
  std::mutex mutex_;                     // guards the four members below
  std::condition_variable ready_;        // queue_ gained a batch or the worker finished
  std::condition_variable space_;        // queue_ has room or stop_ was set
  std::deque<Batch> queue_;              // batches index_, index_+1, ... in order
  std::exception_ptr worker_error_;      // what stopped the worker early, if anything
  bool worker_done_ = false;             // the worker has produced its last batch (or failed)
  bool stop_ = false;                    // asks the worker to quit
};

}  // namespace anvil
