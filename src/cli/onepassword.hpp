// What `activate` and `check` do about secrets read from 1Password.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "secretfs/manifest.hpp"
#include "secretfs/state.hpp"

namespace secretfs::cli {

// What stops every 1Password read at once and only a fix can mend, as "[onepassword]: ...": an
// `op` that cannot or must not run, a token file that is refused. A missing token file is not
// one: it may yet come.
std::optional<std::string> onepassword_settings_problem(const manifest::Manifest& manifest);

// The references of secrets read from 1Password, each once, in the manifest's order.
std::vector<std::string> references_of(const manifest::Manifest& manifest);

// For `activate`: reads each reference that has no cached value yet and caches it, so that the
// generation serves it at once. A reference with a cached value is not read: a switch never
// waits on the network for what it can serve already (the daemon refreshes it). Prints a
// warning for each read that failed for a passing reason (network, token, rate limit, timeout):
// such a secret is served once the daemon reads it. The caller holds the state directory's lock,
// and keeps it until the generation that serves these values is switched to: a read of the
// daemon's for the identities served until then must not replace them meanwhile.
struct NewValues {
  // One per reference that 1Password says does not exist, is ambiguous or cannot be used (or
  // whose token file is refused): each refuses the activation.
  std::vector<std::string> problems;
  // The secrets, and the templates inserting them, whose reference now has a value that the
  // host did not have before: they change for their readers even where the generation does not.
  std::vector<std::string> changed;
};
NewValues read_new_values(state::StateDir& state, const manifest::Manifest& manifest);

// For `check`: with a readable token file, whether each reference resolves (nothing is kept).
struct ReferenceFindings {
  std::vector<std::string> problems;  // does not exist, ambiguous
  std::vector<std::string> warnings;  // could not be checked, and why
};
ReferenceFindings check_references(const manifest::Manifest& manifest);

}  // namespace secretfs::cli
