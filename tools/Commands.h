// Subcommands of the `anvil` tool. Each register_* function adds one command group to the app; the
// callbacks store their exit code in `exit_code` (0 success, 1 check failed / files differ, 2 error).
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace anvil::tools {

/// `anvil ckpt info|verify|diff`: inspect MindSpore .ckpt files.
void register_ckpt_commands(CLI::App& app, int& exit_code);

/// `anvil convert IN OUT`: .ckpt <-> OneFlow variable directory (tools/ConvertCommands.cpp).
void register_convert_commands(CLI::App& app, int& exit_code);
/// True when `path` is a directory (`anvil ckpt info` then describes a OneFlow variable directory).
bool is_variable_directory_path(const std::string& path);
/// Prints the description of a OneFlow variable directory; returns the exit code.
int variable_directory_info(const std::string& dir);

}  // namespace anvil::tools
