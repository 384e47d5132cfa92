// MaxPool2d and AvgPool2d (MindSpore nn.MaxPool2d / nn.AvgPool2d).
#pragma once

#include <string>

#include "framework/backend/Backend.h"
#include "framework/nn/Cell.h"

namespace anvil::nn {

struct PoolOptions {
  /// 0 means "equal to kernel_size" (PyTorch's default). MindSpore's default is 1; pass it explicitly.
  std::int64_t stride = 0;
  /// "valid" (MindSpore's default) or "same" (output = ceil(in/stride); padding never counts).
  std::string pad_mode = "valid";
};

class Pool2dCell : public Cell {
 public:
  /// Throws on a non-positive kernel/stride or an unknown pad_mode.
  Pool2dCell(PoolKind kind, std::int64_t kernel_size, const PoolOptions& options);
  /// x [N, C, H, W] -> [N, C, P, Q].
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

 private:
  PoolKind kind_;
  std::int64_t k_, stride_;
  std::string pad_mode_;
};

class MaxPool2d : public Pool2dCell {
 public:
  explicit MaxPool2d(std::int64_t kernel_size, const PoolOptions& options = {})
      : Pool2dCell(PoolKind::kMax, kernel_size, options) {}
  std::string type_name() const override { return "MaxPool2d"; }
};

class AvgPool2d : public Pool2dCell {
 public:
  explicit AvgPool2d(std::int64_t kernel_size, const PoolOptions& options = {})
      : Pool2dCell(PoolKind::kAvg, kernel_size, options) {}
  std::string type_name() const override { return "AvgPool2d"; }
};

}  // namespace anvil::nn
