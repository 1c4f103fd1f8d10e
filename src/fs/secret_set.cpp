#include "fs/secret_set.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <vector>

#include "secretfs/age/age.hpp"
#include "secretfs/age/armor.hpp"
#include "secretfs/age/format.hpp"
#include "secretfs/age/stream.hpp"

namespace secretfs::fs {

namespace {

std::string describe(const manifest::Secret& secret) {
  return "secret `" + secret.name + "`: file " + secret.file.string();
}

// A file descriptor that closes itself.
class Descriptor {
 public:
  explicit Descriptor(int fd) : fd_(fd) {}
  ~Descriptor() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

[[noreturn]] void throw_io(const std::filesystem::path& path, const char* what) {
  throw age::Error(age::ErrorKind::io, path.string() + ": " + what + ": " + std::strerror(errno));
}

// Reads up to `limit` bytes from the start of the file.
std::vector<std::uint8_t> read_prefix(int fd, const std::filesystem::path& path,
                                      std::size_t limit) {
  std::vector<std::uint8_t> prefix(limit);
  std::size_t filled = 0;
  while (filled < limit) {
    const ssize_t got = ::pread(fd, prefix.data() + filled, limit - filled, filled);
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got < 0) {
      throw_io(path, "read");
    }
    if (got == 0) {
      break;
    }
    filled += static_cast<std::size_t>(got);
  }
  prefix.resize(filled);
  return prefix;
}

}  // namespace

std::vector<std::uint8_t> read_stored_file(const manifest::Secret& secret) {
  auto file = age::read_file(secret.file);
  if (secret.sha256.empty()) {
    return file;
  }
  // A stored ciphertext is named by its hash; one that no longer matches was changed behind
  // the state directory's back, even if it still decrypts.
  std::array<std::uint8_t, crypto_hash_sha256_BYTES> hash{};
  crypto_hash_sha256(hash.data(), file.data(), file.size());
  std::string hex(hash.size() * 2 + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), hash.data(), hash.size());
  hex.pop_back();
  if (hex != secret.sha256) {
    throw age::Error(age::ErrorKind::io, secret.file.string() +
                                             ": stored ciphertext does not match its SHA-256 "
                                             "name; the state directory was changed");
  }
  return file;
}

std::uint64_t inspect_size(const std::filesystem::path& path) {
  Descriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    throw_io(path, "open");
  }
  struct stat status {};
  if (::fstat(fd.get(), &status) != 0) {
    throw_io(path, "stat");
  }
  if (!S_ISREG(status.st_mode)) {
    throw age::Error(age::ErrorKind::io, path.string() + ": not a regular file");
  }

  // A binary header is at most kMaxHeaderSize bytes, so that prefix is all we read. Armor has
  // to be decoded whole to learn where the payload starts.
  const auto total = static_cast<std::uint64_t>(status.st_size);
  const auto prefix = read_prefix(fd.get(), path, age::kMaxHeaderSize);
  if (age::is_armored(prefix)) {
    return age::plaintext_size(age::read_file(path));
  }
  const age::Header header = age::parse_header(prefix);
  const auto size = age::plaintext_size(total - header.payload_offset);
  if (!size) {
    throw age::Error(age::ErrorKind::payload,
                     "payload of " + std::to_string(total - header.payload_offset) +
                         " bytes cannot be a whole number of chunks (truncated or padded)");
  }
  return *size;
}

SecretSet::SecretSet(const manifest::Manifest& manifest, std::shared_ptr<const Keyring> keyring,
                     InodeRegistry& inodes, std::uint64_t generation)
    : tree_(manifest.secrets, inodes),
      keyring_(std::move(keyring)),
      generation_(generation),
      mount_point_(manifest.mount_point) {
  ::clock_gettime(CLOCK_REALTIME, &time_);
  for (const auto& problem : manifest.problems) {
    problems_.push_back(problem.message + " (not served)");
  }
  problems_.insert(problems_.end(), keyring_->problems.begin(), keyring_->problems.end());
  setup_problem_count_ = problems_.size();
  sizes_.reserve(tree_.secrets().size());
  file_keys_ = SecretBytes(tree_.secrets().size() * age::kFileKeySize);
  known_keys_.assign(tree_.secrets().size(), false);
  for (const auto& secret : tree_.secrets()) {
    std::uint64_t size = 0;
    try {
      size = inspect_size(secret.file);
    } catch (const age::Error& error) {
      problems_.push_back(describe(secret) + ": " + std::string(age::to_string(error.kind())) +
                          ": " + error.what() + " (opening it fails with EIO)");
    }
    sizes_.push_back(size);
  }
}

std::uint64_t SecretSet::size(const Node& node) const {
  return node.is_directory() ? 0 : sizes_[node.secret];
}

SecretBytes SecretSet::decrypt_with_cached_key(std::size_t index,
                                               std::span<const std::uint8_t> ciphertext) const {
  const std::lock_guard<std::mutex> hold(file_keys_mutex_);
  const auto slot = file_keys_.span().subspan(index * age::kFileKeySize, age::kFileKeySize);
  if (known_keys_[index]) {
    try {
      return age::decrypt_with_file_key(ciphertext, slot);
    } catch (const age::Error& error) {
      // A file served straight from a manifest may have been replaced since; its new file key
      // is unwrapped below. Any other failure is the file's own.
      if (error.kind() != age::ErrorKind::hmac) {
        throw;
      }
      known_keys_[index] = false;
    }
  }
  const SecretBytes file_key = age::unwrap_file_key(ciphertext, keyring_->pointers());
  SecretBytes plaintext = age::decrypt_with_file_key(ciphertext, file_key.span());
  std::copy(file_key.data(), file_key.data() + file_key.size(), slot.begin());
  known_keys_[index] = true;
  return plaintext;
}

std::vector<std::string> SecretSet::check_files() const {
  std::vector<std::string> problems;
  const auto identities = keyring_->pointers();
  for (std::size_t index = 0; index < tree_.secrets().size(); ++index) {
    const manifest::Secret& secret = tree_.secrets()[index];
    try {
      inspect_size(secret.file);
      const auto ciphertext = read_stored_file(secret);
      const SecretBytes file_key = age::unwrap_file_key(ciphertext, identities);
      remember_key(index, file_key.span());
    } catch (const age::Error& error) {
      problems.push_back(describe(secret) + ": " + std::string(age::to_string(error.kind())) +
                         ": " + error.what());
    }
  }
  return problems;
}

void SecretSet::remember_key(std::size_t index, std::span<const std::uint8_t> file_key) const {
  const std::lock_guard<std::mutex> hold(file_keys_mutex_);
  const auto slot = file_keys_.span().subspan(index * age::kFileKeySize, age::kFileKeySize);
  std::copy(file_key.begin(), file_key.end(), slot.begin());
  known_keys_[index] = true;
}

SecretBytes SecretSet::open(const Node& node) const {
  const manifest::Secret& secret = tree_.secret(node);
  if (keyring_->identities.empty()) {
    throw OpenFailure(describe(secret) + ": no identity is loaded");
  }
  try {
    const auto ciphertext = read_stored_file(secret);
    return decrypt_with_cached_key(node.secret, ciphertext);
  } catch (const age::Error& error) {
    throw OpenFailure(describe(secret) + ": " + std::string(age::to_string(error.kind())) + ": " +
                      error.what());
  }
}

}  // namespace secretfs::fs
