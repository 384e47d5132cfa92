#include <unordered_map>
#include <vector>

#include "framework/autograd/Engine.h"
#include "framework/autograd/Function.h"
#include "framework/autograd/GradMode.h"
#include "framework/autograd/Node.h"
#include "framework/backend/Backend.h"

namespace anvil::autograd {
namespace {

thread_local bool t_grad_enabled = true;

// dst + src without touching either (gradients may be shared between consumers).
Tensor add_out_of_place(const Tensor& a, const Tensor& b) {
  Tensor out = a.clone();
  backend_for(out.device()).axpy_(out, b, 1.0);
  return out;
}

}  // namespace

bool grad_enabled() { return t_grad_enabled; }
void set_grad_enabled(bool enabled) { t_grad_enabled = enabled; }
NoGradGuard::NoGradGuard() : previous_(t_grad_enabled) { t_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { t_grad_enabled = previous_; }

std::vector<Tensor> AccumulateGrad::apply(const Tensor& grad_output) {
  auto leaf = leaf_.lock();
  if (!leaf) return {};
  ANVIL_CHECK(grad_output.shape() == leaf->shape, "gradient {} does not match leaf shape {}", grad_output.desc(),
              leaf->shape.str());
  if (!leaf->grad) {
    // A fresh buffer: the incoming tensor may be shared with other consumers of the same gradient.
    leaf->grad = grad_output.clone().impl_ptr();
  } else {
    Tensor g(leaf->grad);
    backend_for(g.device()).axpy_(g, grad_output, 1.0);
  }
  return {};
}

bool any_requires_grad(std::initializer_list<const Tensor*> inputs) {
  if (!t_grad_enabled) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

std::shared_ptr<Node> gradient_edge(const Tensor& t) {
  if (!t.defined()) return nullptr;
  TensorImpl* im = t.impl();
  if (im->grad_fn) return im->grad_fn;
  if (!im->requires_grad) return nullptr;
  if (!im->grad_accumulator) im->grad_accumulator = std::make_shared<AccumulateGrad>(t.impl_ptr());
  return im->grad_accumulator;
}

void set_history(Tensor& output, const std::shared_ptr<Node>& node, std::initializer_list<const Tensor*> inputs) {
  node->next.clear();
  node->next.reserve(inputs.size());
  for (const Tensor* t : inputs) node->next.push_back(t ? gradient_edge(*t) : nullptr);
  output.impl()->grad_fn = node;
}

void backward(const Tensor& root, const Tensor& grad_root, bool retain_graph) {
  ANVIL_CHECK(root.defined(), "backward on an undefined tensor");
  ANVIL_CHECK(root.requires_grad(), "backward: {} does not require grad (no recorded graph and not a leaf "
              "with requires_grad)", root.desc());
  Tensor g0 = grad_root;
  if (!g0.defined()) {
    ANVIL_CHECK(root.numel() == 1, "backward: an implicit gradient needs a one-element root, got {}", root.desc());
    g0 = Tensor::full(root.shape(), 1.0, root.dtype());
  } else {
    ANVIL_CHECK(g0.shape() == root.shape(), "backward: gradient {} does not match root {}", g0.desc(), root.desc());
  }
  std::shared_ptr<Node> start = gradient_edge(root);

  // Pass 1: count, for every reachable node, how many edges lead into it.
  std::unordered_map<Node*, int> deps;
  std::vector<Node*> stack{start.get()};
  deps[start.get()] = 0;
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const auto& nx : n->next) {
      if (!nx) continue;
      auto [it, inserted] = deps.try_emplace(nx.get(), 0);
      ++it->second;
      if (inserted) stack.push_back(nx.get());
    }
  }

  // Pass 2: run nodes whose every consumer has contributed its gradient.
  std::unordered_map<Node*, Tensor> grads;
  grads[start.get()] = g0;
  std::vector<std::shared_ptr<Node>> ready{start};
  while (!ready.empty()) {
    std::shared_ptr<Node> n = std::move(ready.back());
    ready.pop_back();
    std::vector<Tensor> in_grads;
    if (auto it = grads.find(n.get()); it != grads.end()) {
      Tensor g = std::move(it->second);
      grads.erase(it);
      ANVIL_CHECK(!n->released, "backward: the graph through {} was already freed by an earlier backward; "
                  "pass retain_graph=true to run backward twice", n->name());
      in_grads = n->apply(g);
      // Leaf accumulators (no next edges) stay usable: gradients accumulate across backward calls.
      if (!retain_graph && !n->next.empty()) {
        n->release_saved();
        n->released = true;
      }
    }
    for (std::size_t i = 0; i < n->next.size(); ++i) {
      const auto& nx = n->next[i];
      if (!nx) continue;
      if (i < in_grads.size() && in_grads[i].defined()) {
        auto it = grads.find(nx.get());
        if (it == grads.end() || !it->second.defined())
          grads[nx.get()] = std::move(in_grads[i]);
        else
          it->second = add_out_of_place(it->second, in_grads[i]);
      }
      // A node with no incoming gradient still runs (as a no-op) so that its inputs' counts drop.
      if (--deps[nx.get()] == 0) ready.push_back(nx);
    }
  }
}

}  // namespace anvil::autograd
