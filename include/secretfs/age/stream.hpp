// The age payload: a 16-byte nonce and ChaCha20-Poly1305 chunks of 64 KiB (STREAM).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "secretfs/secret_bytes.hpp"

namespace secretfs::age {

inline constexpr std::size_t kPayloadNonceSize = 16;
inline constexpr std::size_t kChunkSize = 64 * 1024;
inline constexpr std::size_t kTagSize = 16;

// The plaintext size of a payload of `payload_size` bytes (nonce included), or nullopt when
// no valid payload has that size. Needs no key: AEAD overhead is fixed per chunk.
std::optional<std::uint64_t> plaintext_size(std::uint64_t payload_size);

// Decrypts and authenticates the whole payload (nonce and chunks) before returning anything.
// Throws Error(header) when the nonce is short (the test vectors' convention) and
// Error(payload) for any chunk that fails; no plaintext survives a failure.
SecretBytes decrypt_payload(std::span<const std::uint8_t> file_key,
                            std::span<const std::uint8_t> payload);

// The key of a payload: derived from the file key and the payload's 16-byte nonce.
SecretBytes payload_key(std::span<const std::uint8_t> file_key,
                        std::span<const std::uint8_t> nonce);

// Decrypts and authenticates the chunks after the nonce with the payload key, all or nothing
// as decrypt_payload does. Throws Error(payload) for a bad length or a chunk that fails.
SecretBytes decrypt_chunks(std::span<const std::uint8_t> payload_key,
                           std::span<const std::uint8_t> chunks);

// Encrypts `plaintext` under a fresh random nonce; returns nonce and chunks.
std::vector<std::uint8_t> encrypt_payload(std::span<const std::uint8_t> file_key,
                                          std::span<const std::uint8_t> plaintext);

// The same with a given nonce, for tests that reproduce known payloads.
std::vector<std::uint8_t> encrypt_payload(std::span<const std::uint8_t> file_key,
                                          std::span<const std::uint8_t, kPayloadNonceSize> nonce,
                                          std::span<const std::uint8_t> plaintext);

}  // namespace secretfs::age
