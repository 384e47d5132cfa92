// Embedding: a lookup table of vocab_size vectors of embedding_size (MindSpore nn.Embedding,
// PyTorch nn.Embedding).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "framework/core/Random.h"
#include "framework/nn/Cell.h"
#include "framework/nn/Initializer.h"

namespace anvil::nn {

struct EmbeddingOptions {
  /// A row that is zeroed at construction and never receives a gradient: PyTorch's padding_idx
  /// (MindSpore's nn.Embedding only zero-initialises that row and still trains it). Negative values
  /// count from the end (padding_idx + vocab_size). Default: none.
  std::optional<std::int64_t> padding_idx = std::nullopt;
  /// Default (null): Normal(sigma = 0.01), MindSpore's embedding_table='normal'.
  std::shared_ptr<Initializer> embedding_init = nullptr;
  /// Generator for initialization; null uses default_generator().
  Generator* generator = nullptr;
};

class Embedding : public Cell {
 public:
  /// Parameter "embedding_table" [vocab_size, embedding_size] (MindSpore's name, so checkpoints
  /// interoperate; PyTorch calls it "weight"). Throws when a size is not positive or padding_idx is
  /// outside [-vocab_size, vocab_size).
  Embedding(std::int64_t vocab_size, std::int64_t embedding_size, const EmbeddingOptions& options = {});
  /// indices [S...] int32 or int64 with values in [0, vocab_size) -> [S..., embedding_size].
  /// The gradient w.r.t. embedding_table is a scatter-add into the rows used (padding_idx excluded).
  /// Throws anvil::Error naming the layer, the offending index value, its position and vocab_size when
  /// an index is out of range, and naming the tensor when indices are not integers.
  Tensor forward(const Tensor& indices) override;
  std::string type_name() const override { return "Embedding"; }
  std::string extra_repr() const override;
  Tensor embedding_table() const { return table_; }
  std::int64_t vocab_size() const { return vocab_; }
  std::int64_t embedding_size() const { return dim_; }
  /// The normalized padding row (in [0, vocab_size)), or -1 when there is none.
  std::int64_t padding_idx() const { return padding_; }

 private:
  std::int64_t vocab_, dim_;
  std::int64_t padding_ = -1;
  Tensor table_;
};

}  // namespace anvil::nn
