// Checks on the set of secret names as a whole, beside check_name() for one name, and how
// messages name them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "secretfs/manifest.hpp"

namespace secretfs::manifest {

// A secret whose name is also a folder on the path of another secret: `a` and `a/b`. Both
// cannot be served, since `a` would have to be a file and a directory at once.
struct NameConflict {
  std::string file;       // "a"
  std::string directory;  // "a/b", the secret that needs `a` to be a directory
};

// Every pair of names in conflict, ordered by `directory`. The names must already pass
// check_name().
std::vector<NameConflict> find_conflicts(const std::vector<std::string>& names);

// `name` made safe to print: each byte of a control character or a bidirectional control becomes
// \xNN, so that a hostile name cannot forge lines in a log or a terminal, nor reorder them.
std::string printable_name(std::string_view name);

// How every refusal of a secret or template reads:
// "manifest.toml:7: template `app/env`: REASON" ("manifest.toml: ..." when `line` is 0).
std::string entry_problem(std::string_view source, int line, EntryKind kind, std::string_view name,
                          std::string_view reason);

}  // namespace secretfs::manifest
