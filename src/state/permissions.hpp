// Who may change what the state directory holds. Everything in it decides what is served: a
// generation's manifest gives every secret its owner and mode, `current` picks the generation,
// and a blob is the ciphertext itself. An entry that a user other than root could have
// written is refused, never repaired: chmod would hide that someone may already have.
#pragma once

#include <sys/stat.h>

#include <filesystem>
#include <string>

#include "secretfs/state.hpp"

namespace secretfs::state {

// How another user could have changed an entry, if at all.
enum class Exposure {
  none,
  foreign_owner,  // not root's (with Ownership::root)
  writable,       // group or others may write to it
};

Exposure exposure_of(const struct stat& status, Ownership ownership);

// "not owned by root", "group or others may write to it".
std::string reason(Exposure exposure);

// What fixes `exposure` for `path`: "chown root PATH", or "want mode 0600 (chmod 0600 PATH)"
// (0700 for a folder).
std::string fix(Exposure exposure, const std::filesystem::path& path, const struct stat& status);

// "PATH (owner uid U, mode 0MMM)", for messages that name what they refuse.
std::string owner_and_mode(const std::filesystem::path& path, const struct stat& status);

// Throws StateError when another user could have changed `path`, an entry that secretfs
// creates once or replaces whole (the state directory's folders, `current`, `last`), naming
// it, its owner and mode, and the chmod or chown that fixes it. `label` leads the message
// ("state directory"), when not empty.
void refuse_changeable(const std::string& label, const std::filesystem::path& path,
                       const struct stat& status, Ownership ownership);

// The same for generation `number`'s `folder` and the files in it. Fixing the mode is not
// enough there: whoever could write may have changed the generation (its manifest and the
// SHA-256 that checks it alike), so the message says to check or remove it.
void refuse_changeable_generation(Number number, const std::filesystem::path& folder,
                                  const std::filesystem::path& path, const struct stat& status,
                                  Ownership ownership);

}  // namespace secretfs::state
