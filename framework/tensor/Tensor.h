// Tensor: a cheap value handle (shared_ptr) over a TensorImpl that views a Storage.
//
// Layout is always row-major and contiguous (activations NCHW, conv weights OIHW, Dense weights
// [out, in]). Views (reshape, narrow along dim 0) share storage with an element offset. Copying a
// Tensor copies the handle, not the data; use clone() for a deep copy.
//
// Autograd state lives here too: a leaf created by the user may require grad and then collects
// gradients in grad(); a tensor produced by a differentiable op carries its grad_fn (the Node that
// computes its inputs' gradients). The autograd machinery itself is in framework/autograd.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "framework/core/DType.h"
#include "framework/core/Device.h"
#include "framework/core/Error.h"
#include "framework/core/Shape.h"
#include "framework/tensor/Storage.h"

namespace anvil {

namespace autograd {
class Node;
}

class Tensor;

/// Shared state behind a Tensor handle. Users work with Tensor; ops and autograd read the fields.
struct TensorImpl {
  std::shared_ptr<Storage> storage;
  std::size_t offset = 0;  // in elements
  Shape shape;
  DType dtype = DType::kF32;
  bool requires_grad = false;                         // meaningful for leaves
  std::shared_ptr<TensorImpl> grad;                   // accumulated gradient of a leaf
  std::shared_ptr<autograd::Node> grad_fn;            // producer, for non-leaves
  std::shared_ptr<autograd::Node> grad_accumulator;   // cached AccumulateGrad node of a leaf
};

class Tensor {
 public:
  /// An undefined tensor (defined() == false), used for "no tensor" (e.g. an absent bias).
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- factories (host memory) ----
  /// Uninitialised tensor.
  static Tensor empty(const Shape& shape, DType dtype = DType::kF32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::kF32);
  static Tensor ones(const Shape& shape, DType dtype = DType::kF32);
  /// Every element equal to `value` (converted to dtype).
  static Tensor full(const Shape& shape, double value, DType dtype = DType::kF32);
  /// 0-d tensor holding `value`.
  static Tensor scalar(double value, DType dtype = DType::kF32);
  /// Copies `values` into a new tensor of `shape`; throws when the element count differs.
  template <typename T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape);

  // ---- metadata ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return checked().shape; }
  /// Dimension i (negative counts from the end).
  std::int64_t dim(std::int64_t i) const { return shape()[i]; }
  std::size_t rank() const { return shape().rank(); }
  std::int64_t numel() const { return shape().numel(); }
  DType dtype() const { return checked().dtype; }
  Device device() const { return checked().storage->device(); }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype()); }
  /// "float32[64,1,32,32]" — for error messages.
  std::string desc() const;

  // ---- data access (host) ----
  /// Address of the first element, in the memory of device(): a device address for a GPU tensor.
  void* data_ptr() const;
  /// Typed host pointer; throws anvil::Error when T does not match dtype() or when the tensor lives on a
  /// GPU (host code must not dereference device memory: copy with to(Device::cpu()) or use to_vector()).
  template <typename T>
  T* data() const;
  /// Value of a one-element tensor as double; throws otherwise.
  double item() const;
  /// Copies the elements out, converted to T.
  template <typename T>
  std::vector<T> to_vector() const;

  // ---- copies and views (not recorded by autograd; see framework/ops for differentiable ones) ----
  /// Deep copy with the same shape and dtype (no autograd history).
  Tensor clone() const;
  /// Copies `src` (same shape, any compute dtype) into this tensor's memory.
  void copy_from(const Tensor& src);
  /// Converted copy (clone when dtype is already `dtype`).
  Tensor to(DType dtype) const;
  /// Sets every element to `value`.
  void fill_(double value);
  /// View with a new shape of equal numel, sharing storage. Throws naming both shapes otherwise.
  Tensor view(const Shape& shape) const;
  /// View of rows [start, start+length) along dim 0, sharing storage.
  Tensor narrow0(std::int64_t start, std::int64_t length) const;
  /// Makes this tensor (and every handle sharing its impl) view `src`'s storage, shape and dtype,
  /// keeping its autograd identity (requires_grad, accumulator). Drops a gradient of another shape/dtype.
  void set_data(const Tensor& src);
  /// Same storage and shape, but without autograd history (a fresh leaf).
  Tensor detach() const;
  /// True when both handles view the same memory.
  bool shares_storage(const Tensor& o) const;

  // ---- autograd ----
  /// A leaf that requires grad collects gradients in grad(). Only leaves may be changed.
  void set_requires_grad(bool r);
  /// Leaf with requires_grad, or any tensor produced from one by a recorded op.
  bool requires_grad() const;
  bool is_leaf() const { return checked().grad_fn == nullptr; }
  /// Accumulated gradient (undefined until a backward pass reaches this leaf).
  Tensor grad() const;
  void set_grad(const Tensor& g);
  /// Drops the accumulated gradient (zero_grad).
  void zero_grad();
  const std::shared_ptr<autograd::Node>& grad_fn() const { return checked().grad_fn; }

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& o) const { return impl_ == o.impl_; }

  // ---- devices (issue 8) ----
  /// Copy of this tensor on `device` (same shape and dtype, no autograd history); returns *this
  /// unchanged when it already lives there. Host <-> GPU copies go through pinned staging buffers.
  /// Throws anvil::Error "... Anvil was built without the CUDA backend" for a GPU in a CPU-only build.
  /// Host-side accessors item(), to_vector(), clone() and copy_from() also work on device tensors
  /// (they copy through the host); data_ptr() of a device tensor is a device address, and data<T>()
  /// of one throws.
  Tensor to(const Device& device) const;
  /// to(default_device()) — the device chosen with anvil::set_context (framework/core/Context.h).
  Tensor to_default_device() const;

 private:
  TensorImpl& checked() const;
  std::shared_ptr<TensorImpl> impl_;
};

/// An ordered list of (name, tensor) pairs: parameters, buffers, optimizer state, checkpoint entries.
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// ---- template definitions ----
template <typename T>
T* Tensor::data() const {
  ANVIL_CHECK(dtype_of<T>() == dtype(), "tensor {} accessed as {}", desc(), dtype_name(dtype_of<T>()));
  ANVIL_CHECK(device().is_cpu(),
              "tensor {} lives on {}: data<T>() gives host access only (copy it with to(Device::cpu()) or to_vector())",
              desc(), device().str());
  return static_cast<T*>(data_ptr());
}

template <typename T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape) {
  ANVIL_CHECK(static_cast<std::int64_t>(values.size()) == shape.numel(),
              "{} values do not fill shape {}", values.size(), shape.str());
  Tensor t = empty(shape, dtype_of<T>());
  T* p = t.data<T>();
  for (std::size_t i = 0; i < values.size(); ++i) p[i] = values[i];
  return t;
}

}  // namespace anvil
