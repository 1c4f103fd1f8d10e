// Checking a manifest before it is served or stored: what `check` prints and what makes
// `activate` refuse. A manifest, or a folder it is in, that another user could change is
// refused as a whole (read_manifest throws).
#pragma once

#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "fs/keyring.hpp"
#include "secretfs/age/key_files.hpp"
#include "secretfs/manifest.hpp"

namespace secretfs::fs {

// A manifest file's exact text and what it parses to, its templates read and checked against
// its secrets; throws manifest::ManifestError.
struct ManifestFile {
  manifest::Manifest manifest;
  std::string text;
};
ManifestFile read_manifest(const std::filesystem::path& path);

// One line per secret whose file does not decrypt with `keyring`'s identities: read, stored
// hash, header, MAC and the whole payload are checked, so that a file cut short or damaged
// anywhere is named before it is served, not at its first open. The plaintext lives only in
// locked memory while it is authenticated and is wiped at once. Files are checked on every CPU
// at once; the lines keep the manifest's order.
std::vector<std::string> file_problems(std::span<const manifest::Secret> secrets,
                                       const Keyring& keyring, std::uint64_t max_size);

// One line per template that can never render although every secret it inserts decrypts: a
// secret inserted as it is that is not text, or a result over the size limit. Each template is
// rendered as an open would, in locked memory, and wiped at once; a secret that does not
// decrypt is file_problems' to name.
std::vector<std::string> template_problems(const manifest::Manifest& manifest,
                                           const Keyring& keyring);

enum class Files {
  check,  // each secret's file against the identities, as file_problems does
  skip,   // the manifest and the identity files only
};

// Every problem, one line each naming the secret, template, identity file or manifest key: the
// manifest's refusals, an audit_log the daemon would not use (audit_log_problem()), identity
// files that cannot be used, and (with Files::check) each secret's file decrypted with the
// identities and each template rendered, as file_problems and template_problems do.
std::vector<std::string> validate(const manifest::Manifest& manifest,
                                  FilePermissions permissions, Files files = Files::check);

// validate()'s problems, and what FilePermissions::any let through that strict checking
// refuses (Keyring::waived), for `check` to show.
struct Findings {
  std::vector<std::string> problems;
  std::vector<std::string> waived;
};
Findings examine(const manifest::Manifest& manifest, FilePermissions permissions,
                 Files files = Files::check);

}  // namespace secretfs::fs
