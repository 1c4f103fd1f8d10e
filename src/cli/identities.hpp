// The caller's own identities, for the commands that decrypt a secret file on an admin's
// machine (edit, view, rekey).
#pragma once

#include <string>
#include <vector>

#include "secretfs/age/identity.hpp"

namespace secretfs::cli {

// Loads the identity files given with -i. Without any, the first of these that exists:
// $SECRETFS_IDENTITY, ~/.config/secretfs/key.txt, ~/.ssh/id_ed25519. Files are checked like
// ssh checks its keys (owned by root or the caller, no access for group or others): a key
// others can read is no longer a secret, and saying so beats using it quietly.
age::Identities caller_identities(const std::vector<std::string>& paths);

}  // namespace secretfs::cli
