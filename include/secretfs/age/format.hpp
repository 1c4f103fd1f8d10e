// The age v1 header: version line, recipient stanzas and MAC line.
//
// The parser is strict on purpose: canonical base64 without padding, exactly one space
// between arguments, LF line endings, and body lines of at most 64 columns. Because it
// accepts only the one canonical encoding, the raw bytes it read are the bytes the MAC covers.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace secretfs::age {

inline constexpr std::size_t kFileKeySize = 16;
inline constexpr std::size_t kMacSize = 32;
inline constexpr std::size_t kMaxHeaderSize = 64 * 1024;
inline constexpr std::size_t kMaxStanzas = 256;

struct Stanza {
  std::string type;               // first argument after "->"
  std::vector<std::string> args;  // the remaining arguments
  std::vector<std::uint8_t> body;

  bool operator==(const Stanza&) const = default;
};

struct Header {
  std::vector<Stanza> stanzas;
  std::array<std::uint8_t, kMacSize> mac{};
  std::size_t mac_input_size = 0;  // bytes from the start of the file up to and including "---"
  std::size_t payload_offset = 0;  // first byte after the MAC line's LF
};

// Parses the header at the start of a binary (not armored) age file.
// Throws Error(ErrorKind::header) naming the first problem found.
Header parse_header(std::span<const std::uint8_t> file);

// The header's canonical text from the version line up to and including "---",
// i.e. what the MAC is computed over.
std::string encode_header_without_mac(const std::vector<Stanza>& stanzas);

// Completes a header text from encode_header_without_mac with " <mac>\n".
std::string encode_mac_line(std::span<const std::uint8_t, kMacSize> mac);

// Canonical unpadded standard base64, as used in stanzas and the MAC line.
std::string encode_base64_unpadded(std::span<const std::uint8_t> bytes);

// Decodes canonical unpadded base64; returns false for anything else (padding, stray bits,
// characters outside the alphabet, a length of 1 mod 4).
bool decode_base64_unpadded(std::string_view text, std::vector<std::uint8_t>& out);

}  // namespace secretfs::age
