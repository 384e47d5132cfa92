#include "callbacks/CSVLogger.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include <fmt/format.h>

#include "callbacks/MonitorUtil.h"
#include "framework/core/Error.h"
#include "framework/optim/Optimizer.h"

namespace anvil {
namespace {

std::vector<std::string> split(const std::string& line, const std::string& sep) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  for (;;) {
    const std::size_t next = line.find(sep, pos);
    out.push_back(line.substr(pos, next == std::string::npos ? std::string::npos : next - pos));
    if (next == std::string::npos) return out;
    pos = next + sep.size();
  }
}

}  // namespace

CSVLogger::CSVLogger(std::string filename, std::string separator, bool append)
    : filename_(std::move(filename)), sep_(std::move(separator)), append_(append) {
  if (filename_.empty()) throw Error("CSVLogger: filename must not be empty");
  if (sep_.empty()) throw Error("CSVLogger: separator must not be empty");
}

void CSVLogger::on_train_begin(RunContext&) {
  const bool restored = restored_;
  restored_ = false;
  columns_.clear();
  if (!restored) last_epoch_ = 0;
  if (!append_ || !std::filesystem::exists(filename_)) {
    std::ofstream f(filename_, std::ios::trunc);
    if (!f) throw Error(fmt::format("CSVLogger: cannot create '{}'", filename_));
    return;
  }
  std::ifstream in(filename_);
  if (!in) throw Error(fmt::format("CSVLogger: cannot read '{}'", filename_));
  std::vector<std::string> kept;
  std::string line;
  bool dropped = false;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (columns_.empty() && kept.empty()) {
      std::vector<std::string> head = split(line, sep_);
      if (!head.empty() && head.front() == "epoch") {
        columns_.assign(head.begin() + 1, head.end());
        kept.push_back(line);
        continue;
      }
    }
    if (restored) {
      const std::string first = split(line, sep_).front();
      std::int64_t e = 0;
      try {
        e = std::stoll(first);
      } catch (const std::exception&) {
        e = 0;
      }
      if (e > last_epoch_) {
        dropped = true;
        continue;
      }
    }
    kept.push_back(line);
  }
  in.close();
  if (dropped) {
    const std::string tmp = filename_ + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      for (const auto& l : kept) out << l << '\n';
      out.flush();
      if (!out) throw Error(fmt::format("CSVLogger: cannot write '{}'", tmp));
    }
    std::error_code ec;
    std::filesystem::rename(tmp, filename_, ec);
    if (ec) throw Error(fmt::format("CSVLogger: cannot replace '{}': {}", filename_, ec.message()));
  }
  if (kept.empty()) columns_.clear();
}

void CSVLogger::on_train_epoch_end(RunContext& ctx) {
  const CallbackParams& p = ctx.original_args();
  std::map<std::string, double> values;
  if (auto loss = cbutil::train_loss(ctx)) values["loss"] = *loss;
  if (p.optimizer != nullptr) {
    values["lr"] = p.optimizer->current_learning_rate();
    if (p.optimizer->num_groups() > 1) {
      const std::vector<double> lrs = p.optimizer->current_learning_rates();
      for (std::size_t g = 0; g < lrs.size(); ++g) values[fmt::format("lr_group{}", g)] = lrs[g];
    }
  }
  for (const auto& [k, v] : p.eval_results) {
    // A metric named like a train column (the Loss metric is "loss") goes under "eval_<name>".
    const std::string key = (k == "loss" || k == "lr") ? "eval_" + k : k;
    values.emplace(key, v);
  }
  if (columns_.empty()) {
    for (const auto& [k, v] : values) columns_.push_back(k);
    std::string header = "epoch";
    for (const auto& c : columns_) header += sep_ + c;
    append_line(header);
  }
  std::string row = fmt::format("{}", p.cur_epoch_num);
  for (const auto& c : columns_) {
    row += sep_;
    if (auto it = values.find(c); it != values.end()) row += cbutil::format_double(it->second);
  }
  append_line(row);
  last_epoch_ = p.cur_epoch_num;
}

void CSVLogger::append_line(const std::string& line) {
  std::ofstream f(filename_, std::ios::app);
  f << line << '\n';
  f.flush();
  if (!f) throw Error(fmt::format("CSVLogger: cannot write '{}'", filename_));
}

std::string CSVLogger::state() const { return fmt::format("{}", last_epoch_); }

void CSVLogger::load_state(const std::string& state) {
  try {
    std::size_t used = 0;
    const std::int64_t e = std::stoll(state, &used);
    if (used != state.size()) throw Error("");
    last_epoch_ = e;
  } catch (const std::exception&) {
    throw Error(fmt::format("CSVLogger: malformed state '{}'", state));
  }
  restored_ = true;
}

}  // namespace anvil
