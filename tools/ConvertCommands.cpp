// `anvil convert IN OUT` (.ckpt <-> OneFlow variable directory) and `anvil ckpt info DIR` for variable
// directories.
#include <sys/stat.h>

#include <iostream>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "serialization/oneflow/Convert.h"
#include "tools/Commands.h"

namespace anvil::tools {

namespace {
bool is_directory(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
}  // namespace

bool is_variable_directory_path(const std::string& path) { return is_directory(path); }

int variable_directory_info(const std::string& dir) {
  try {
    std::cout << oneflow::describe_variable_directory(dir);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "anvil ckpt info: " << e.what() << "\n";
    return 2;
  }
}

void register_convert_commands(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand(
      "convert", "Convert a MindSpore .ckpt file to a OneFlow variable directory, or a variable directory to .ckpt");
  struct Args {
    std::string in, out;
    bool extended = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("IN", a->in, ".ckpt file or OneFlow variable directory")->required();
  cmd->add_option("OUT", a->out, "variable directory (new or empty) or .ckpt file")->required();
  cmd->add_flag("--extended-dtypes", a->extended,
                "allow kBool, kInt16 and kBFloat16 in the variable directory (OneFlow <= 0.3 cannot read them)");
  cmd->callback([a, &exit_code] {
    try {
      oneflow::ConvertReport rep;
      if (is_directory(a->in)) {
        rep = oneflow::variable_directory_to_ckpt(a->in, a->out);
      } else {
        oneflow::SaveOptions o;
        o.allow_extended_dtypes = a->extended;
        rep = oneflow::ckpt_to_variable_directory(a->in, a->out, o);
      }
      for (const auto& w : rep.warnings) std::cerr << "warning: " << w << "\n";
      for (const auto& s : rep.skipped) std::cerr << "warning: string entry \"" << s << "\" skipped\n";
      std::cout << "converted " << rep.tensors << " tensors: " << a->in << " -> " << a->out << "\n";
      exit_code = 0;
    } catch (const std::exception& e) {
      std::cerr << "anvil convert: " << e.what() << "\n";
      exit_code = 2;
    }
  });
}

}  // namespace anvil::tools
