// Which secrets differ between two generations: what a switch changes for the services that
// read them, and so which services must restart.
#include <algorithm>
#include <map>

#include "secretfs/state.hpp"

namespace secretfs::state {

namespace {

// Stored files are named by their content's hash, so equal paths mean equal ciphertexts.
bool same(const manifest::Secret& a, const manifest::Secret& b) {
  return a.file == b.file && a.uid == b.uid && a.gid == b.gid && a.mode == b.mode;
}

std::map<std::string, const manifest::Secret*> by_name(const manifest::Manifest& manifest) {
  std::map<std::string, const manifest::Secret*> secrets;
  for (const auto& secret : manifest.secrets) {
    secrets.emplace(secret.name, &secret);
  }
  return secrets;
}

}  // namespace

std::vector<std::string> changed_secrets(const manifest::Manifest& before,
                                         const manifest::Manifest& after) {
  const auto old_secrets = by_name(before);
  const auto new_secrets = by_name(after);
  std::vector<std::string> changed;
  for (const auto& [name, secret] : new_secrets) {
    const auto old = old_secrets.find(name);
    if (old == old_secrets.end() || !same(*old->second, *secret)) {
      changed.push_back(name);
    }
  }
  for (const auto& [name, secret] : old_secrets) {
    if (!new_secrets.contains(name)) {
      changed.push_back(name);
    }
  }
  std::sort(changed.begin(), changed.end());
  return changed;
}

}  // namespace secretfs::state
