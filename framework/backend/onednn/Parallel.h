// parallel_for: runs loop chunks on oneDNN's own thread pool (OpenMP in Debian's build), so that the
// backend's hand-written loops use the same threads as its primitives instead of a second pool
// competing for the cores. Internal to the oneDNN backend.
#pragma once

#include <cstdint>
#include <functional>

namespace anvil::onednn_detail {

/// Calls body(begin, end) on disjoint contiguous chunks covering [0, n), one per thread of
/// oneDNN's pool (inline when n is small or the pool has one thread). `body` must not throw.
void parallel_for(std::int64_t n, std::int64_t min_chunk, const std::function<void(std::int64_t, std::int64_t)>& body);

}  // namespace anvil::onednn_detail
