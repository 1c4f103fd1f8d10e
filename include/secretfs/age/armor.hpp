// ASCII armor: "-----BEGIN AGE ENCRYPTED FILE-----", padded base64 at 64 columns, END line.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace secretfs::age {

// True when, after optional leading whitespace, the input starts with a "-----BEGIN" line, or
// when it is not a binary age file and has the BEGIN line within its first KiB (then dearmor
// reports the text before it).
bool is_armored(std::span<const std::uint8_t> file);

// Strictly decodes an armored file to the binary age file it holds.
// Throws Error(ErrorKind::armor) naming the problem.
std::vector<std::uint8_t> dearmor(std::span<const std::uint8_t> file);

// Wraps a binary age file in armor, ending with a newline after the END line.
std::string armor(std::span<const std::uint8_t> binary);

}  // namespace secretfs::age
