#include "fs/validation.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "fs/keyring.hpp"
#include "fs/parallel.hpp"
#include "fs/secret_set.hpp"
#include "secretfs/age/age.hpp"

namespace secretfs::fs {

namespace {

constexpr mode_t kWritableByGroupOrOthers = S_IWGRP | S_IWOTH;
constexpr mode_t kPermissionBits = 07777;

std::string mode_text(mode_t mode) {
  char text[sizeof "07777"];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & kPermissionBits));
  return text;
}

bool owned_by_root_or_caller(const struct stat& status) {
  return status.st_uid == 0 || status.st_uid == ::geteuid();
}

// Whoever may write to a folder can rename another file over the manifest in it, whatever the
// manifest's own mode. A sticky folder lets only a file's owner do that: the Nix store
// (/nix/store is 1775) is one.
void check_manifest_folder(const std::filesystem::path& manifest,
                           const std::filesystem::path& folder) {
  struct stat status {};
  if (::stat(folder.c_str(), &status) != 0) {
    return;  // reading the manifest reports the error
  }
  const std::string described = manifest.string() + ": manifest folder " + folder.string() +
                                " (owner uid " + std::to_string(status.st_uid) + ", mode " +
                                mode_text(status.st_mode) + ")";
  if (!owned_by_root_or_caller(status)) {
    throw manifest::ManifestError(described +
                                  " belongs to another user, who could replace the manifest; it "
                                  "must belong to root (or to you)");
  }
  if ((status.st_mode & kWritableByGroupOrOthers) != 0 && (status.st_mode & S_ISVTX) == 0) {
    throw manifest::ManifestError(described +
                                  " lets group or others replace the manifest; chmod go-w " +
                                  folder.string() + ", or keep the manifest elsewhere");
  }
}

// The manifest decides every secret's owner and mode, so it gets the care of a key file: it
// must belong to root or to the user running secretfs, and nobody else may change it, nor
// replace it through its folder: the folder of the path given, and the folder of the file it
// leads to when that path is a link.
void check_manifest_permissions(const std::filesystem::path& path) {
  struct stat status {};
  if (::stat(path.c_str(), &status) != 0) {
    return;  // reading it reports the error
  }
  if (!owned_by_root_or_caller(status)) {
    throw manifest::ManifestError(path.string() + ": manifest belongs to uid " +
                                  std::to_string(status.st_uid) +
                                  "; it must belong to root (or to you)");
  }
  if ((status.st_mode & kWritableByGroupOrOthers) != 0) {
    throw manifest::ManifestError(path.string() + ": manifest mode " + mode_text(status.st_mode) +
                                  " lets group or others change it; chmod go-w it");
  }
  const auto given = std::filesystem::absolute(path).parent_path();
  check_manifest_folder(path, given);
  std::error_code error;
  const auto real = std::filesystem::canonical(path, error).parent_path();
  if (!error && real != given) {
    check_manifest_folder(path, real);
  }
}

}  // namespace

ManifestFile read_manifest(const std::filesystem::path& path) {
  check_manifest_permissions(path);
  std::vector<std::uint8_t> bytes;
  try {
    bytes = age::read_file(path);
  } catch (const age::Error& error) {
    throw manifest::ManifestError(std::string("cannot read manifest: ") + error.what());
  }
  ManifestFile file;
  file.text.assign(bytes.begin(), bytes.end());
  const auto absolute = std::filesystem::absolute(path).lexically_normal();
  file.manifest = manifest::parse(file.text, absolute.parent_path(), path.native());
  file.manifest.path = absolute;
  return file;
}

std::vector<std::string> header_problems(std::span<const manifest::Secret> secrets,
                                         const Keyring& keyring, std::uint64_t max_size) {
  const auto identities = keyring.pointers();
  std::vector<std::string> problems(secrets.size());
  for_each_index(secrets.size(), [&](std::size_t index) {
    const manifest::Secret& secret = secrets[index];
    try {
      // Header, MAC and the payload's length: what a first open checks before decrypting.
      age::open_file(read_stored_file(secret.file, secret.sha256, max_size), identities);
    } catch (const age::Error& error) {
      problems[index] = "secret `" + secret.name + "`: file " + secret.file.string() + ": " +
                        std::string(age::to_string(error.kind())) + ": " + error.what();
    }
  });
  std::erase(problems, std::string());
  return problems;
}

Findings examine(const manifest::Manifest& manifest, age::FilePermissions permissions,
                 Files files) {
  Findings findings;
  auto& problems = findings.problems;
  for (const auto& problem : manifest.problems) {
    problems.push_back(problem.message);
  }
  Keyring keyring = load_keyring(manifest.identities, permissions);
  problems.insert(problems.end(), keyring.problems.begin(), keyring.problems.end());
  if (files == Files::check) {
    const auto broken = header_problems(manifest.secrets, keyring, manifest.max_secret_size);
    problems.insert(problems.end(), broken.begin(), broken.end());
  }
  findings.waived = std::move(keyring.waived);
  return findings;
}

std::vector<std::string> validate(const manifest::Manifest& manifest,
                                  age::FilePermissions permissions, Files files) {
  return examine(manifest, permissions, files).problems;
}

}  // namespace secretfs::fs
