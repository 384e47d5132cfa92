// anvil: command-line tool of the Anvil framework.
//   anvil ckpt info FILE          tags, dtypes, shapes, sizes, scalar and string values, integrity
//   anvil ckpt verify FILE        every reader check; exit 0 (valid) or 1 (with the reason)
//   anvil ckpt diff A B           entries only in one file, dtype/shape/value differences; exit 0 if equal
//   anvil convert IN OUT          .ckpt <-> OneFlow variable directory (ckpt info also takes a directory)
//   anvil export ...              ONNX export of a model-zoo network (serialization/onnx/ExportCli.h)
#include <cstring>
#include <exception>
#include <iostream>

#include <CLI/CLI.hpp>

#include "serialization/onnx/ExportCli.h"
#include "tools/Commands.h"

int main(int argc, char** argv) {
  // `anvil export` parses its own options (serialization/onnx/ExportCli.h).
  if (argc >= 2 && std::strcmp(argv[1], "export") == 0) return anvil_export_main(argc - 1, argv + 1);
  // `anvil ckpt info DIR` describes a OneFlow variable directory (tools/ConvertCommands.cpp).
  if (argc == 4 && std::strcmp(argv[1], "ckpt") == 0 && std::strcmp(argv[2], "info") == 0 &&
      anvil::tools::is_variable_directory_path(argv[3]))
    return anvil::tools::variable_directory_info(argv[3]);
  CLI::App app{"anvil: tools for the Anvil training framework\n  (also: anvil export --help, ONNX export)"};
  app.require_subcommand(1);
  int exit_code = 0;
  anvil::tools::register_ckpt_commands(app, exit_code);
  anvil::tools::register_convert_commands(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const std::exception& e) {
    std::cerr << "anvil: " << e.what() << "\n";
    return 2;
  }
  return exit_code;
}
