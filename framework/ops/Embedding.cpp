#include "framework/ops/Embedding.h"

#include "framework/autograd/Function.h"
#include "framework/backend/Backend.h"
#include "framework/ops/Trace.h"

namespace anvil::ops {
namespace {

class EmbeddingBackward final : public autograd::Node {
 public:
  EmbeddingBackward(Backend& bk, Tensor indices, Shape table_shape, std::int64_t padding_idx)
      : bk_(bk), indices_(std::move(indices)), table_shape_(std::move(table_shape)), padding_idx_(padding_idx) {}
  std::vector<Tensor> apply(const Tensor& dy) override {
    return {bk_.embedding_backward(dy, indices_, table_shape_, padding_idx_), Tensor()};
  }
  std::string name() const override { return "EmbeddingBackward"; }
  void release_saved() override { indices_ = Tensor(); }

 private:
  Backend& bk_;
  Tensor indices_;
  Shape table_shape_;
  std::int64_t padding_idx_;
};

}  // namespace

Tensor embedding(const Tensor& table, const Tensor& indices, std::int64_t padding_idx) {
  ANVIL_CHECK(table.defined() && indices.defined(), "table and indices must be defined");
  ANVIL_CHECK(table.rank() == 2 && is_compute_type(table.dtype()),
              "table must be a float [vocab_size, embedding_size] tensor, got {}", table.desc());
  ANVIL_CHECK(indices.dtype() == DType::kI32 || indices.dtype() == DType::kI64,
              "indices must be int32 or int64, got {}", indices.desc());
  ANVIL_CHECK(table.dim(0) > 0 && table.dim(1) > 0, "table {} must have positive vocab_size and embedding_size",
              table.desc());
  const std::int64_t v = table.dim(0);
  ANVIL_CHECK(padding_idx >= -1 && padding_idx < v, "padding_idx {} is outside [0, {}) (vocab_size {}; -1 = none)",
              padding_idx, v, v);
  Backend& bk = backend_for_inputs({&table, &indices});
  Tensor y = bk.embedding_forward(table, indices);
  // Clone the indices: the caller may refill its buffer before backward runs.
  if (autograd::any_requires_grad({&table}))
    autograd::set_history(y, std::make_shared<EmbeddingBackward>(bk, indices.clone(), table.shape(), padding_idx),
                          {&table, nullptr});
  if (OpTracer* t = current_tracer())
    t->on_op({.kind = OpKind::kEmbedding, .inputs = {table, indices}, .output = y});
  return y;
}

}  // namespace anvil::ops
