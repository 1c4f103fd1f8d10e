// mount and check: serving a manifest, and validating one without touching a running mount.
#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "cli/onepassword.hpp"
#include "fs/mount.hpp"
#include "fs/validation.hpp"
#include "secretfs/age/age.hpp"
#include "secretfs/counted.hpp"
#include "secretfs/manifest.hpp"

namespace secretfs::cli {

namespace {

struct MountFlags {
  std::optional<std::string> manifest;
  std::optional<std::string> mount_point;
  std::optional<std::string> state_dir;
  bool foreground = false;
  bool allow_non_empty = false;
  bool insecure_identities = false;
};

// Development only: identity files that another user owns or that group or others may read,
// and folders that let others replace them. Symbolic links stay refused: the flag is about who
// may read or change a key, not about where reading it leads.
constexpr const char* kInsecureIdentitiesHelp =
    "Development only: accept identity files that another user owns or that group or others "
    "may read, or whose folder others may change (refused otherwise, as ssh refuses such "
    "keys); each one is named in a warning. A symbolic link is still refused";

FilePermissions identity_permissions(bool insecure) {
  return insecure ? FilePermissions::any : FilePermissions::strict;
}

int mount(const MountFlags& flags) {
  fs::MountOptions options;
  if (flags.manifest) {
    options.manifest = *flags.manifest;
  }
  if (flags.mount_point) {
    options.mount_point = *flags.mount_point;
  }
  if (flags.state_dir) {
    options.state_dir = *flags.state_dir;
  }
  options.detach = flags.foreground ? fs::Detach::no : fs::Detach::yes;
  options.mount_point_contents =
      flags.allow_non_empty ? fs::MountPointContents::any : fs::MountPointContents::empty;
  options.identity_permissions = identity_permissions(flags.insecure_identities);
  return fs::run_mount(options);
}

// Refused secrets or templates; one may have several problems.
std::size_t refused_count(const manifest::Manifest& manifest, manifest::EntryKind kind) {
  std::set<std::string> refused;
  for (const auto& problem : manifest.problems) {
    if (!problem.secret.empty() && problem.kind == kind) {
      refused.insert(problem.secret);
    }
  }
  return refused.size();
}

// "3 secrets", or "3 secrets, 1 template" when the manifest has templates.
std::string entry_counts(const manifest::Manifest& manifest) {
  std::string counts = counted(
      manifest.secrets.size() + refused_count(manifest, manifest::EntryKind::secret), "secret");
  const std::size_t templates =
      manifest.templates.size() + refused_count(manifest, manifest::EntryKind::template_);
  if (templates > 0) {
    counts += ", " + counted(templates, "template");
  }
  return counts;
}

struct CheckFlags {
  std::string manifest;
  bool insecure_identities = false;
};

int check(const CheckFlags& flags) {
  fs::ManifestFile file;
  try {
    file = fs::read_manifest(flags.manifest);
  } catch (const manifest::ManifestError& error) {
    std::printf("error: %s\n", error.what());
    return 1;
  }
  const auto& manifest = file.manifest;
  auto [problems, waived] = fs::examine(manifest, identity_permissions(flags.insecure_identities));
  for (const auto& line : waived) {
    std::printf("warning: %s; accepted because of --insecure-identity-permissions\n", line.c_str());
  }
  // With a token file at hand, every reference is asked for; without one, only its form is
  // checked (above).
  if (!manifest.onepassword.token_file.empty() &&
      std::filesystem::exists(manifest.onepassword.token_file)) {
    auto references = check_references(manifest);
    for (const auto& line : references.warnings) {
      std::printf("warning: %s\n", line.c_str());
    }
    problems.insert(problems.end(), references.problems.begin(), references.problems.end());
  } else if (!manifest.onepassword.token_file.empty() && !references_of(manifest).empty()) {
    std::printf("warning: [onepassword]: token file %s does not exist here: 1Password "
                "references were checked for their form only\n",
                manifest.onepassword.token_file.c_str());
    // `op` itself can be judged without a token.
    if (auto problem = onepassword_settings_problem(manifest)) {
      problems.push_back(std::move(*problem));
    }
  }
  for (const auto& problem : problems) {
    std::printf("error: %s\n", problem.c_str());
  }
  std::printf("%s: %s, %s\n", manifest.path.c_str(), entry_counts(manifest).c_str(),
              counted(problems.size(), "problem").c_str());
  return problems.empty() ? 0 : 1;
}

}  // namespace

void add_mount(CLI::App& app, Command& selected) {
  auto flags = std::make_shared<MountFlags>();
  auto* command = app.add_subcommand("mount", "Serve the manifest's secrets as a FUSE mount");
  command->add_option("-m,--manifest", flags->manifest,
                      "Activate this manifest first (default: serve the current generation)");
  command->add_option("--mount-point", flags->mount_point,
                      "Where to mount (default: the manifest's mount_point)");
  command->add_option("--state-dir", flags->state_dir,
                      "Where generations live (default: the manifest's state_dir, else "
                      "/var/lib/secretfs)");
  command->add_flag("-f,--foreground", flags->foreground,
                    "Stay in the foreground and log to standard error (for systemd)");
  command->add_flag("--allow-non-empty", flags->allow_non_empty,
                    "Mount over a folder that holds files (hidden while mounted)");
  command->add_flag("--insecure-identity-permissions", flags->insecure_identities,
                    kInsecureIdentitiesHelp);
  command->callback([&selected, flags] { selected = [flags] { return mount(*flags); }; });
}

void add_check(CLI::App& app, Command& selected) {
  auto flags = std::make_shared<CheckFlags>();
  auto* command = app.add_subcommand("check", "Validate a manifest and its secrets; mount nothing");
  command->add_option("-m,--manifest", flags->manifest, "Manifest file (TOML)")->required();
  command->add_flag("--insecure-identity-permissions", flags->insecure_identities,
                    kInsecureIdentitiesHelp);
  command->callback([&selected, flags] { selected = [flags] { return check(*flags); }; });
}

}  // namespace secretfs::cli
