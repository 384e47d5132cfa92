// `anvil ckpt info | verify | diff`.
#include <cmath>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "checkpoint.pb.h"
#include "framework/core/Log.h"
#include "serialization/CheckpointReader.h"
#include "serialization/TensorType.h"
#include "tools/Commands.h"

namespace anvil::tools {
namespace {

std::string human_bytes(std::uint64_t n) {
  if (n < 1024) return fmt::format("{} B", n);
  if (n < (1ull << 20)) return fmt::format("{:.1f} KiB", n / 1024.0);
  if (n < (1ull << 30)) return fmt::format("{:.1f} MiB", n / 1048576.0);
  return fmt::format("{:.2f} GiB", n / 1073741824.0);
}

std::string dims_str(const std::vector<std::int64_t>& d) { return fmt::format("[{}]", fmt::join(d, ",")); }

// Element i of a tensor as double (every numeric storage type; complex: real part).
double element(const Tensor& t, std::int64_t i) {
  const DType dt = t.dtype();
  const auto* p = static_cast<const unsigned char*>(t.data_ptr()) + static_cast<std::size_t>(i) * dtype_size(dt);
  if (dt == DType::kBool) return *p ? 1.0 : 0.0;
  if (dt == DType::kComplex64) {
    float f;
    std::memcpy(&f, p, 4);
    return f;
  }
  if (dt == DType::kComplex128) {
    double d;
    std::memcpy(&d, p, 8);
    return d;
  }
  double v = 0;
  if (is_floating(dt)) {
    convert_elements(p, dt, &v, DType::kF64, 1);
  } else {
    std::int64_t x = 0;
    convert_elements(p, dt, &x, DType::kI64, 1);
    v = static_cast<double>(x);
  }
  return v;
}

std::string preview(const CheckpointReader& r, const CheckpointItem& it) {
  if (it.kind == CheckpointItem::Kind::kString) return fmt::format("\"{}\"", r.read_string(it));
  if (it.kind != CheckpointItem::Kind::kTensor) return "(map tensor, skipped)";
  if (it.shape.numel() != 1 || it.nbytes > 64) return "";
  const Tensor t = r.read_tensor(it);
  return fmt::format("= {:.8g}", element(t, 0));
}

ReaderOptions quiet(const std::string& context) {
  ReaderOptions o;
  o.warn_unverified = false;
  o.context = context;
  return o;
}

int cmd_info(const std::string& file) {
  const CheckpointReader r(file, quiet("anvil ckpt info"));
  std::cout << fmt::format("file       {}\nsize       {} ({} bytes)\nentries    {} ({} values)\nintegrity  {}{}\n",
                           file, human_bytes(r.file_size()), r.file_size(), r.entries().size(), r.items().size(),
                           integrity_name(r.integrity()),
                           r.has_trailer() ? fmt::format(" (crc32 0x{:08X})", r.stored_crc()) : "");
  if (r.model_type()) std::cout << "model_type " << *r.model_type() << "\n";
  for (const auto& w : r.warnings()) std::cout << "warning    " << w << "\n";
  std::size_t tag_w = 3;
  for (const auto& it : r.items()) tag_w = std::max(tag_w, it.tag.size());
  std::cout << fmt::format("\n{:<{}}  {:<10}  {:<18}  {:>10}  {}\n", "tag", tag_w, "type", "shape", "bytes", "");
  for (const auto& it : r.items()) {
    std::string shape = it.kind == CheckpointItem::Kind::kTensor ? it.shape.str() : dims_str(it.stored_dims);
    if (it.entry_count > 1) shape += fmt::format(" ({} slices)", it.entry_count);
    std::cout << fmt::format("{:<{}}  {:<10}  {:<18}  {:>10}  {}\n", it.tag, tag_w, it.tensor_type, shape, it.nbytes,
                             preview(r, it));
  }
  for (const auto& s : r.skipped()) std::cout << fmt::format("{:<{}}  (map tensor, not supported)\n", s, tag_w);
  return 0;
}

// Re-parses every entry with protobuf's generated classes for the same schema (entries < 2 GiB).
std::string protobuf_cross_check(const CheckpointReader& r) {
  const ReadOnlyFile f(r.path());
  std::string buf;
  for (const auto& e : r.entries()) {
    if (e.end - e.offset > (1ull << 31) - 1) continue;
    buf.resize(static_cast<std::size_t>(e.end - e.offset));
    f.read_exact(e.offset, buf.data(), buf.size());
    msckpt::Checkpoint c;
    if (!c.ParseFromString(buf) || c.value_size() != 1 || !c.unknown_fields().empty())
      return fmt::format("entry {} at offset {}: protobuf's parser disagrees", e.index, e.offset);
    const auto& v = c.value(0);
    if (v.tag() != e.tag) return fmt::format("entry {}: protobuf reads tag '{}', Anvil '{}'", e.index, v.tag(), e.tag);
    if (!e.map_tensor) {
      if (!v.has_tensor() || v.tensor().tensor_type() != e.tensor_type ||
          v.tensor().tensor_content().size() != e.content_size ||
          std::vector<std::int64_t>(v.tensor().dims().begin(), v.tensor().dims().end()) != e.dims)
        return fmt::format("entry {} ('{}'): protobuf reads a different tensor", e.index, e.tag);
    }
  }
  return {};
}

int cmd_verify(const std::string& file, bool require_integrity, bool strict, bool protobuf) {
  try {
    ReaderOptions o = quiet("anvil ckpt verify");
    o.require_integrity = require_integrity;
    o.strict = strict;
    const CheckpointReader r(file, o);
    // Read every value (one at a time): string contents are validated, and I/O errors surface.
    for (const auto& it : r.items()) {
      if (it.kind == CheckpointItem::Kind::kString)
        (void)r.read_string(it);
      else if (it.kind == CheckpointItem::Kind::kTensor)
        (void)r.read_tensor(it);
    }
    if (protobuf) {
      const std::string problem = protobuf_cross_check(r);
      if (!problem.empty()) {
        std::cout << "FAIL " << file << ": " << problem << "\n";
        return 1;
      }
    }
    std::cout << fmt::format("OK {}: {} entries, {} values, {} bytes, integrity {}{}\n", file, r.entries().size(),
                             r.items().size(), r.file_size(), integrity_name(r.integrity()),
                             r.integrity() == Integrity::kUnverified
                                 ? " (no trailer or manifest: a cut between entries cannot be ruled out)"
                                 : "");
    for (const auto& w : r.warnings())
      if (w.find("no integrity trailer") == std::string::npos) std::cout << "warning: " << w << "\n";
    return 0;
  } catch (const CheckpointError& e) {
    std::cout << "FAIL " << file << ": " << ckpt_errc_name(e.code()) << ": " << e.what() << "\n";
    return 1;
  }
}

int cmd_diff(const std::string& a, const std::string& b, double atol, double rtol, std::size_t max_lines) {
  const CheckpointReader ra(a, quiet("anvil ckpt diff")), rb(b, quiet("anvil ckpt diff"));
  std::size_t differences = 0;
  std::vector<std::string> lines;
  auto note = [&](std::string s) {
    ++differences;
    lines.push_back(std::move(s));
  };
  for (const auto& ia : ra.items())
    if (!rb.find(ia.tag)) note(fmt::format("only in A: {} {} {}", ia.tag, ia.tensor_type, ia.shape.str()));
  for (const auto& ib : rb.items())
    if (!ra.find(ib.tag)) note(fmt::format("only in B: {} {} {}", ib.tag, ib.tensor_type, ib.shape.str()));
  std::size_t same = 0;
  for (const auto& ia : ra.items()) {
    const CheckpointItem* ib = rb.find(ia.tag);
    if (!ib) continue;
    if (ia.kind != ib->kind || ia.tensor_type != ib->tensor_type) {
      note(fmt::format("{}: type {} vs {}", ia.tag, ia.tensor_type, ib->tensor_type));
      continue;
    }
    if (ia.kind == CheckpointItem::Kind::kString) {
      const std::string sa = ra.read_string(ia), sb = rb.read_string(*ib);
      if (sa != sb)
        note(fmt::format("{}: \"{}\" vs \"{}\"", ia.tag, sa, sb));
      else
        ++same;
      continue;
    }
    if (ia.kind != CheckpointItem::Kind::kTensor) continue;
    if (ia.shape != ib->shape) {
      note(fmt::format("{}: shape {} vs {}", ia.tag, ia.shape.str(), ib->shape.str()));
      continue;
    }
    const Tensor ta = ra.read_tensor(ia), tb = rb.read_tensor(*ib);
    if (ta.nbytes() == 0 || std::memcmp(ta.data_ptr(), tb.data_ptr(), ta.nbytes()) == 0) {
      ++same;
      continue;
    }
    std::int64_t count = 0, worst_i = 0;
    double worst = -1;
    for (std::int64_t i = 0; i < ta.numel(); ++i) {
      const double x = element(ta, i), y = element(tb, i);
      const double d = std::fabs(x - y);
      const bool equal_nan = std::isnan(x) && std::isnan(y);
      if (!equal_nan && !(d <= atol + rtol * std::fabs(y))) {
        ++count;
        if (!(d <= worst)) {
          worst = d;
          worst_i = i;
        }
      }
    }
    if (count == 0) {
      ++same;  // within tolerance
      continue;
    }
    note(fmt::format("{}: {} of {} elements differ; max |A-B| = {:.6g} at index {} ({:.8g} vs {:.8g})", ia.tag, count,
                     ta.numel(), worst, worst_i, element(ta, worst_i), element(tb, worst_i)));
  }
  for (std::size_t i = 0; i < lines.size() && i < max_lines; ++i) std::cout << lines[i] << "\n";
  if (lines.size() > max_lines) std::cout << "... " << lines.size() - max_lines << " more\n";
  std::cout << fmt::format("{} common values identical{}, {} difference{}\n", same,
                           atol > 0 || rtol > 0 ? " (within tolerance)" : "", differences,
                           differences == 1 ? "" : "s");
  return differences == 0 ? 0 : 1;
}

}  // namespace

void register_ckpt_commands(CLI::App& app, int& exit_code) {
  CLI::App* ckpt = app.add_subcommand("ckpt", "Inspect MindSpore .ckpt checkpoint files");
  ckpt->require_subcommand(1);

  auto* info = ckpt->add_subcommand("info", "Tags, dtypes, shapes, sizes, scalar/string values and integrity");
  auto info_file = std::make_shared<std::string>();
  info->add_option("FILE", *info_file, "checkpoint file")->required();
  info->callback([info_file, &exit_code] { exit_code = cmd_info(*info_file); });

  auto* verify = ckpt->add_subcommand("verify", "Run every reader check; exit 0 if valid, 1 with the reason");
  struct VerifyArgs {
    std::string file;
    bool require_integrity = false, strict = false, protobuf = false;
  };
  auto va = std::make_shared<VerifyArgs>();
  verify->add_option("FILE", va->file, "checkpoint file")->required();
  verify->add_flag("--require-integrity", va->require_integrity,
                   "fail unless a CRC trailer or manifest proves the file complete");
  verify->add_flag("--strict", va->strict, "repeated tags and map tensors are errors");
  verify->add_flag("--protobuf", va->protobuf, "also parse every entry with protobuf's generated classes");
  verify->callback([va, &exit_code] { exit_code = cmd_verify(va->file, va->require_integrity, va->strict, va->protobuf); });

  auto* diff = ckpt->add_subcommand("diff", "Compare two checkpoints; exit 0 if equal, 1 if they differ");
  struct DiffArgs {
    std::string a, b;
    double atol = 0, rtol = 0;
    std::size_t max_lines = 50;
  };
  auto da = std::make_shared<DiffArgs>();
  diff->add_option("A", da->a, "first checkpoint")->required();
  diff->add_option("B", da->b, "second checkpoint")->required();
  diff->add_option("--atol", da->atol, "absolute tolerance for values (default 0: exact)");
  diff->add_option("--rtol", da->rtol, "relative tolerance for values (default 0)");
  diff->add_option("--max-lines", da->max_lines, "print at most this many differences");
  diff->callback([da, &exit_code] { exit_code = cmd_diff(da->a, da->b, da->atol, da->rtol, da->max_lines); });
}

}  // namespace anvil::tools
