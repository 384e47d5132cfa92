// Retention: which of a run's committed checkpoints to delete (spec callbacks-and-checkpointing.md §6).
//
// A pure function: the caller rediscovers the candidates from disk (the manifests this run owns, whose
// file exists with the recorded size) and passes the times and steps RECORDED in them; file
// modification times are never consulted. A candidate is kept when ANY rule keeps it:
//
//   * keep_checkpoint_max = K > 0: among the K newest by (global_step, wall_time_ns);
//   * keep_checkpoint_per_n_minutes = N > 0: the earliest (by (wall_time_ns, global_step)) of its fixed
//     grid cell floor((wall_time_ns - run_start_time_ns) / (N * 60 s));
//   * keep_best_k = B > 0: among the B best by `metric` (mode min or max; ties: the newer wins);
//     candidates without a metric are not kept by this rule;
//   * it is the newest candidate (the latest pointer's target), or it is pinned.
//
// Example, one save per minute for 20 minutes (f0 .. f19): N=5 keeps f0, f5, f10, f15, f19; K=2, N=5
// keeps f0, f5, f10, f15, f18, f19.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace anvil {

/// One committed checkpoint of this run, as recorded in its manifest.
struct RetentionCandidate {
  std::string file;                    // an identifier returned as is (e.g. the basename)
  std::int64_t global_step = 0;
  std::int64_t wall_time_ns = 0;       // the trigger time recorded in the manifest
  std::optional<double> metric{};      // the monitored value, when recorded
  bool pinned = false;                 // never deleted
};

struct RetentionPolicy {
  std::int64_t keep_checkpoint_max = 0;            // K; 0 = rule off
  std::int64_t keep_checkpoint_per_n_minutes = 0;  // N; 0 = rule off
  std::int64_t keep_best_k = 0;                    // B; 0 = rule off
  bool best_is_max = false;                        // mode "max" (else "min")
  std::int64_t run_start_time_ns = 0;              // origin of the minute grid (the first run's start)
};

/// The candidates to delete, in the input's order. With every rule off only the newest and pinned
/// candidates are kept. Preconditions: files are distinct. Never throws for valid input.
std::vector<std::string> retention_to_delete(const std::vector<RetentionCandidate>& candidates,
                                             const RetentionPolicy& policy);

}  // namespace anvil
