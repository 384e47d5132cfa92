#include "framework/nn/layers/Embedding.h"

#include "framework/ops/Embedding.h"

namespace anvil::nn {

Embedding::Embedding(std::int64_t vocab_size, std::int64_t embedding_size, const EmbeddingOptions& o)
    : vocab_(vocab_size), dim_(embedding_size) {
  ANVIL_CHECK(vocab_ > 0 && dim_ > 0, "Embedding: vocab_size {} and embedding_size {} must be positive", vocab_, dim_);
  if (o.padding_idx) {
    const std::int64_t p = *o.padding_idx;
    ANVIL_CHECK(p >= -vocab_ && p < vocab_, "Embedding: padding_idx {} is outside [-{}, {}) (vocab_size {})", p, vocab_,
                vocab_, vocab_);
    padding_ = p < 0 ? p + vocab_ : p;
  }
  Generator& gen = o.generator ? *o.generator : default_generator();
  const Normal default_init(0.01);
  Tensor t = initialized(Shape{vocab_, dim_},
                         o.embedding_init ? *o.embedding_init : static_cast<const Initializer&>(default_init), gen);
  if (padding_ >= 0) {
    float* row = t.data<float>() + padding_ * dim_;
    for (std::int64_t j = 0; j < dim_; ++j) row[j] = 0.0f;
  }
  table_ = register_parameter("embedding_table", t);
}

Tensor Embedding::forward(const Tensor& indices) {
  ANVIL_CHECK(indices.defined() && (indices.dtype() == DType::kI32 || indices.dtype() == DType::kI64),
              "Embedding({}, {}): indices must be int32 or int64, got {}", vocab_, dim_,
              indices.defined() ? indices.desc() : "undefined");
  try {
    return ops::embedding(table_, indices, padding_);
  } catch (const Error& e) {
    std::string msg = fmt::format("Embedding({}, {}): ", vocab_, dim_);
    msg += e.what();
    throw Error(msg);
  }
}

std::string Embedding::extra_repr() const {
  std::string s = fmt::format("vocab_size={}, embedding_size={}", vocab_, dim_);
  if (padding_ >= 0) s += fmt::format(", padding_idx={}", padding_);
  return s;
}

}  // namespace anvil::nn
