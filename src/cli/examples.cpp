// An example at the end of every command's --help, for the commands defined without one.
// Commands that define their own footer keep it.
#include <string>
#include <utility>
#include <vector>

#include "cli/commands.hpp"

namespace secretfs::cli {

namespace {

const std::vector<std::pair<std::string, std::string>> kExamples = {
    {"keygen", "secretfs keygen -o /etc/secretfs/key.txt"},
    {"encrypt",
     "echo -n hunter2 | secretfs encrypt -r age1... -o db-password.age\n"
     "  echo -n hunter2 | secretfs encrypt -o secrets/web1/db-password.age   "
     "# recipients.toml decides"},
    {"decrypt", "secretfs decrypt -i /etc/secretfs/key.txt db-password.age"},
    {"mount", "secretfs mount --manifest /etc/secretfs/manifest.toml"},
    {"check", "secretfs check --manifest /etc/secretfs/manifest.toml"},
    {"activate", "secretfs activate --manifest /etc/secretfs/manifest.toml"},
    {"rollback", "secretfs rollback --to 3"},
    {"generations", "secretfs generations --json"},
    {"status", "secretfs status"},
};

}  // namespace

void add_examples(CLI::App& app) {
  for (const auto& [name, example] : kExamples) {
    auto* command = app.get_subcommand(name);
    if (command->get_footer().empty()) {
      command->footer("Example:\n  " + example + "\n");
    }
  }
}

}  // namespace secretfs::cli
