// The backward engine: walks the graph from a root iteratively (no recursion), in dependency order.
#pragma once

#include "framework/tensor/Tensor.h"

namespace anvil::autograd {

/// Computes gradients of `root` w.r.t. every leaf that requires grad and adds them into the leaves'
/// grad() (gradients accumulate across calls until zero_grad()).
/// `grad_root` is dL/droot; when undefined, root must have one element and the gradient is 1.
/// Saved tensors are freed as nodes run unless `retain_graph`; a second backward through a freed
/// graph throws anvil::Error. Throws when root does not require grad.
void backward(const Tensor& root, const Tensor& grad_root = Tensor(), bool retain_graph = false);

}  // namespace anvil::autograd

namespace anvil {
using autograd::backward;
}
