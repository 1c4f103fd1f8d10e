// Encrypting and decrypting whole age v1 files.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "secretfs/age/error.hpp"
#include "secretfs/age/identity.hpp"
#include "secretfs/secret_bytes.hpp"

namespace secretfs::age {

enum class Output { binary, armored };

// Decrypts a binary or armored age file. All or nothing: either every chunk of the payload
// authenticated and the whole plaintext is returned, or Error is thrown and nothing is
// released. Identities are tried in order. A no_match error lists the identities tried.
SecretBytes decrypt(std::span<const std::uint8_t> file,
                    std::span<const Identity* const> identities);

// Unwraps the file key and checks the header MAC without touching the payload: the check
// that `secretfs check` runs. Throws like decrypt for the header part.
void verify_header(std::span<const std::uint8_t> file, std::span<const Identity* const> identities);

// The file key of `file`, unwrapped by the first identity that can and checked against the
// header MAC, for a caller that keeps it to open the same file again without the asymmetric
// step. Throws like verify_header.
SecretBytes unwrap_file_key(std::span<const std::uint8_t> file,
                            std::span<const Identity* const> identities);

// Decrypts `file` with a file key from unwrap_file_key: the header MAC is checked against it
// first (Error(hmac) when the file is not the one the key came from), then the whole payload,
// all or nothing as in decrypt.
SecretBytes decrypt_with_file_key(std::span<const std::uint8_t> file,
                                  std::span<const std::uint8_t> file_key);

// The exact plaintext size of a binary or armored age file, from its header and length alone.
// Throws Error(armor/header/payload) when the file cannot be a valid age file.
std::uint64_t plaintext_size(std::span<const std::uint8_t> file);

// Encrypts `plaintext` to every recipient with a fresh file key.
std::vector<std::uint8_t> encrypt(std::span<const std::uint8_t> plaintext,
                                  std::span<const Recipient* const> recipients,
                                  Output output = Output::binary);

// Raw pointers for the span-taking functions above.
std::vector<const Identity*> pointers(const Identities& identities);
std::vector<const Recipient*> pointers(const Recipients& recipients);

// Reads a whole file into memory (ciphertext only); throws Error(io) naming it.
std::vector<std::uint8_t> read_file(const std::filesystem::path& path);

}  // namespace secretfs::age
