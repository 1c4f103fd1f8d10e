#include "fs/keyring.hpp"

#include "secretfs/age/error.hpp"

namespace secretfs::fs {

std::vector<const age::Identity*> Keyring::pointers() const {
  std::vector<const age::Identity*> result;
  result.reserve(identities.size());
  for (const auto& identity : identities) {
    result.push_back(identity.get());
  }
  return result;
}

Keyring load_keyring(const std::vector<std::filesystem::path>& paths,
                     FilePermissions permissions) {
  Keyring keyring;
  keyring.paths = paths;
  for (const auto& path : paths) {
    try {
      age::IdentityFile file = age::read_identity_file(path, permissions);
      for (auto& identity : file.identities) {
        keyring.identities.push_back(std::move(identity));
      }
      keyring.waived.insert(keyring.waived.end(), file.waived.begin(), file.waived.end());
    } catch (const age::Error& error) {
      // The error names the file already.
      keyring.problems.emplace_back(error.what());
    }
  }
  if (paths.empty()) {
    keyring.problems.emplace_back("no identity files are configured (manifest key `identities`)");
  }
  return keyring;
}

}  // namespace secretfs::fs
