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

// A manifest file's exact text and what it parses to; throws manifest::ManifestError.
struct ManifestFile {
  manifest::Manifest manifest;
  std::string text;
};
ManifestFile read_manifest(const std::filesystem::path& path);

// One line per secret whose file does not open with `keyring`'s identities: read, stored hash,
// header, MAC and payload length are checked, the payload is not decrypted. Files are checked
// on every CPU at once; the lines keep the manifest's order.
std::vector<std::string> header_problems(std::span<const manifest::Secret> secrets,
                                         const Keyring& keyring, std::uint64_t max_size);

enum class Files {
  check,  // each secret's file against the identities, as header_problems does
  skip,   // the manifest and the identity files only
};

// Every problem, one line each naming the secret or identity file: the manifest's refusals,
// identity files that cannot be used, and (with Files::check) each secret's file checked
// against the identities (header, MAC and payload length; no payload is decrypted).
std::vector<std::string> validate(const manifest::Manifest& manifest,
                                  age::FilePermissions permissions, Files files = Files::check);

// validate()'s problems, and what FilePermissions::any let through that strict checking
// refuses (Keyring::waived), for `check` to show.
struct Findings {
  std::vector<std::string> problems;
  std::vector<std::string> waived;
};
Findings examine(const manifest::Manifest& manifest, age::FilePermissions permissions,
                 Files files = Files::check);

}  // namespace secretfs::fs
