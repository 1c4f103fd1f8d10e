// secretfs: one binary for the daemon and for managing keys and secret files.
#include <cstdio>
#include <exception>

#include "cli/commands.hpp"
#include "manifest/names.hpp"
#include "secretfs/log.hpp"
#include "secretfs/secret_bytes.hpp"

namespace {

constexpr const char* kDescription =
    "secretfs serves age-encrypted secrets as a read-only FUSE file system, and manages the\n"
    "keys and age files behind them.";

}  // namespace

int main(int argc, char** argv) {
  CLI::App app(kDescription, "secretfs");
  app.set_version_flag("--version", std::string(SECRETFS_VERSION));
  app.require_subcommand(1);
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "Log debug messages too");

  secretfs::cli::Command selected;
  secretfs::cli::add_keygen(app, selected);
  secretfs::cli::add_encrypt(app, selected);
  secretfs::cli::add_decrypt(app, selected);
  secretfs::cli::add_mount(app, selected);
  secretfs::cli::add_check(app, selected);
  secretfs::cli::add_activate(app, selected);
  secretfs::cli::add_rollback(app, selected);
  secretfs::cli::add_generations(app, selected);
  secretfs::cli::add_status(app, selected);
  secretfs::cli::add_list(app, selected);
  secretfs::cli::add_edit(app, selected);
  secretfs::cli::add_view(app, selected);
  secretfs::cli::add_rekey(app, selected);
  secretfs::cli::add_rotate(app, selected);
  secretfs::cli::add_sync(app, selected);
  secretfs::cli::add_completions(app, selected);
  secretfs::cli::add_examples(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  }

  try {
    secretfs::log::setup(
        secretfs::log::Destination::standard_error,
        verbose ? secretfs::log::Verbosity::verbose : secretfs::log::Verbosity::normal);
    secretfs::initialize_sodium();
    return selected();
  } catch (const std::exception& error) {
    // Messages name files, and file names may hold terminal escape sequences.
    std::fprintf(stderr, "secretfs: %s\n",
                 secretfs::manifest::printable_name(error.what()).c_str());
    return 1;
  }
}
