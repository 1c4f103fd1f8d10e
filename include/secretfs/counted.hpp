// Counts in messages that people read: "1 problem", "2 problems", "0 secrets".
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace secretfs {

// `noun` is singular and takes a plain "s" in the plural (secret, problem, file, recipient).
inline std::string counted(std::size_t count, std::string_view noun) {
  return std::to_string(count) + " " + std::string(noun) + (count == 1 ? "" : "s");
}

}  // namespace secretfs
