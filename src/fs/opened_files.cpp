#include "fs/opened_files.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <exception>
#include <mutex>
#include <optional>
#include <string>

#include "fs/parallel.hpp"
#include "secretfs/age/armor.hpp"
#include "secretfs/age/stream.hpp"
#include "secretfs/unique_fd.hpp"

namespace secretfs::fs {

namespace {

constexpr std::size_t kPayloadKeySize = crypto_aead_chacha20poly1305_ietf_KEYBYTES;
// Files up to this size (one 64 KiB chunk and a generous header) are kept in memory ...
constexpr std::size_t kKeptFileLimit = 128 * 1024;
// ... until this many bytes are kept in all; larger or later files are read at each open.
constexpr std::size_t kKeptBudget = 16 * 1024 * 1024;
constexpr uid_t kRootUid = 0;
constexpr mode_t kPermissionBits = 07777;

[[noreturn]] void throw_io(const std::filesystem::path& path, const char* what, int error) {
  throw age::Error(age::ErrorKind::io, path.string() + ": " + what + ": " + std::strerror(error));
}

// Fills `buffer` from `offset` on; a file that ends first was truncated while read.
void read_exactly(int fd, const std::filesystem::path& path, std::span<std::uint8_t> buffer,
                  off_t offset) {
  std::size_t filled = 0;
  while (filled < buffer.size()) {
    const ssize_t got = ::pread(fd, buffer.data() + filled, buffer.size() - filled,
                                offset + static_cast<off_t>(filled));
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got < 0) {
      throw_io(path, "read", errno);
    }
    if (got == 0) {
      throw age::Error(age::ErrorKind::payload, path.string() + ": ends early while read");
    }
    filled += static_cast<std::size_t>(got);
  }
}

bool same_time(const std::timespec& a, const std::timespec& b) {
  return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

void check_stored_hash(const std::string& path, const std::string& sha256,
                       std::span<const std::uint8_t> file) {
  if (sha256.empty()) {
    return;
  }
  // A stored ciphertext is named by its hash; one that no longer matches was changed behind
  // the state directory's back, even if it still decrypts.
  std::array<std::uint8_t, crypto_hash_sha256_BYTES> hash{};
  crypto_hash_sha256(hash.data(), file.data(), file.size());
  std::string hex(hash.size() * 2 + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), hash.data(), hash.size());
  hex.pop_back();
  if (hex != sha256) {
    throw age::Error(age::ErrorKind::io, path +
                                             ": stored ciphertext does not match its SHA-256 "
                                             "name; the state directory was changed");
  }
}

// A stored ciphertext that another user could replace is refused even while its SHA-256 still
// matches: the state directory is root's alone, and whoever can write there can do more than
// change one blob. Files served straight from a manifest are the manifest's business.
void refuse_changeable_blob(const std::filesystem::path& path, const std::string& sha256,
                            const struct stat& status) {
  if (sha256.empty()) {
    return;
  }
  const bool foreign = status.st_uid != kRootUid && status.st_uid != ::geteuid();
  if (!foreign && (status.st_mode & (S_IWGRP | S_IWOTH)) == 0) {
    return;
  }
  throw age::Error(
      age::ErrorKind::io,
      fmt::format("{}: stored ciphertext (owner uid {}, mode {:04o}) {}; {}", path.string(),
                  status.st_uid, status.st_mode & kPermissionBits,
                  foreign ? "is not root's" : "may be written by group or others",
                  foreign ? "chown root " + path.string() : "chmod 0600 " + path.string()));
}

}  // namespace

bool OpenedFiles::Stamp::operator==(const Stamp& other) const {
  return device == other.device && inode == other.inode && size == other.size &&
         same_time(modified, other.modified) && same_time(changed, other.changed);
}

OpenedFiles::OpenedFiles(std::size_t count, std::uint64_t max_file_size)
    : max_file_size_(max_file_size), entries_(count), payload_keys_(count * kPayloadKeySize) {}

SecretBytes OpenedFiles::decrypt(std::size_t index, const ServedSecret& secret,
                                 std::span<const age::Identity* const> identities) const {
  const Stamp stamp = current_stamp(secret);
  const auto hit = trusted(index, stamp);
  if (hit && hit->kept) {
    return age::decrypt_chunks(hit->payload_key.span(),
                               std::span(*hit->kept).subspan(hit->chunks_offset));
  }
  if (hit && !hit->armored) {
    if (auto plaintext = decrypt_in_pieces(secret, *hit, stamp)) {
      return std::move(*plaintext);
    }
  }
  FileRead file = read(secret);
  // An armored file too large to keep is read whole again; its key serves only the version it
  // came from.
  if (hit && hit->armored && file.stamp == stamp) {
    const auto binary = age::dearmor(file.bytes);
    return age::decrypt_chunks(hit->payload_key.span(),
                               std::span(binary).subspan(hit->chunks_offset));
  }
  const Stamp read_stamp = file.stamp;
  age::OpenedFile opened = open_in_full(secret, std::move(file), identities);
  SecretBytes plaintext = age::decrypt_chunks(opened.payload_key.span(), opened.chunks());
  // Only a file whose payload authenticated is remembered.
  remember(index, read_stamp, opened);
  return plaintext;
}

std::uint64_t OpenedFiles::check(std::size_t index, const ServedSecret& secret,
                                 std::span<const age::Identity* const> identities) const {
  if (const auto hit = trusted(index, current_stamp(secret))) {
    return hit->plaintext_size;
  }
  FileRead file = read(secret);
  const Stamp read_stamp = file.stamp;
  age::OpenedFile opened = open_in_full(secret, std::move(file), identities);
  return remember(index, read_stamp, opened);
}

std::size_t OpenedFiles::kept_bytes() const {
  const std::lock_guard<std::mutex> hold(mutex_);
  return kept_bytes_;
}

OpenedFiles::Stamp OpenedFiles::stamp_of(const struct stat& status) {
  return {status.st_dev, status.st_ino, status.st_size, status.st_mtim, status.st_ctim};
}

OpenedFiles::Stamp OpenedFiles::current_stamp(const ServedSecret& secret) {
  struct stat status {};
  if (::stat(secret.file.c_str(), &status) != 0) {
    throw_io(secret.file, "stat", errno);
  }
  return stamp_of(status);
}

OpenedFiles::FileRead OpenedFiles::read(const ServedSecret& secret) const {
  age::FileContents contents = age::read_regular_file(secret.file, max_file_size_);
  refuse_changeable_blob(secret.file, secret.sha256, contents.status);
  return {std::move(contents.bytes), stamp_of(contents.status)};
}

std::optional<SecretBytes> OpenedFiles::decrypt_in_pieces(const ServedSecret& secret,
                                                          const Hit& hit,
                                                          const Stamp& stamp) const {
  // O_NONBLOCK: whatever replaced the file since the stat (a FIFO) must not block the open.
  const UniqueFd fd(::open(secret.file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  struct stat status {};
  if (fd.get() < 0 || ::fstat(fd.get(), &status) != 0 || !(stamp_of(status) == stamp)) {
    return std::nullopt;  // gone or changed since the stat: opened in full, which says why
  }
  const auto chunks_size = static_cast<std::uint64_t>(status.st_size) - hit.chunks_offset;
  age::ChunkDecryptor decryptor(hit.payload_key.span(), chunks_size);
  // Chunks are independent: every CPU takes its turn at reading and decrypting the next one.
  std::exception_ptr failure;
  std::mutex failure_mutex;
  for_each_index(decryptor.chunk_count(), [&](std::uint64_t index) {
    try {
      // Ciphertext only; each thread reuses its buffer from one chunk to the next.
      thread_local std::vector<std::uint8_t> buffer;
      buffer.resize(decryptor.chunk_size(index));
      const std::span<std::uint8_t> chunk(buffer);
      read_exactly(fd.get(), secret.file, chunk,
                   static_cast<off_t>(hit.chunks_offset + decryptor.chunk_offset(index)));
      decryptor.add(index, chunk);
    } catch (...) {
      const std::lock_guard<std::mutex> hold(failure_mutex);
      failure = std::current_exception();
    }
  });
  if (failure) {
    std::rethrow_exception(failure);
  }
  return decryptor.finish();
}

std::optional<OpenedFiles::Hit> OpenedFiles::trusted(std::size_t index, const Stamp& stamp) const {
  const std::lock_guard<std::mutex> hold(mutex_);
  const Entry& entry = entries_[index];
  if (!entry.known || !(entry.stamp == stamp)) {
    return std::nullopt;
  }
  const auto key = payload_keys_.span().subspan(index * kPayloadKeySize, kPayloadKeySize);
  return Hit{SecretBytes::copy_of(key), entry.chunks_offset, entry.plaintext_size, entry.armored,
             entry.kept};
}

age::OpenedFile OpenedFiles::open_in_full(const ServedSecret& secret, FileRead file,
                                          std::span<const age::Identity* const> identities) const {
  check_stored_hash(secret.file, secret.sha256, file.bytes);
  return age::open_file(std::move(file.bytes), identities);
}

std::uint64_t OpenedFiles::remember(std::size_t index, const Stamp& stamp,
                                    age::OpenedFile& opened) const {
  // open_file has checked that the chunks' length is one a STREAM can have.
  const std::uint64_t plaintext_size =
      age::plaintext_size(age::kPayloadNonceSize + opened.chunks().size()).value_or(0);
  const std::lock_guard<std::mutex> hold(mutex_);
  Entry& entry = entries_[index];
  if (entry.kept) {
    kept_bytes_ -= entry.kept->size();
    entry.kept.reset();
  }
  const std::size_t size = opened.binary.size();
  if (size <= kKeptFileLimit && kept_bytes_ + size <= kKeptBudget) {
    entry.kept = std::make_shared<const std::vector<std::uint8_t>>(std::move(opened.binary));
    kept_bytes_ += size;
  }
  const auto slot = payload_keys_.span().subspan(index * kPayloadKeySize, kPayloadKeySize);
  std::copy(opened.payload_key.span().begin(), opened.payload_key.span().end(), slot.begin());
  entry.chunks_offset = opened.chunks_offset;
  entry.armored = opened.armored;
  entry.plaintext_size = plaintext_size;
  entry.stamp = stamp;
  entry.known = true;
  return plaintext_size;
}

std::vector<std::uint8_t> read_stored_file(const std::filesystem::path& file,
                                           const std::string& sha256, std::uint64_t max_size) {
  age::FileContents contents = age::read_regular_file(file, max_size);
  refuse_changeable_blob(file, sha256, contents.status);
  check_stored_hash(file.native(), sha256, contents.bytes);
  return std::move(contents.bytes);
}

}  // namespace secretfs::fs
