// DataLoader: deterministic, resumable mini-batch iteration over a Dataset with per-example transforms,
// background prefetch and parallel workers.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "framework/data/Batch.h"
#include "framework/data/DataPosition.h"
#include "framework/data/Dataset.h"
#include "framework/data/Transform.h"

namespace anvil {

/// DataLoaderOptions::seed's default: take the seed from the global seed (set_seed) at construction.
inline constexpr std::uint64_t kSeedFromGlobal = ~std::uint64_t{0};

/// Use with designated initializers: DataLoaderOptions{.batch_size = 64, .seed = 1}.
struct DataLoaderOptions {
  std::int64_t batch_size = 32;  // > 0
  bool shuffle = true;           // a fresh permutation per epoch; false = dataset order
  bool drop_remainder = false;   // drop the last, smaller batch of each epoch
  /// Shuffle and transform seed; with the epoch number it fixes each epoch's order and augmentation.
  /// Precedence: an explicit value wins; the default kSeedFromGlobal takes global_seed() (the last
  /// set_seed(n), 0 when never called) when the loader is constructed. options().seed reports the
  /// seed actually used.
  std::uint64_t seed = kSeedFromGlobal;
  /// Batches produced ahead of the consumer (0 with num_workers 0 = synchronous, in next()).
  std::int64_t prefetch = 2;
  /// Per-example transform (a Compose for several), applied when a batch is produced (on the workers
  /// when there are any). Null = batches exactly as the dataset returns them.
  std::shared_ptr<const Transform> transform{};
  /// Threads producing batches in parallel (>= 0). 0 = one background thread when prefetch > 0 (the
  /// classic prefetcher), none when prefetch == 0. Results never depend on it.
  std::int64_t num_workers = 0;
  /// Where batches are delivered. A GPU device (Device::cuda(i), CUDA builds): the thread that builds
  /// a batch also copies its data and labels there, so with prefetch > 0 or workers the copy of the
  /// next batches overlaps the training step on this one (with prefetch 0 and no workers the copy
  /// happens in next()). Errors of the copy (e.g. no such device) surface from next() like any other
  /// batch error.
  Device device = Device::cpu();
};

/// Splits each epoch of a Dataset into mini-batches, in an order that depends only on (seed, epoch):
///   - shuffle: example order = Fisher-Yates permutation of 0..N-1 drawn with anvil::Generator
///     (randint), seeded from a mix of seed and epoch, so epoch e's order is the same on every platform
///     and any epoch can be reached directly (seek) without replaying earlier ones;
///   - batch k of an epoch holds order[k*B, min((k+1)*B, N)); with drop_remainder the short last batch
///     is skipped.
///   - transform: example i of epoch e is transformed with sample_generator(seed, e, i) (Transform.h),
///     so augmentation, like the order, is a pure function of (seed, epoch) and survives seek/resume.
/// Workers: W = num_workers threads (or 1 when num_workers == 0 and prefetch > 0) claim batch indices
/// in increasing order from a shared counter, build them independently (gather + transform), and file
/// them by index; next() hands them out strictly in index order. At most prefetch + W batches beyond
/// the last one returned are being built or waiting. Each batch is a pure function of (seed, epoch,
/// batch index), so results are bit-identical for every num_workers and prefetch (including 0).
///
/// Data wait: wait_seconds() is the wall time the consuming thread spent inside next() (building the
/// batch itself when synchronous, or blocked until a worker delivered it), the "data wait" a training
/// loop suffers; reset with reset_wait_stats().
///
/// Typical use (what Model::train does):
///   for (epoch ...) { loader.start_epoch(epoch); while (auto b = loader.next()) train_step(*b); }
///
/// A DataLoader is used from one thread at a time (the workers are internal; no data is shared with
/// them outside its mutex except members that only change while no worker runs). It is neither
/// copyable nor movable (its workers refer to it). A new loader stands at {epoch 0, index 0} as if start_epoch(0)
/// had been called.
class DataLoader {
 public:
  /// Preconditions: dataset is non-null; options.batch_size > 0; options.prefetch >= 0;
  /// options.num_workers >= 0.
  /// Errors: anvil::Error naming the offending argument and value.
  /// Effects: resolves options.seed (kSeedFromGlobal -> global_seed()); no thread is started until the
  /// first next().
  explicit DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options = {});
  /// Stops and joins the workers (each finishes at most the batch it is building). Never throws.
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  /// Batches per epoch: ceil(N / B), or floor(N / B) with drop_remainder (0 when N == 0, or N < B and
  /// drop_remainder).
  std::int64_t num_batches() const;

  /// Positions the loader at the start of `epoch` (>= 0): stops the workers, drops prefetched batches and
  /// computes the epoch's order. Errors: anvil::Error for a negative epoch.
  void start_epoch(std::int64_t epoch);

  /// The next batch of the current epoch, or std::nullopt once all num_batches() were returned (again
  /// on every later call, until start_epoch or seek).
  /// Errors: an exception thrown by Dataset::get_batch or the transform (here or on a worker) is
  ///   rethrown here, on the caller's thread, exactly when the batch that failed is due (batches before
  ///   it are delivered normally); the position does not advance and the workers are stopped, so calling
  ///   next() again retries that batch. anvil::Error when the dataset returns a batch whose tensors do
  ///   not hold as many examples as were asked for.
  std::optional<Batch> next();

  /// {current epoch, batches already returned in it, seed}.
  DataPosition position() const;

  /// Repositions to `pos`, after which next() returns exactly the batches an uninterrupted run would have
  /// returned from that point. Adopts pos.seed as the loader's seed (so a resumed run follows the
  /// recorded one). Stops the workers and drops prefetched batches; does not replay earlier batches.
  /// Errors: anvil::Error (nothing changed) when pos.epoch < 0 or pos.index is outside [0, num_batches()].
  void seek(const DataPosition& pos);

  /// Example indices of `epoch` in the order the loader visits them (length N; includes the examples a
  /// drop_remainder epoch skips at the end). Pure: does not change the position.
  /// Errors: anvil::Error for a negative epoch.
  std::vector<std::int64_t> epoch_order(std::int64_t epoch) const;

  /// The options given at construction, with `seed` resolved and as adopted by the last seek().
  const DataLoaderOptions& options() const { return options_; }
  /// The dataset batches are drawn from.
  const Dataset& dataset() const { return *dataset_; }

  /// Seconds the caller spent inside next() since construction or reset_wait_stats() (see the class
  /// comment), and the number of next() calls that returned a batch in that time.
  double wait_seconds() const { return wait_seconds_; }
  std::int64_t waited_batches() const { return waited_batches_; }
  void reset_wait_stats();

 private:
  struct Slot {  // a produced batch, or the error that prevented it
    std::optional<Batch> batch;
    std::exception_ptr error;
  };
  Batch make_batch(std::int64_t k) const;  // gathers (and transforms) batch k of the current order_
  std::int64_t worker_count() const;
  void start_workers();
  void stop_workers() noexcept;
  void worker_loop();

  std::shared_ptr<const Dataset> dataset_;
  DataLoaderOptions options_;
  std::int64_t size_ = 0;                // N, read once
  std::int64_t epoch_ = 0;
  std::int64_t index_ = 0;               // next batch to return
  std::vector<std::int64_t> order_;      // example order of epoch_; read-only while workers run
  double wait_seconds_ = 0.0;            // consumer thread only
  std::int64_t waited_batches_ = 0;

  // Workers read dataset_, options_, size_, epoch_ and order_ without locking: those change only in
  // start_epoch/seek, which join the workers first. Everything below is guarded by mutex_.
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable ready_;        // a slot was filed (the consumer waits for slot index_)
  std::condition_variable space_;        // the window moved or stop_ was set (workers wait)
  std::map<std::int64_t, Slot> slots_;   // finished batches, by batch index (all >= base_)
  std::int64_t base_ = 0;                // = index_: the next batch the consumer takes
  std::int64_t next_claim_ = 0;          // the next batch index a worker builds
  std::int64_t end_ = 0;                 // num_batches() of the running epoch
  std::int64_t window_ = 1;              // claims stay below base_ + window_
  bool stop_ = false;                    // asks the workers to quit
};

}  // namespace anvil
