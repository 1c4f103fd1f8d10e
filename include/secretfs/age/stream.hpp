// The age payload: a 16-byte nonce and ChaCha20-Poly1305 chunks of 64 KiB (STREAM).
#pragma once

#include <atomic>
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

// Decrypts a payload's chunks as they are read, into one plaintext buffer sized from the
// chunks' total length, so a large file is never held whole as ciphertext. Chunks may come in
// any order and from several threads at once (each index once). The plaintext is handed out
// only once every chunk has authenticated; a decryptor destroyed before that wipes it.
class ChunkDecryptor {
 public:
  // Throws Error(key) for a key that is not 32 bytes, Error(payload) for a length no STREAM
  // has.
  ChunkDecryptor(std::span<const std::uint8_t> payload_key, std::uint64_t chunks_size);

  std::uint64_t chunk_count() const { return chunks_; }
  // Where chunk `index` starts among the chunks, and its size with its tag.
  std::uint64_t chunk_offset(std::uint64_t index) const;
  std::size_t chunk_size(std::uint64_t index) const;
  // Decrypts chunk `index`; throws Error(payload) when it fails to authenticate.
  void add(std::uint64_t index, std::span<const std::uint8_t> chunk);
  // The whole plaintext; throws Error(payload) when chunks are missing.
  SecretBytes finish();

 private:
  SecretBytes key_;
  SecretBytes plaintext_;
  std::uint64_t chunks_size_ = 0;
  std::uint64_t chunks_ = 0;
  std::atomic<std::uint64_t> added_{0};
};

// Encrypts `plaintext` under a fresh random nonce; returns nonce and chunks.
std::vector<std::uint8_t> encrypt_payload(std::span<const std::uint8_t> file_key,
                                          std::span<const std::uint8_t> plaintext);

// The same with a given nonce, for tests that reproduce known payloads.
std::vector<std::uint8_t> encrypt_payload(std::span<const std::uint8_t> file_key,
                                          std::span<const std::uint8_t, kPayloadNonceSize> nonce,
                                          std::span<const std::uint8_t> plaintext);

}  // namespace secretfs::age
