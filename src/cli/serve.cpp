// mount and check: serving a manifest, and validating one without touching a running mount.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "fs/keyring.hpp"
#include "fs/mount.hpp"
#include "fs/secret_set.hpp"
#include "secretfs/age/age.hpp"
#include "secretfs/manifest.hpp"

namespace secretfs::cli {

namespace {

struct MountFlags {
  std::string manifest;
  std::optional<std::string> mount_point;
  bool foreground = false;
};

int mount(const MountFlags& flags) {
  fs::MountOptions options;
  options.manifest = flags.manifest;
  if (flags.mount_point) {
    options.mount_point = *flags.mount_point;
  }
  options.detach = flags.foreground ? fs::Detach::no : fs::Detach::yes;
  return fs::run_mount(options);
}

// Every problem `mount` would log, without mounting: the manifest's refusals, identity files
// that cannot be used, and each secret's file checked against every identity. Only headers are
// opened (file key unwrapped, header MAC checked); no payload is decrypted.
std::vector<std::string> problems_of(const manifest::Manifest& manifest) {
  std::vector<std::string> problems;
  for (const auto& problem : manifest.problems) {
    problems.push_back(problem.message);
  }
  const fs::Keyring keyring = fs::load_keyring(manifest.identities, age::FilePermissions::strict);
  problems.insert(problems.end(), keyring.problems.begin(), keyring.problems.end());

  const auto identities = keyring.pointers();
  for (const auto& secret : manifest.secrets) {
    try {
      fs::inspect_size(secret.file);
      age::verify_header(age::read_file(secret.file), identities);
    } catch (const age::Error& error) {
      problems.push_back("secret `" + secret.name + "`: file " + secret.file.string() + ": " +
                         std::string(age::to_string(error.kind())) + ": " + error.what());
    }
  }
  return problems;
}

int check(const std::string& manifest_path) {
  manifest::Manifest manifest;
  try {
    manifest = manifest::load(manifest_path);
  } catch (const manifest::ManifestError& error) {
    std::printf("error: %s\n", error.what());
    return 1;
  }
  const auto problems = problems_of(manifest);
  for (const auto& problem : problems) {
    std::printf("error: %s\n", problem.c_str());
  }
  std::printf("%s: %zu secrets, %zu problems\n", manifest.path.c_str(),
              manifest.secrets.size() + manifest.problems.size(), problems.size());
  return problems.empty() ? 0 : 1;
}

}  // namespace

void add_mount(CLI::App& app, Command& selected) {
  auto flags = std::make_shared<MountFlags>();
  auto* command = app.add_subcommand("mount", "Serve the manifest's secrets as a FUSE mount");
  command->add_option("-m,--manifest", flags->manifest, "Manifest file (TOML)")->required();
  command->add_option("--mount-point", flags->mount_point,
                      "Where to mount (default: the manifest's mount_point)");
  command->add_flag("-f,--foreground", flags->foreground,
                    "Stay in the foreground and log to standard error (for systemd)");
  command->callback([&selected, flags] { selected = [flags] { return mount(*flags); }; });
}

void add_check(CLI::App& app, Command& selected) {
  auto manifest = std::make_shared<std::string>();
  auto* command = app.add_subcommand("check", "Validate a manifest and its secrets; mount nothing");
  command->add_option("-m,--manifest", *manifest, "Manifest file (TOML)")->required();
  command->callback([&selected, manifest] { selected = [manifest] { return check(*manifest); }; });
}

}  // namespace secretfs::cli
