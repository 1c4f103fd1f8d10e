#include "cli/identities.hpp"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <optional>

#include "cli/io.hpp"
#include "secretfs/age/key_files.hpp"

namespace secretfs::cli {

namespace {

constexpr const char* kIdentityVariable = "SECRETFS_IDENTITY";
constexpr const char* kConfigKey = ".config/secretfs/key.txt";
constexpr const char* kSshKey = ".ssh/id_ed25519";

std::optional<std::filesystem::path> home_folder() {
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return std::filesystem::path(home);
  }
  if (const passwd* entry = ::getpwuid(::getuid()); entry != nullptr) {
    return std::filesystem::path(entry->pw_dir);
  }
  return std::nullopt;
}

// The usual places of an admin's key, in order: secretfs's own, then the ssh key most admins
// already have (age opens files encrypted to its ssh-ed25519 public key).
std::vector<std::filesystem::path> default_places() {
  std::vector<std::filesystem::path> places;
  if (const auto home = home_folder()) {
    places.push_back(*home / kConfigKey);
    places.push_back(*home / kSshKey);
  }
  return places;
}

std::filesystem::path default_identity_file() {
  // A variable that names a missing file is a mistake to report, not a reason to look elsewhere.
  if (const char* variable = std::getenv(kIdentityVariable); variable != nullptr && *variable) {
    return variable;
  }
  const auto places = default_places();
  std::string tried;
  for (const auto& place : places) {
    if (std::filesystem::exists(place)) {
      return place;
    }
    tried += (tried.empty() ? "" : ", ") + place.string();
  }
  throw Failure(
      "no identity to decrypt with: give -i FILE or set SECRETFS_IDENTITY (tried: " + tried + ")");
}

}  // namespace

age::Identities caller_identities(const std::vector<std::string>& paths) {
  std::vector<std::filesystem::path> files(paths.begin(), paths.end());
  if (files.empty()) {
    files.push_back(default_identity_file());
  }
  age::Identities identities;
  for (const auto& file : files) {
    for (auto& identity : age::load_identity_file(file, FilePermissions::strict)) {
      identities.push_back(std::move(identity));
    }
  }
  return identities;
}

}  // namespace secretfs::cli
