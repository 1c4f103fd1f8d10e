// Bech32 (BIP-173, checksum constant 1) without the 90-character limit, as age uses it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "secretfs/secret_bytes.hpp"

namespace secretfs::age::bech32 {

struct Decoded {
  std::string hrp;   // as written (case preserved), e.g. "age" or "AGE-SECRET-KEY-"
  SecretBytes data;  // the 8-bit payload; secure memory because it may be a secret key
};

// Encodes `data` under `hrp`; the result is uppercase when `hrp` is uppercase.
SecretBytes encode(std::string_view hrp, std::span<const std::uint8_t> data);

// Decodes a Bech32 string: mixed case, bad checksum, bad padding or characters fail.
std::optional<Decoded> decode(std::string_view text);

}  // namespace secretfs::age::bech32
