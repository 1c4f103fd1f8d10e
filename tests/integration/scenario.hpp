// A test's secrets: a throwaway identity, age files made by the reference `age` CLI or by
// secretfs, and a manifest naming them.
#pragma once

#include <filesystem>
#include <string>

#include "fixture.hpp"

namespace secretfs::test {

// Uids and gids with no passwd entry: the manifest uses them as numbers.
inline constexpr uid_t kOwner = 4001;
inline constexpr uid_t kGroupMember = 4002;
inline constexpr uid_t kStranger = 4003;
inline constexpr gid_t kOwnerGroup = 4001;
inline constexpr gid_t kSharedGroup = 4100;
inline constexpr gid_t kStrangerGroup = 4003;

inline const Reader kOwnerReader{kOwner, kOwnerGroup, {}};
inline const Reader kMemberReader{kGroupMember, kGroupMember, {kSharedGroup}};
inline const Reader kStrangerReader{kStranger, kStrangerGroup, {}};

class Scenario {
 public:
  Scenario();

  const TempDir& dir() const { return dir_; }
  const std::filesystem::path& key() const { return key_; }
  const std::string& recipient() const { return recipient_; }

  // Encrypts `plaintext` with `age -r <recipient> <flags>` into dir()/<file>.
  std::filesystem::path age_file(const std::string& file, const std::string& plaintext,
                                 const std::string& flags = "");

  // Encrypts `plaintext` into dir()/<file> for a throwaway key that this scenario does not
  // have, so that no configured identity opens it.
  std::filesystem::path foreign_age_file(const std::string& file, const std::string& plaintext);

  // Writes dir()/manifest.toml with this scenario's identity, state_dir = dir()/state and
  // `secrets` (TOML tables).
  std::filesystem::path manifest(const std::string& secrets,
                                 const std::string& identities = "") const;

  std::filesystem::path mount_point() const { return dir_ / "mnt"; }
  std::filesystem::path state_dir() const { return dir_ / "state"; }

 private:
  TempDir dir_;
  std::filesystem::path key_;
  std::string recipient_;
};

// A deterministic test plaintext of `size` bytes (every byte value appears).
std::string pattern(std::size_t size);

}  // namespace secretfs::test
