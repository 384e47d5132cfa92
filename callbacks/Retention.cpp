#include "callbacks/Retention.h"

#include <algorithm>
#include <cmath>
#include <map>

namespace anvil {

namespace {

// Floor division for a possibly negative numerator (a clock set back before the run's start).
std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

}  // namespace

std::vector<std::string> retention_to_delete(const std::vector<RetentionCandidate>& candidates,
                                             const RetentionPolicy& policy) {
  const std::size_t n = candidates.size();
  std::vector<bool> keep(n, false);
  if (n == 0) return {};

  // Newest first by (global_step, wall_time_ns).
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const auto& x = candidates[a];
    const auto& y = candidates[b];
    if (x.global_step != y.global_step) return x.global_step > y.global_step;
    return x.wall_time_ns > y.wall_time_ns;
  });
  keep[order[0]] = true;  // the newest (latest pointer)
  for (std::size_t i = 0; i < n; ++i)
    if (candidates[i].pinned) keep[i] = true;

  if (policy.keep_checkpoint_max > 0)
    for (std::size_t r = 0; r < n && static_cast<std::int64_t>(r) < policy.keep_checkpoint_max; ++r)
      keep[order[r]] = true;

  if (policy.keep_checkpoint_per_n_minutes > 0) {
    const std::int64_t cell_ns = policy.keep_checkpoint_per_n_minutes * 60LL * 1000000000LL;
    std::map<std::int64_t, std::size_t> earliest;  // grid cell -> candidate
    for (std::size_t i = 0; i < n; ++i) {
      const std::int64_t cell = floor_div(candidates[i].wall_time_ns - policy.run_start_time_ns, cell_ns);
      auto it = earliest.find(cell);
      if (it == earliest.end()) {
        earliest.emplace(cell, i);
      } else {
        const auto& cur = candidates[it->second];
        const auto& c = candidates[i];
        if (c.wall_time_ns < cur.wall_time_ns ||
            (c.wall_time_ns == cur.wall_time_ns && c.global_step < cur.global_step))
          it->second = i;
      }
    }
    for (const auto& [cell, i] : earliest) keep[i] = true;
  }

  if (policy.keep_best_k > 0) {
    std::vector<std::size_t> scored;
    for (std::size_t r = 0; r < n; ++r)  // newest first, so a stable sort lets the newer win ties
      if (candidates[order[r]].metric && !std::isnan(*candidates[order[r]].metric)) scored.push_back(order[r]);
    std::stable_sort(scored.begin(), scored.end(), [&](std::size_t a, std::size_t b) {
      const double x = *candidates[a].metric, y = *candidates[b].metric;
      return policy.best_is_max ? x > y : x < y;
    });
    for (std::size_t r = 0; r < scored.size() && static_cast<std::int64_t>(r) < policy.keep_best_k; ++r)
      keep[scored[r]] = true;
  }

  std::vector<std::string> out;
  for (std::size_t i = 0; i < n; ++i)
    if (!keep[i]) out.push_back(candidates[i].file);
  return out;
}

}  // namespace anvil
