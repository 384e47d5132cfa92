#include "callbacks/History.h"

#include <sstream>

#include <fmt/format.h>

#include "callbacks/MonitorUtil.h"
#include "framework/core/Error.h"

namespace anvil {

void History::on_train_begin(RunContext&) {
  if (!restored_) {
    epoch_.clear();
    history_.clear();
  }
  restored_ = false;
}

void History::on_train_epoch_end(RunContext& ctx) {
  const CallbackParams& p = ctx.original_args();
  epoch_.push_back(p.cur_epoch_num);
  if (auto loss = cbutil::train_loss(ctx)) history_["net_output"].push_back(*loss);
  for (const auto& [name, value] : p.eval_results) history_[name].push_back(value);
}

std::string History::state() const {
  std::string s = "epoch";
  for (auto e : epoch_) s += fmt::format(" {}", e);
  s += "\n";
  for (const auto& [k, vs] : history_) {
    s += k;
    for (double v : vs) {
      s += ' ';
      s += cbutil::format_double(v);
    }
    s += "\n";
  }
  return s;
}

void History::load_state(const std::string& state) {
  std::istringstream in(state);
  std::string line;
  std::vector<std::int64_t> epochs;
  std::map<std::string, std::vector<double>> hist;
  bool first = true;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::istringstream ls(line);
    std::string key, tok;
    ls >> key;
    if (first) {
      if (key != "epoch") throw Error(fmt::format("History: malformed state (first line '{}')", line));
      while (ls >> tok) {
        try {
          epochs.push_back(std::stoll(tok));
        } catch (const std::exception&) {
          throw Error(fmt::format("History: malformed epoch '{}'", tok));
        }
      }
      first = false;
      continue;
    }
    auto& vs = hist[key];
    while (ls >> tok) vs.push_back(cbutil::parse_double("History", tok));
  }
  if (first) throw Error("History: empty state");
  epoch_ = std::move(epochs);
  history_ = std::move(hist);
  restored_ = true;
}

}  // namespace anvil
