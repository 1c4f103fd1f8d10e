// Padded base64, which only the ASCII armor uses. The unpadded form of the header is declared
// in secretfs/age/format.hpp.
#pragma once

#include <algorithm>
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

// libsodium 1.0.18 decodes every byte from 0x80 up as if it were '/', so a text holding one
// would pass for canonical base64 (and a header age refuses would be accepted). Every decoder
// hands libsodium only texts that pass this check.
inline bool is_ascii(std::string_view text) {
  constexpr unsigned char kFirstNonAscii = 0x80;
  return std::none_of(text.begin(), text.end(),
                      [](char c) { return static_cast<unsigned char>(c) >= kFirstNonAscii; });
}

}  // namespace secretfs::age
