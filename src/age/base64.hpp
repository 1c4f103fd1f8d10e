// Padded base64, which only the ASCII armor uses. The unpadded form of the header is declared
// in secretfs/age/format.hpp.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace secretfs::age {

// Canonical padded standard base64.
std::string encode_base64_padded(std::span<const std::uint8_t> bytes);

// Decodes canonical padded base64 (exactly the right '=' padding, no stray bits, nothing
// outside the alphabet); returns false for anything else.
bool decode_base64_padded(std::string_view text, std::vector<std::uint8_t>& out);

}  // namespace secretfs::age
