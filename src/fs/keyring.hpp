// The identities a daemon or `check` decrypts with, loaded from the manifest's identity files.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "secretfs/age/identity.hpp"
#include "secretfs/age/key_files.hpp"

namespace secretfs::fs {

struct Keyring {
  std::vector<std::filesystem::path> paths;  // the identity files asked for
  age::Identities identities;
  std::vector<std::string> problems;  // one line per identity file that could not be used
  // With FilePermissions::any: one line per rule of ownership or mode that a loaded identity
  // file broke, for the daemon to warn about.
  std::vector<std::string> waived;

  std::vector<const age::Identity*> pointers() const;
};

// Loads every file it can; a file that fails is described in `problems` and skipped, so that
// one bad identity file does not stop secrets that another one opens.
Keyring load_keyring(const std::vector<std::filesystem::path>& paths,
                     FilePermissions permissions);

}  // namespace secretfs::fs
