// What X25519-based stanzas share: the Diffie-Hellman step, decoding an ephemeral share from
// a stanza argument, and sealing or opening the 32-byte body that carries the file key.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "secretfs/age/format.hpp"
#include "secretfs/age/stream.hpp"
#include "secretfs/secret_bytes.hpp"

namespace secretfs::age {

inline constexpr std::size_t kCurve25519Size = 32;
inline constexpr std::size_t kWrappedFileKeySize = kFileKeySize + kTagSize;

using Curve25519Point = std::array<std::uint8_t, kCurve25519Size>;

// "stanza 3" for the stanza at zero-based `index`, as error messages name it.
std::string stanza_name(std::size_t index);

// X25519(scalar, basepoint).
Curve25519Point x25519_public_key(std::span<const std::uint8_t> scalar);

// X25519(scalar, point), or nullopt when the result is all zero (a low-order point).
std::optional<SecretBytes> x25519_shared_secret(std::span<const std::uint8_t> scalar,
                                                std::span<const std::uint8_t> point);

// Decodes the ephemeral share in `stanza.args[argument]`; throws Error(header) unless it is
// canonical base64 of exactly 32 bytes.
Curve25519Point decode_share(const Stanza& stanza, std::size_t argument, std::size_t index);

// Throws Error(header) unless the body is exactly one wrapped file key. Checked before any
// decryption, so that one ciphertext cannot be tried against many keys.
void require_wrapped_file_key(const Stanza& stanza, std::size_t index);

// ChaCha20-Poly1305 of the file key under `wrap_key` with the all-zero nonce, which is safe
// because every wrap key is derived fresh and used once.
std::vector<std::uint8_t> seal_file_key(const SecretBytes& wrap_key,
                                        std::span<const std::uint8_t> file_key);

// The file key, or nullopt when the body does not authenticate under `wrap_key`.
std::optional<SecretBytes> open_file_key(const SecretBytes& wrap_key,
                                         std::span<const std::uint8_t> body);

}  // namespace secretfs::age
