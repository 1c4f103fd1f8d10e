// The names found in the state directory, checked strictly: whatever is read from disk is
// validated before it turns into a path or a number.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "secretfs/state.hpp"

namespace secretfs::state {

// Every temporary name starts with this, so that leftovers of a crash are easy to tell apart.
inline constexpr std::string_view kTemporaryPrefix = ".tmp-";

// A generation number written in decimal: digits only, no sign, no leading zero, not zero, and
// small enough for Number.
std::optional<Number> parse_number(std::string_view text);

// A blob's name: exactly 64 lower-case hex characters, the SHA-256 of its content.
bool is_blob_name(std::string_view name);

bool is_temporary_name(std::string_view name);

// "generations/.tmp-7-<random>" and the like.
std::string temporary_name(std::string_view purpose);

}  // namespace secretfs::state
