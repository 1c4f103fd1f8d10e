// HKDF-SHA-256 (RFC 5869) with a 32-byte output, built on libsodium's incremental HMAC
// because libsodium 1.0.18 has no HKDF of its own.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "secretfs/secret_bytes.hpp"

namespace secretfs::age {

inline constexpr std::size_t kHkdfOutputSize = 32;

// The first 32 bytes of HKDF-Expand(HKDF-Extract(salt, ikm), info).
SecretBytes hkdf_sha256(std::span<const std::uint8_t> ikm, std::span<const std::uint8_t> salt,
                        std::string_view info);

inline std::span<const std::uint8_t> as_bytes(std::string_view text) {
  return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

}  // namespace secretfs::age
