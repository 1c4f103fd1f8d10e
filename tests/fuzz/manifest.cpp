// Fuzzes the manifest loader from TOML text to the secrets it accepts, with a fixed set of
// users and groups so that no input reaches the host's passwd. Top-level problems must throw
// ManifestError; a bad secret must only be refused.
//
// Promises checked, from manifest.hpp and docs/manifest.md: accepted secrets have valid names
// and read-only modes, are sorted by unique name, name absolute files, and no accepted name is
// also another's directory; the mount point, state directory and identities are absolute, and
// at least two generations are kept.
#include <algorithm>
#include <set>
#include <string_view>

#include "../unit/fake_accounts.hpp"
#include "fuzz_support.hpp"
#include "secretfs/manifest.hpp"

namespace {

using namespace secretfs::manifest;
using secretfs::fuzz::require;

constexpr mode_t kReadBits = 0444;
constexpr std::size_t kLeastGenerations = 2;

void check_no_file_is_a_directory(const std::vector<Secret>& secrets) {
  std::set<std::string_view> names;
  for (const auto& secret : secrets) {
    names.insert(secret.name);
  }
  for (const auto& secret : secrets) {
    for (auto slash = secret.name.find('/'); slash != std::string::npos;
         slash = secret.name.find('/', slash + 1)) {
      require(!names.contains(std::string_view(secret.name).substr(0, slash)),
              "no accepted secret is also another's directory");
    }
  }
}

void check_secrets(const std::vector<Secret>& secrets) {
  for (const auto& secret : secrets) {
    require(!check_name(secret.name).has_value(), "an accepted secret has a valid name");
    require((secret.mode & ~kReadBits) == 0, "an accepted secret's mode has read bits only");
    require(secret.file.is_absolute(), "an accepted secret's file is absolute");
  }
  require(std::adjacent_find(secrets.begin(), secrets.end(),
                             [](const Secret& a, const Secret& b) { return a.name >= b.name; }) ==
              secrets.end(),
          "accepted secrets are sorted by unique name");
  check_no_file_is_a_directory(secrets);
}

void check_manifest(const Manifest& manifest) {
  check_secrets(manifest.secrets);
  require(manifest.mount_point.is_absolute(), "the mount point is absolute");
  require(manifest.state_dir.is_absolute(), "the state directory is absolute");
  require(std::all_of(manifest.identities.begin(), manifest.identities.end(),
                      [](const auto& path) { return path.is_absolute(); }),
          "identity paths are absolute");
  require(manifest.keep_generations >= kLeastGenerations, "at least two generations are kept");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const testing::FakeAccounts accounts;
  try {
    check_manifest(
        parse(secretfs::fuzz::as_text(data, size), "/etc/secretfs", "fuzz.toml", accounts));
  } catch (const ManifestError&) {
  }
  return 0;
}
