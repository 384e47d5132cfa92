// Node: one recorded operation in the define-by-run graph.
//
// A differentiable op that produced tensor `y` from inputs x_0..x_k records a Node as y's grad_fn.
// `next[i]` is where x_i's gradient goes: x_i's own grad_fn, the AccumulateGrad node of a leaf that
// requires grad, or null when x_i needs no gradient. Every Anvil op has exactly one differentiable
// output, so apply() takes one gradient and returns one gradient per input.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "framework/tensor/Tensor.h"

namespace anvil::autograd {

class Node {
 public:
  virtual ~Node() = default;
  /// Given dL/dy, returns dL/dx_i for each input (same order as `next`; undefined where next[i] is null
  /// or the op does not differentiate w.r.t. that input).
  virtual std::vector<Tensor> apply(const Tensor& grad_output) = 0;
  /// Op name for error messages and graph dumps, e.g. "Conv2dBackward".
  virtual std::string name() const = 0;
  /// Frees the tensors saved for backward; called by the engine once apply() ran (unless retain_graph).
  virtual void release_saved() {}

  std::vector<std::shared_ptr<Node>> next;
  /// Set by the engine once saved tensors were freed; a later apply() is an error.
  bool released = false;
};

/// Sink node of a leaf tensor: adds the incoming gradient into the leaf's grad().
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(const std::shared_ptr<TensorImpl>& leaf) : leaf_(leaf) {}
  std::vector<Tensor> apply(const Tensor& grad_output) override;
  std::string name() const override { return "AccumulateGrad"; }

 private:
  std::weak_ptr<TensorImpl> leaf_;
};

}  // namespace anvil::autograd
