#include "framework/tensor/Tensor.h"

#include <algorithm>
#include <cstring>

#include "framework/core/Context.h"
#include "framework/tensor/DeviceMemory.h"

namespace anvil {
namespace {

// Calls f(T{}) with the C++ type of a numeric dtype.
template <typename F>
void visit_numeric(DType t, const char* what, F&& f) {
  switch (t) {
    case DType::kF32: f(float{}); return;
    case DType::kF64: f(double{}); return;
    case DType::kI32: f(std::int32_t{}); return;
    case DType::kI64: f(std::int64_t{}); return;
    case DType::kU8: f(std::uint8_t{}); return;
    default: break;
  }
  throw Error(std::string(what) + ": unsupported dtype " + dtype_name(t));
}

}  // namespace

TensorImpl& Tensor::checked() const {
  ANVIL_CHECK(impl_ != nullptr, "operation on an undefined tensor");
  return *impl_;
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = Storage::allocate(static_cast<std::size_t>(shape.numel()) * dtype_size(dtype), device);
  impl->shape = shape;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  if (t.nbytes()) std::memset(t.data_ptr(), 0, t.nbytes());
  return t;
}

Tensor Tensor::ones(const Shape& shape, DType dtype) { return full(shape, 1.0, dtype); }

Tensor Tensor::full(const Shape& shape, double value, DType dtype) {
  Tensor t = empty(shape, dtype);
  t.fill_(value);
  return t;
}

Tensor Tensor::scalar(double value, DType dtype) { return full(Shape{}, value, dtype); }

std::string Tensor::desc() const {
  if (!impl_) return "undefined";
  return dtype_name(impl_->dtype) + impl_->shape.str();
}

void* Tensor::data_ptr() const {
  const auto& im = checked();
  return static_cast<char*>(im.storage->data()) + im.offset * dtype_size(im.dtype);
}

double Tensor::item() const {
  ANVIL_CHECK(numel() == 1, "item() needs a one-element tensor, got {}", desc());
  if (!device().is_cpu()) return to(Device::cpu()).item();
  double v = 0;
  visit_numeric(dtype(), "Tensor::item", [&](auto z) { v = static_cast<double>(*static_cast<decltype(z)*>(data_ptr())); });
  return v;
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  if (!device().is_cpu()) return to(Device::cpu()).to_vector<T>();
  std::vector<T> out(static_cast<std::size_t>(numel()));
  visit_numeric(dtype(), "Tensor::to_vector", [&](auto z) {
    const auto* p = static_cast<const decltype(z)*>(data_ptr());
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<T>(p[i]);
  });
  return out;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<std::int32_t> Tensor::to_vector<std::int32_t>() const;
template std::vector<std::int64_t> Tensor::to_vector<std::int64_t>() const;
template std::vector<std::uint8_t> Tensor::to_vector<std::uint8_t>() const;

Tensor Tensor::clone() const {
  if (!device().is_cpu()) {
    Tensor d = empty(shape(), dtype(), device());
    if (nbytes()) device_memory(device()).copy(d.data_ptr(), device(), data_ptr(), device(), nbytes());
    return d;
  }
  Tensor t = empty(shape(), dtype());
  std::memcpy(t.data_ptr(), data_ptr(), nbytes());
  return t;
}

void Tensor::copy_from(const Tensor& src) {
  ANVIL_CHECK(src.shape() == shape(), "copy from {} into {}: shapes differ", src.desc(), desc());
  if (!device().is_cpu() || !src.device().is_cpu()) {
    // Across devices: bytes move as they are; a dtype conversion happens on the host.
    const Tensor s = src.dtype() == dtype() ? src : src.to(Device::cpu()).to(dtype());
    if (nbytes() && s.data_ptr() != data_ptr())
      device_memory(device().is_cpu() ? s.device() : device()).copy(data_ptr(), device(), s.data_ptr(), s.device(),
                                                                     nbytes());
    return;
  }
  if (src.dtype() == dtype()) {
    if (src.data_ptr() != data_ptr()) std::memmove(data_ptr(), src.data_ptr(), nbytes());
    return;
  }
  const auto n = static_cast<std::size_t>(numel());
  visit_numeric(dtype(), "Tensor::copy_from", [&](auto zd) {
    using D = decltype(zd);
    D* d = static_cast<D*>(data_ptr());
    visit_numeric(src.dtype(), "Tensor::copy_from", [&](auto zs) {
      const auto* s = static_cast<const decltype(zs)*>(src.data_ptr());
      for (std::size_t i = 0; i < n; ++i) d[i] = static_cast<D>(s[i]);
    });
  });
}

Tensor Tensor::to(DType dt) const {
  if (!device().is_cpu()) return to(Device::cpu()).to(dt).to(device());
  Tensor t = empty(shape(), dt);
  t.copy_from(*this);
  return t;
}

void Tensor::fill_(double value) {
  if (!device().is_cpu()) {
    copy_from(full(shape(), value, dtype()));
    return;
  }
  const auto n = static_cast<std::size_t>(numel());
  visit_numeric(dtype(), "Tensor::fill_", [&](auto z) {
    using T = decltype(z);
    T* p = static_cast<T*>(data_ptr());
    const T v = static_cast<T>(value);
    for (std::size_t i = 0; i < n; ++i) p[i] = v;
  });
}

Tensor Tensor::view(const Shape& s) const {
  ANVIL_CHECK(s.numel() == numel(), "cannot view {} as shape {} ({} vs {} elements)", desc(), s.str(), numel(),
              s.numel());
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = checked().storage;
  impl->offset = checked().offset;
  impl->shape = s;
  impl->dtype = dtype();
  return Tensor(std::move(impl));
}

Tensor Tensor::narrow0(std::int64_t start, std::int64_t length) const {
  ANVIL_CHECK(rank() >= 1, "narrow0 on a 0-d tensor");
  ANVIL_CHECK(start >= 0 && length >= 0 && start + length <= dim(0), "rows [{}, {}) out of range for {}", start,
              start + length, desc());
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = checked().storage;
  impl->shape = shape();
  impl->shape[0] = length;
  impl->dtype = dtype();
  impl->offset = checked().offset + static_cast<std::size_t>(start * (numel() / std::max<std::int64_t>(dim(0), 1)));
  return Tensor(std::move(impl));
}

void Tensor::set_data(const Tensor& src) {
  TensorImpl& im = checked();
  ANVIL_CHECK(src.defined(), "set_data from an undefined tensor into {}", desc());
  im.storage = src.impl()->storage;
  im.offset = src.impl()->offset;
  if (im.grad && (im.grad->shape != src.shape() || im.grad->dtype != src.dtype())) im.grad.reset();
  im.shape = src.shape();
  im.dtype = src.dtype();
}

Tensor Tensor::detach() const { return view(shape()); }

bool Tensor::shares_storage(const Tensor& o) const {
  return defined() && o.defined() && impl_->storage == o.impl_->storage;
}

void Tensor::set_requires_grad(bool r) {
  ANVIL_CHECK(is_leaf(), "requires_grad can only be changed on a leaf tensor, {} has a grad_fn", desc());
  ANVIL_CHECK(!r || is_compute_type(dtype()), "only float tensors can require grad, got {}", desc());
  checked().requires_grad = r;
}

bool Tensor::requires_grad() const { return checked().requires_grad || checked().grad_fn != nullptr; }

Tensor Tensor::grad() const { return Tensor(checked().grad); }

void Tensor::set_grad(const Tensor& g) {
  if (g.defined())
    ANVIL_CHECK(g.shape() == shape(), "gradient {} does not match tensor {}", g.desc(), desc());
  checked().grad = g.impl_ptr();
}

void Tensor::zero_grad() { checked().grad.reset(); }

Tensor Tensor::to(const Device& device) const {
  if (this->device() == device) return *this;
  Tensor t = empty(shape(), dtype(), device);
  if (nbytes()) {
    const Device& gpu = device.is_cpu() ? this->device() : device;
    device_memory(gpu).copy(t.data_ptr(), device, data_ptr(), this->device(), nbytes());
  }
  return t;
}

Tensor Tensor::to_default_device() const { return to(default_device()); }

}  // namespace anvil
