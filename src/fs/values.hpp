// Reading 1Password values and keeping them, encrypted, as the state directory's cached values:
// what the daemon's refresher and `secretfs activate` share.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "fs/keyring.hpp"
#include "secretfs/manifest.hpp"
#include "secretfs/onepassword.hpp"
#include "secretfs/state.hpp"

namespace secretfs::fs {

struct ValueOutcome {
  std::string reference;
  std::optional<onepassword::Error> error;  // why no value was read; nullopt: read
  bool changed = false;  // a value was read and differs from the cached one (or none was)
  // Read, but not kept: another process stored a value meanwhile, or the caller's identities
  // stopped being the served ones (`still_current` said no). Worth reading again at once.
  bool superseded = false;
};

// How read_values stores: taking the state directory's lock for each value, or under a lock
// that the caller holds already (activate, from its first read to its switch).
enum class Locking { per_value, held_by_caller };

// Where `op` keeps its configuration: a private folder of the state directory.
std::filesystem::path op_config_dir(const state::StateDir& state);

// Reads each reference with `op` and makes every value that differs from the cached one the new
// cached value, encrypted to the keyring's own identities (so only this host opens it). The
// value itself lives only in locked memory on the way. Never throws for a failure of `op` or of
// the token file: each reference's outcome says what went wrong. Throws state::StateError when
// the state directory cannot be written.
// `still_current`, asked under the lock before each value is stored, says whether `keyring` is
// still the one served: the daemon's refresher must not encrypt a value for identities that a
// switch has just replaced.
std::vector<ValueOutcome> read_values(state::StateDir& state,
                                      const manifest::OnePassword& settings,
                                      const Keyring& keyring,
                                      const std::vector<std::string>& references,
                                      std::uint64_t max_size, std::stop_token stop = {},
                                      Locking locking = Locking::per_value,
                                      const std::function<bool()>& still_current = {});

// What would stop every read before `op` runs: the token file and the `op` program, checked
// as each read checks them; nullopt when both would do. Asks 1Password nothing.
std::optional<onepassword::Error> settings_problem(const manifest::OnePassword& settings);

// Only checks that each reference resolves, and that its value would fit max_size once
// encrypted to the keyring's identities, keeping nothing (`secretfs check`).
std::vector<ValueOutcome> resolve_values(const state::StateDir* state,
                                         const manifest::OnePassword& settings,
                                         const Keyring& keyring,
                                         const std::vector<std::string>& references,
                                         std::uint64_t max_size);

}  // namespace secretfs::fs
