// Encrypting and decrypting whole age v1 files.
#pragma once

#include <sys/stat.h>

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

// An age file whose header has been opened: what decrypting it again and again needs, without
// the asymmetric step or the header. The payload key is as secret as the plaintext.
struct OpenedFile {
  SecretBytes payload_key;
  std::vector<std::uint8_t> binary;  // the file, de-armored
  std::size_t chunks_offset = 0;     // where the payload's chunks start in `binary`
  bool armored = false;              // whether the file itself was armored

  std::span<const std::uint8_t> chunks() const { return std::span(binary).subspan(chunks_offset); }
};

// Unwraps the file key with the first identity that can, checks the header MAC and the
// payload's length, and derives the payload key; decrypt_chunks(payload_key, chunks()) then
// gives the plaintext. Throws like verify_header, and Error(payload) for a payload length
// that no STREAM has.
OpenedFile open_file(std::vector<std::uint8_t> file, std::span<const Identity* const> identities);

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

// A file's bytes and the fstat of the file they were read from.
struct FileContents {
  std::vector<std::uint8_t> bytes;
  struct stat status {};
};

// Reads a whole regular file, refusing anything else (a FIFO or a device could block or never
// end) and a file over `max_size` bytes with Error(io) before reading.
FileContents read_regular_file(const std::filesystem::path& path,
                               std::uint64_t max_size = UINT64_MAX);

}  // namespace secretfs::age
