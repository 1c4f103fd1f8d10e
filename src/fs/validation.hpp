// Checking a manifest before it is served or stored: what `check` prints and what makes
// `activate` refuse.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "secretfs/age/key_files.hpp"
#include "secretfs/manifest.hpp"

namespace secretfs::fs {

// A manifest file's exact text and what it parses to; throws manifest::ManifestError.
struct ManifestFile {
  manifest::Manifest manifest;
  std::string text;
};
ManifestFile read_manifest(const std::filesystem::path& path);

// Every problem, one line each naming the secret or identity file: the manifest's refusals,
// identity files that cannot be used, and each secret's file checked against the identities
// (header and MAC only; no payload is decrypted).
std::vector<std::string> validate(const manifest::Manifest& manifest,
                                  age::FilePermissions permissions);

}  // namespace secretfs::fs
