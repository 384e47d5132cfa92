// Subcommands of the `anvil` tool. Each register_* function adds one command group to the app; the
// callbacks store their exit code in `exit_code` (0 success, 1 check failed / files differ, 2 error).
#pragma once

namespace CLI {
class App;
}

namespace anvil::tools {

/// `anvil ckpt info|verify|diff`: inspect MindSpore .ckpt files.
void register_ckpt_commands(CLI::App& app, int& exit_code);

}  // namespace anvil::tools
