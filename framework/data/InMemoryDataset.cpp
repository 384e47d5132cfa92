#include "framework/data/InMemoryDataset.h"

#include <cstring>
#include <utility>
#include <vector>

#include "framework/core/Error.h"

namespace anvil {

InMemoryDataset::InMemoryDataset(Tensor data, Tensor labels) : data_(std::move(data)), labels_(std::move(labels)) {
  ANVIL_CHECK(data_.defined(), "data tensor is undefined");
  ANVIL_CHECK(labels_.defined(), "labels tensor is undefined");
  ANVIL_CHECK(data_.dtype() == DType::kF32 && data_.rank() >= 1,
              "data must be float32 [N, ...], got {}", data_.desc());
  ANVIL_CHECK(labels_.dtype() == DType::kI32 && labels_.rank() == 1,
              "labels must be int32 [N], got {}", labels_.desc());
  ANVIL_CHECK(data_.dim(0) == labels_.dim(0), "data has {} examples ({}) but labels has {} ({})", data_.dim(0),
              data_.desc(), labels_.dim(0), labels_.desc());
}

std::int64_t InMemoryDataset::size() const { return data_.dim(0); }

Batch InMemoryDataset::get_batch(std::span<const std::int64_t> indices) const {
  const std::int64_t n = size();
  ANVIL_CHECK(!indices.empty(), "indices must not be empty (dataset of {} examples)", n);
  for (std::int64_t i : indices)
    ANVIL_CHECK(i >= 0 && i < n, "index {} is out of range for a dataset of {} examples", i, n);

  const auto b = static_cast<std::int64_t>(indices.size());
  std::vector<std::int64_t> dims = data_.shape().dims();
  dims[0] = b;
  Batch batch{Tensor::empty(Shape(std::move(dims)), DType::kF32), Tensor::empty(Shape{b}, DType::kI32)};

  // One example is a contiguous row of `row` floats (row-major layout).
  const std::size_t row = n > 0 ? static_cast<std::size_t>(data_.numel() / n) : 0;
  const float* src = data_.data<float>();
  const std::int32_t* src_label = labels_.data<std::int32_t>();
  float* dst = batch.data.data<float>();             // [B, ...]
  std::int32_t* dst_label = batch.label.data<std::int32_t>();  // [B]
  for (std::size_t k = 0; k < indices.size(); ++k) {
    const auto i = static_cast<std::size_t>(indices[k]);
    if (row) std::memcpy(dst + k * row, src + i * row, row * sizeof(float));
    dst_label[k] = src_label[i];
  }
  return batch;
}

}  // namespace anvil
