// Batch: one mini-batch as a Dataset produces it and the DataLoader hands it to Model::train.
#pragma once

#include "framework/tensor/Tensor.h"

namespace anvil {

/// A mini-batch of B examples.
///   data:  float32 [B, ...] (for images NCHW: [B, C, H, W])
///   label: int32   [B]      (class indices)
/// Both tensors are freshly allocated host tensors owned by the batch (no storage shared with the dataset).
struct Batch {
  Tensor data;
  Tensor label;
};

}  // namespace anvil
