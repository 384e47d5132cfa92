// Differentiable embedding lookup (MindSpore ops.Gather on axis 0 / nn.Embedding; PyTorch F.embedding).
#pragma once

#include "framework/tensor/Tensor.h"

namespace anvil::ops {

/// y [S..., E] = table [V, E] rows picked by indices (int32 or int64, any shape S, values in [0, V)).
/// The gradient w.r.t. table is a scatter-add of dy into the picked rows; the row `padding_idx`
/// (when >= 0) gets none. indices get no gradient.
/// Throws anvil::Error naming the index, its position and V when an index is outside [0, V), and
/// naming the tensors when table is not a float [V, E] or indices are not integers.
Tensor embedding(const Tensor& table, const Tensor& indices, std::int64_t padding_idx = -1);

}  // namespace anvil::ops
