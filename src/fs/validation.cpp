#include "fs/validation.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <variant>

#include "fs/audit.hpp"
#include "fs/keyring.hpp"
#include "fs/parallel.hpp"
#include "fs/secret_set.hpp"
#include "secretfs/age/age.hpp"
#include "secretfs/age/stream.hpp"
#include "secretfs/onepassword.hpp"
#include "secretfs/template.hpp"

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
    // A regular file only: a FIFO in its place would block the daemon's start forever.
    bytes = age::read_regular_file(path).bytes;
  } catch (const age::Error& error) {
    throw manifest::ManifestError(std::string("cannot read manifest: ") + error.what());
  }
  ManifestFile file;
  file.text.assign(bytes.begin(), bytes.end());
  const auto absolute = std::filesystem::absolute(path).lexically_normal();
  file.manifest = manifest::parse(file.text, absolute.parent_path(), path.native());
  file.manifest.path = absolute;
  templates::read_files(file.manifest, path.native());
  templates::resolve(file.manifest, path.native());
  return file;
}

std::vector<std::string> file_problems(std::span<const manifest::Secret> secrets,
                                       const Keyring& keyring, std::uint64_t max_size) {
  const auto identities = keyring.pointers();
  std::vector<std::string> problems(secrets.size());
  for_each_index(secrets.size(), [&](std::size_t index) {
    const manifest::Secret& secret = secrets[index];
    if (secret.file.empty()) {
      return;  // a 1Password value not read yet: not broken, see value_notes
    }
    try {
      const age::OpenedFile opened =
          age::open_file(read_stored_file(secret.file, secret.sha256, max_size), identities);
      // Every chunk authenticated; the plaintext is wiped as it goes out of scope.
      age::decrypt_chunks(opened.payload_key.span(), opened.chunks());
    } catch (const age::Error& error) {
      problems[index] = "secret `" + secret.name + "`: file " + secret.file.string() + ": " +
                        std::string(age::to_string(error.kind())) + ": " + error.what();
    }
  });
  std::erase(problems, std::string());
  return problems;
}

std::vector<std::string> template_problems(const manifest::Manifest& manifest,
                                           const Keyring& keyring) {
  const auto identities = keyring.pointers();
  const auto decrypted = [&](const std::string& name) {
    const auto secret = std::lower_bound(
        manifest.secrets.begin(), manifest.secrets.end(), name,
        [](const manifest::Secret& entry, const std::string& key) { return entry.name < key; });
    if (secret == manifest.secrets.end() || secret->name != name) {
      throw age::Error(age::ErrorKind::io, "no secret " + name);  // resolve refused the template
    }
    return age::decrypt(read_stored_file(secret->file, secret->sha256, manifest.max_secret_size),
                        identities);
  };
  std::vector<std::string> problems;
  for (const manifest::Template& entry : manifest.templates) {
    const templates::Parsed parsed = templates::parse(entry.text);
    if (!parsed.problems.empty()) {
      continue;  // refused by resolve already
    }
    try {
      // Each secret decrypted once, however many placeholders insert it.
      std::map<std::string, SecretBytes> plaintexts;
      std::vector<const SecretBytes*> inputs;
      for (const templates::Placeholder& placeholder : parsed.parsed.placeholders) {
        auto [found, added] = plaintexts.try_emplace(placeholder.secret);
        if (added) {
          found->second = decrypted(placeholder.secret);
        }
        inputs.push_back(&found->second);
      }
      templates::render(parsed.parsed, inputs,
                        templates::max_rendered_size(manifest.max_secret_size));
    } catch (const age::Error&) {
      // A secret that does not decrypt: named by file_problems.
    } catch (const templates::RenderError& error) {
      problems.push_back("template `" + entry.name + "`: " + error.what());
    }
  }
  return problems;
}


Findings examine(const manifest::Manifest& manifest, FilePermissions permissions,
                 Files files) {
  Findings findings;
  auto& problems = findings.problems;
  for (const auto& problem : manifest.problems) {
    problems.push_back(problem.message);
  }
  // The daemon would refuse the file, or could not create it, and send every record to its own
  // log instead, where no one looks for an audit trail.
  if (!manifest.audit_log.empty()) {
    if (const auto reason = audit_log_problem(manifest.audit_log)) {
      problems.push_back(manifest.path.string() + ": audit_log " + manifest.audit_log.string() +
                         ": " + *reason);
    }
  }
  for (const auto& secret : manifest.secrets) {
    if (secret.source.empty()) {
      continue;
    }
    const auto parsed = onepassword::parse_reference(secret.source);
    const std::string where = manifest.path.string() + ":" + std::to_string(secret.line) +
                              ": secret `" + secret.name + "`: source: ";
    if (const auto* reason = std::get_if<std::string>(&parsed)) {
      problems.push_back(where + *reason);
    } else if (onepassword::is_one_time_password(std::get<onepassword::Reference>(parsed))) {
      // A code is good for 30 seconds; a value is served from its last read, up to `refresh`
      // old, and `sync` would freeze one in a file.
      problems.push_back(where + std::string(onepassword::kOneTimePasswordRefused));
    }
  }
  Keyring keyring = load_keyring(manifest.identities, permissions);
  problems.insert(problems.end(), keyring.problems.begin(), keyring.problems.end());
  if (files == Files::check) {
    const auto broken = file_problems(manifest.secrets, keyring, manifest.max_secret_size);
    problems.insert(problems.end(), broken.begin(), broken.end());
    const auto unrenderable = template_problems(manifest, keyring);
    problems.insert(problems.end(), unrenderable.begin(), unrenderable.end());
  }
  findings.waived = std::move(keyring.waived);
  return findings;
}

std::vector<std::string> validate(const manifest::Manifest& manifest,
                                  FilePermissions permissions, Files files) {
  return examine(manifest, permissions, files).problems;
}

}  // namespace secretfs::fs
