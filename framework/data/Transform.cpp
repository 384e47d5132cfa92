#include "framework/data/Transform.h"

#include <cstring>
#include <utility>

#include "framework/core/Error.h"

namespace anvil {
namespace {

std::uint64_t mix64(std::uint64_t z) {  // splitmix64's finalizer: bijective
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Row k of `t` ([B, ...]) as a fresh tensor of shape [...].
Tensor row_copy(const Tensor& t, std::int64_t k) {
  std::vector<std::int64_t> dims(t.shape().dims().begin() + 1, t.shape().dims().end());
  Tensor out = Tensor::empty(Shape(std::move(dims)), t.dtype());
  const std::size_t bytes = out.nbytes();
  if (bytes) std::memcpy(out.data_ptr(), static_cast<const char*>(t.data_ptr()) + static_cast<std::size_t>(k) * bytes, bytes);
  return out;
}

// Stacks equally shaped tensors into [B, ...]; `what` names the field for errors.
Tensor stack(const std::vector<Tensor>& items, const char* what) {
  const Tensor& first = items.front();
  for (std::size_t k = 1; k < items.size(); ++k)
    ANVIL_CHECK(items[k].shape() == first.shape() && items[k].dtype() == first.dtype(),
                "transformed examples disagree: {} of example 0 is {} but of example {} is {}", what, first.desc(), k,
                items[k].desc());
  std::vector<std::int64_t> dims{static_cast<std::int64_t>(items.size())};
  dims.insert(dims.end(), first.shape().dims().begin(), first.shape().dims().end());
  Tensor out = Tensor::empty(Shape(std::move(dims)), first.dtype());
  const std::size_t bytes = first.nbytes();
  char* dst = static_cast<char*>(out.data_ptr());
  for (std::size_t k = 0; k < items.size(); ++k)
    if (bytes) std::memcpy(dst + k * bytes, items[k].data_ptr(), bytes);
  return out;
}

}  // namespace

Compose::Compose(std::vector<std::shared_ptr<const Transform>> transforms) : transforms_(std::move(transforms)) {
  for (std::size_t i = 0; i < transforms_.size(); ++i)
    ANVIL_CHECK(transforms_[i] != nullptr, "Compose: transform {} of {} is null", i, transforms_.size());
}

void Compose::apply(Sample& sample, Generator& gen) const {
  for (const auto& t : transforms_) t->apply(sample, gen);
}

std::string Compose::name() const {
  std::string s = "Compose(";
  for (std::size_t i = 0; i < transforms_.size(); ++i) {
    if (i) s += ", ";
    s += transforms_[i]->name();
  }
  s += ")";
  return s;
}

Generator sample_generator(std::uint64_t seed, std::int64_t epoch, std::int64_t example) {
  std::uint64_t z = mix64(seed ^ 0x243f6a8885a308d3ULL);  // a constant apart from the shuffle stream's
  z = mix64(z + 0x9e3779b97f4a7c15ULL * (static_cast<std::uint64_t>(epoch) + 1));
  z = mix64(z ^ (0xd1b54a32d192ed03ULL * (static_cast<std::uint64_t>(example) + 1)));
  return Generator(z);
}

Batch transform_batch(const Transform& transform, const Batch& batch, std::span<const std::int64_t> indices,
                      std::uint64_t seed, std::int64_t epoch) {
  const std::int64_t b = batch.data.dim(0);
  ANVIL_CHECK(static_cast<std::int64_t>(indices.size()) == b && batch.label.rank() >= 1 && batch.label.dim(0) == b,
              "{} indices for a batch with data {} and label {}", indices.size(), batch.data.desc(), batch.label.desc());
  ANVIL_CHECK(b > 0, "empty batch (data {})", batch.data.desc());
  std::vector<Tensor> data(static_cast<std::size_t>(b)), labels(static_cast<std::size_t>(b));
  for (std::int64_t k = 0; k < b; ++k) {
    Sample s{row_copy(batch.data, k), row_copy(batch.label, k)};
    Generator gen = sample_generator(seed, epoch, indices[static_cast<std::size_t>(k)]);
    transform.apply(s, gen);
    ANVIL_CHECK(s.data.defined() && s.label.defined(), "transform {} left example {} undefined", transform.name(), k);
    data[static_cast<std::size_t>(k)] = std::move(s.data);
    labels[static_cast<std::size_t>(k)] = std::move(s.label);
  }
  return Batch{stack(data, "data"), stack(labels, "label")};
}

}  // namespace anvil
