// Helpers that differentiable ops use to record themselves in the graph.
#pragma once

#include <initializer_list>
#include <memory>

#include "framework/autograd/Node.h"

namespace anvil::autograd {

/// True when grad mode is on and any defined input requires grad.
bool any_requires_grad(std::initializer_list<const Tensor*> inputs);

/// Where `t`'s gradient must go: its grad_fn, its leaf accumulator (created once and cached), or null.
std::shared_ptr<Node> gradient_edge(const Tensor& t);

/// Wires `node` as the grad_fn of `output` with one next edge per input (inputs may be undefined).
/// Call only when any_requires_grad(inputs) is true.
void set_history(Tensor& output, const std::shared_ptr<Node>& node, std::initializer_list<const Tensor*> inputs);

}  // namespace anvil::autograd
