// What opening each secret needs, kept from one open to the next, so that an open after the
// first costs one stat and one ChaCha20-Poly1305 pass instead of a read, a hash, a header, an
// X25519 unwrap and two key derivations.
//
// Per secret: its payload key (all of them in one locked allocation), where its chunks start,
// and, for small files within a budget, the ciphertext itself. An entry is trusted only while
// the file on disk is the one it was made from: same device, inode, size, modification and
// change time. A file replaced or changed behind the daemon's back is read and checked again
// in full, stored hash included, exactly as on its first open. Plaintext is never kept.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <ctime>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "fs/tree.hpp"
#include "secretfs/age/age.hpp"
#include "secretfs/manifest.hpp"
#include "secretfs/secret_bytes.hpp"

namespace secretfs::fs {

class OpenedFiles {
 public:
  // `max_file_size`: the manifest's max_secret_size; a larger file is refused before it is read.
  OpenedFiles(std::size_t count, std::uint64_t max_file_size);

  // The whole authenticated plaintext of secret `index`, whose manifest entry is `secret`.
  // Throws age::Error naming what failed; nothing of a failed file is kept.
  SecretBytes decrypt(std::size_t index, const ServedSecret& secret,
                      std::span<const age::Identity* const> identities) const;

  // Checks what an open checks except the payload (read, stored hash, header, MAC, payload
  // length), keeps the result for the opens that follow, and returns the plaintext's size.
  // Safe to call from several threads at once. Throws age::Error.
  std::uint64_t check(std::size_t index, const ServedSecret& secret,
                      std::span<const age::Identity* const> identities) const;

  // Bytes of ciphertext kept in memory, for the daemon's status.
  std::size_t kept_bytes() const;

 private:
  // What identifies one version of a file without reading it.
  struct Stamp {
    dev_t device = 0;
    ino_t inode = 0;
    off_t size = 0;
    std::timespec modified{};
    std::timespec changed{};
    bool operator==(const Stamp& other) const;
  };

  struct Entry {
    bool known = false;
    Stamp stamp;
    std::size_t chunks_offset = 0;  // in the de-armored file
    std::uint64_t plaintext_size = 0;
    bool armored = false;
    std::shared_ptr<const std::vector<std::uint8_t>> kept;  // the de-armored file, if kept
  };

  // A file's bytes and the stamp of the version they were read from.
  struct FileRead {
    std::vector<std::uint8_t> bytes;
    Stamp stamp;
  };

  // What a trusted entry gives an open: the key, and the kept file if there is one.
  struct Hit {
    SecretBytes payload_key;
    std::size_t chunks_offset = 0;
    std::uint64_t plaintext_size = 0;
    bool armored = false;
    std::shared_ptr<const std::vector<std::uint8_t>> kept;
  };

  static Stamp stamp_of(const struct stat& status);
  static Stamp current_stamp(const ServedSecret& secret);
  FileRead read(const ServedSecret& secret) const;
  std::optional<Hit> trusted(std::size_t index, const Stamp& stamp) const;
  // A binary file too large to keep, read a chunk at a time and decrypted as read; nullopt
  // when the file is no longer the version `hit` was made from.
  std::optional<SecretBytes> decrypt_in_pieces(const ServedSecret& secret, const Hit& hit,
                                               const Stamp& stamp) const;
  age::OpenedFile open_in_full(const ServedSecret& secret, FileRead file,
                               std::span<const age::Identity* const> identities) const;
  std::uint64_t remember(std::size_t index, const Stamp& stamp, age::OpenedFile& opened) const;

  std::uint64_t max_file_size_;
  mutable std::mutex mutex_;
  mutable std::vector<Entry> entries_;
  mutable SecretBytes payload_keys_;  // one key per secret, by index
  mutable std::size_t kept_bytes_ = 0;
};

// The age file (or template file) `file`, checked against `sha256` (a stored generation's blob
// name; empty for a file served straight from a manifest). Throws age::Error(io) when it cannot
// be read, is over `max_size` bytes or does not match, or is a stored blob that another user
// owns or that group or others may write to.
std::vector<std::uint8_t> read_stored_file(const std::filesystem::path& file,
                                           const std::string& sha256, std::uint64_t max_size);

}  // namespace secretfs::fs
