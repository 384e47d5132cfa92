// Clock: the time source of the checkpoint callbacks, injectable so that tests run in milliseconds.
//
// ModelCheckpoint records wall time (nanoseconds since the Unix epoch) in every manifest, and computes its
// seconds trigger and keep_checkpoint_per_n_minutes grid from those recorded times — never from file
// modification times — so a restarted run keeps the cadence (spec callbacks-and-checkpointing.md §4, §6).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

namespace anvil {

/// A source of wall time. Implementations must be safe to call from several threads.
class Clock {
 public:
  virtual ~Clock() = default;
  /// Current wall time in nanoseconds since the Unix epoch.
  virtual std::int64_t now_ns() const = 0;
};

/// std::chrono::system_clock.
class SystemClock : public Clock {
 public:
  std::int64_t now_ns() const override;
  /// A shared instance (the default clock of ModelCheckpoint).
  static std::shared_ptr<Clock> instance();
};

/// A clock that only moves when told to (tests). Thread-safe.
class ManualClock : public Clock {
 public:
  /// Starts at `start_ns` (default: 2026-01-01T00:00:00Z, so times look plausible in manifests).
  explicit ManualClock(std::int64_t start_ns = 1767225600000000000LL) : now_(start_ns) {}
  std::int64_t now_ns() const override { return now_.load(); }
  /// Sets the time (may go backwards; callers decide).
  void set_ns(std::int64_t t) { now_.store(t); }
  /// Moves the time forward by `seconds` (fractions allowed).
  void advance_seconds(double seconds) { now_.fetch_add(static_cast<std::int64_t>(seconds * 1e9)); }

 private:
  std::atomic<std::int64_t> now_;
};

}  // namespace anvil
