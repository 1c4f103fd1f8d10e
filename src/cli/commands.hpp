// The subcommands of the `secretfs` binary. Each adds itself to the application; when the
// command line selects it, it sets `selected` to the work to run once parsing is complete.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace secretfs::cli {

using Command = std::function<int()>;

void add_keygen(CLI::App& app, Command& selected);
void add_encrypt(CLI::App& app, Command& selected);
void add_decrypt(CLI::App& app, Command& selected);
void add_mount(CLI::App& app, Command& selected);
void add_check(CLI::App& app, Command& selected);
void add_activate(CLI::App& app, Command& selected);
void add_rollback(CLI::App& app, Command& selected);
void add_generations(CLI::App& app, Command& selected);
void add_status(CLI::App& app, Command& selected);
void add_list(CLI::App& app, Command& selected);
void add_edit(CLI::App& app, Command& selected);
void add_view(CLI::App& app, Command& selected);
void add_rekey(CLI::App& app, Command& selected);
void add_rotate(CLI::App& app, Command& selected);
void add_sync(CLI::App& app, Command& selected);
void add_completions(CLI::App& app, Command& selected);

// Gives every subcommand that has none an example at the end of its --help.
void add_examples(CLI::App& app);

}  // namespace secretfs::cli
