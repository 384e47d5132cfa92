// Helpers shared by the train, callbacks and integration tests: synthetic classification data, a small
// MLP Model, and a callback that records the hooks it sees.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "framework/core/Random.h"
#include "framework/data/DataLoader.h"
#include "framework/data/InMemoryDataset.h"
#include "framework/metrics/Accuracy.h"
#include "framework/metrics/Loss.h"
#include "framework/nn/losses/LossCell.h"
#include "framework/optim/Momentum.h"
#include "framework/train/Callback.h"
#include "framework/train/Model.h"
#include "models/MLP.h"

namespace anvil::testutil {

/// `n` points in `dim` dimensions, labelled by argmax(W x) for a random W [classes, dim]: linearly
/// separable by construction. Points whose best and second-best scores differ by less than `margin` are
/// redrawn, so a linear classifier can reach 100%. Deterministic in `seed`.
inline std::shared_ptr<InMemoryDataset> separable_dataset(std::int64_t n, std::int64_t dim, std::int64_t classes,
                                                          std::uint64_t seed, double margin = 0.5) {
  Generator g(seed);
  std::vector<double> w(static_cast<std::size_t>(classes * dim));
  for (auto& v : w) v = g.normal();
  std::vector<float> x(static_cast<std::size_t>(n * dim));
  std::vector<std::int32_t> y(static_cast<std::size_t>(n));
  std::vector<double> point(static_cast<std::size_t>(dim)), score(static_cast<std::size_t>(classes));
  for (std::int64_t i = 0; i < n; ++i) {
    for (;;) {
      for (auto& v : point) v = g.normal();
      for (std::int64_t c = 0; c < classes; ++c) {
        double s = 0.0;
        for (std::int64_t d = 0; d < dim; ++d) s += w[c * dim + d] * point[d];
        score[c] = s;
      }
      std::vector<double> sorted = score;
      std::sort(sorted.begin(), sorted.end(), std::greater<>());
      if (sorted[0] - sorted[1] < margin) continue;
      y[i] = static_cast<std::int32_t>(std::max_element(score.begin(), score.end()) - score.begin());
      for (std::int64_t d = 0; d < dim; ++d) x[i * dim + d] = static_cast<float>(point[d]);
      break;
    }
  }
  return std::make_shared<InMemoryDataset>(Tensor::from_vector(x, Shape{n, dim}), Tensor::from_vector(y, Shape{n}));
}

/// A Model around MLP(dim -> hidden -> classes) with softmax cross-entropy, Momentum(lr, 0.9) and
/// {Accuracy, Loss} metrics, initialized from `seed`.
struct MlpSetup {
  std::shared_ptr<models::MLP> net;
  std::shared_ptr<Optimizer> opt;
  std::unique_ptr<Model> model;
};

inline MlpSetup make_mlp_model(std::int64_t dim, std::int64_t hidden, std::int64_t classes, std::uint64_t seed,
                               double lr = 0.05, std::shared_ptr<nn::LossCell> loss = nullptr) {
  Generator g(seed);
  MlpSetup s;
  s.net = std::make_shared<models::MLP>(dim, std::vector<std::int64_t>{hidden}, classes, &g);
  s.opt = std::make_shared<Momentum>(s.net->trainable_params(), lr, 0.9);
  if (!loss) loss = std::make_shared<nn::SoftmaxCrossEntropyWithLogits>();
  s.model = std::make_unique<Model>(s.net, loss, s.opt,
                                    std::vector<std::shared_ptr<Metric>>{std::make_shared<Accuracy>(),
                                                                         std::make_shared<Loss>()});
  return s;
}

/// Records every hook as one string, e.g. "train_step_end e1 s2 g2" (epoch, step in epoch, global step).
class RecordingCallback : public Callback {
 public:
  explicit RecordingCallback(std::vector<std::string>* log, std::string tag = "", bool in_fit_eval = false)
      : log_(log), tag_(std::move(tag)), in_fit_eval_(in_fit_eval) {}

  void on_train_begin(RunContext& c) override { rec("train_begin", c); }
  void on_train_end(RunContext& c) override { rec("train_end", c); }
  void on_train_epoch_begin(RunContext& c) override { rec("train_epoch_begin", c); }
  void on_train_epoch_end(RunContext& c) override { rec("train_epoch_end", c); }
  void on_train_step_begin(RunContext& c) override { rec("train_step_begin", c); }
  void on_train_step_end(RunContext& c) override { rec("train_step_end", c); }
  void on_eval_begin(RunContext& c) override { rec("eval_begin", c); }
  void on_eval_end(RunContext& c) override { rec("eval_end", c); }
  void on_eval_epoch_begin(RunContext& c) override { rec("eval_epoch_begin", c); }
  void on_eval_epoch_end(RunContext& c) override { rec("eval_epoch_end", c); }
  void on_eval_step_begin(RunContext& c) override { rec("eval_step_begin", c); }
  void on_eval_step_end(RunContext& c) override { rec("eval_step_end", c); }
  void on_exception(RunContext& c, const std::exception& e) override {
    last_exception = e.what();
    rec("exception", c);
  }
  bool runs_in_fit_eval() const override { return in_fit_eval_; }

  /// what() of the error the last on_exception received.
  std::string last_exception;

 private:
  void rec(const std::string& hook, RunContext& c) {
    const auto& p = c.original_args();
    log_->push_back(fmt::format("{}{} e{} s{} g{}", tag_, hook, p.cur_epoch_num, p.step_in_epoch, p.cur_step_num));
  }
  std::vector<std::string>* log_;
  std::string tag_;
  bool in_fit_eval_;
};

}  // namespace anvil::testutil
