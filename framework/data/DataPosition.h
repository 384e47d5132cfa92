// DataPosition: where a DataLoader stands, enough to resume bit-exactly without replaying batches.
#pragma once

#include <cstdint>

namespace anvil {

/// The loader's place in its stream of batches. Saved in resume checkpoints as
/// `__resume__.data.<loader>` (sampler seed, epoch, batches consumed).
struct DataPosition {
  std::int64_t epoch = 0;  // current epoch (>= 0)
  std::int64_t index = 0;  // index of the next batch next() returns in this epoch (= batches consumed)
  std::uint64_t seed = 0;  // the loader's shuffle seed
  bool operator==(const DataPosition&) const = default;
};

}  // namespace anvil
