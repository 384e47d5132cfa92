// Dataset: the interface a DataLoader draws mini-batches from (map-style: random access by index).
#pragma once

#include <cstdint>
#include <span>

#include "framework/data/Batch.h"

namespace anvil {

/// A finite, random-access collection of labelled examples, indexed 0 .. size()-1.
///
/// Thread safety: the DataLoader calls size() and get_batch() from a background thread while the owner
/// may call them from others, so implementations must make both safe to call concurrently (read-only
/// access to immutable data is enough). A Dataset is immutable once constructed.
class Dataset {
 public:
  virtual ~Dataset() = default;

  /// Number of examples (>= 0). Constant for the lifetime of the object.
  virtual std::int64_t size() const = 0;

  /// Gathers the examples `indices` (in that order; repeats allowed) into one Batch:
  ///   data float32 [B, ...], label int32 [B], with B = indices.size().
  /// Preconditions: indices is non-empty and every index is in [0, size()).
  /// Errors: throws anvil::Error naming the offending index (and size()) when one is out of range, or
  ///         when indices is empty; implementations may throw anvil::Error for their own I/O failures.
  virtual Batch get_batch(std::span<const std::int64_t> indices) const = 0;

 protected:
  Dataset() = default;
  Dataset(const Dataset&) = default;
  Dataset& operator=(const Dataset&) = default;
};

}  // namespace anvil
