// Checking a manifest before it is served or stored: what `check` prints and what makes
// `activate` refuse.
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

// One line per secret whose file does not open with `keyring`'s identities: read, size, header
// and MAC are checked, the payload is not decrypted.
std::vector<std::string> header_problems(std::span<const manifest::Secret> secrets,
                                         const Keyring& keyring);

// Every problem, one line each naming the secret or identity file: the manifest's refusals,
// identity files that cannot be used, and each secret's file checked against the identities
// (header and MAC only; no payload is decrypted).
std::vector<std::string> validate(const manifest::Manifest& manifest,
                                  age::FilePermissions permissions);

}  // namespace secretfs::fs
