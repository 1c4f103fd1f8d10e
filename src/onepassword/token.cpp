// The service account token file, held to the rules of an identity file: whoever can read it
// can read every secret the account can.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

#include "secretfs/onepassword.hpp"
#include "secretfs/unique_fd.hpp"

namespace secretfs::onepassword {

namespace {

constexpr std::size_t kMaxTokenFileSize = std::size_t{64} * 1024;  // tokens are under 2 KiB
constexpr mode_t kGroupOrOtherAccess = 077;
constexpr mode_t kPermissionBits = 07777;
constexpr uid_t kRootUid = 0;

std::string octal_mode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & kPermissionBits));
  return text;
}

std::string wanted_owner() {
  const uid_t caller = ::geteuid();
  return caller == kRootUid ? "root" : "root or uid " + std::to_string(caller);
}

// O_NOFOLLOW: a link planted in place of the file must not redirect the read. O_NONBLOCK: a
// FIFO there is refused as not a regular file instead of blocking the open.
UniqueFd open_token_file(const std::filesystem::path& path, const std::string& name) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    const int error = errno;
    throw std::runtime_error(
        name + ": cannot open: " +
        (error == ELOOP ? "is a symbolic link, which is refused" : std::strerror(error)));
  }
  return UniqueFd(fd);
}

void check_status(const struct stat& status, const std::string& name) {
  if (!S_ISREG(status.st_mode)) {
    throw std::runtime_error(name + ": not a regular file");
  }
  if (status.st_uid != kRootUid && status.st_uid != ::geteuid()) {
    throw std::runtime_error(name + ": owned by uid " + std::to_string(status.st_uid) + ", want " +
                             wanted_owner() + " (mode " + octal_mode(status.st_mode) +
                             "); chown root it");
  }
  if ((status.st_mode & kGroupOrOtherAccess) != 0) {
    throw std::runtime_error(name + ": mode " + octal_mode(status.st_mode) +
                             " gives access to group or others; chmod 600 it");
  }
  if (static_cast<std::uint64_t>(status.st_size) > kMaxTokenFileSize) {
    throw std::runtime_error(name + ": " + std::to_string(status.st_size) +
                             " bytes is too large for a token file");
  }
}

SecretBytes read_all(const UniqueFd& file, std::size_t size, const std::string& name) {
  SecretBytes contents(size);
  std::size_t filled = 0;
  while (filled < size) {
    const ssize_t count = ::read(file.get(), contents.data() + filled, size - filled);
    if (count < 0 && errno == EINTR) {
      continue;
    }
    if (count < 0) {
      throw std::runtime_error(name + ": read failed: " + std::strerror(errno));
    }
    if (count == 0) {
      break;  // it shrank since fstat
    }
    filled += static_cast<std::size_t>(count);
  }
  contents.shrink(filled);
  return contents;
}

bool is_space(std::uint8_t byte) {
  return byte == ' ' || byte == '\t' || byte == '\r' || byte == '\n';
}

bool is_control(std::uint8_t byte) {
  constexpr std::uint8_t kDelete = 0x7f;
  return byte < ' ' || byte == kDelete;
}

}  // namespace

SecretBytes read_token_file(const std::filesystem::path& path) {
  const std::string name = "token file " + path.string();
  const UniqueFd file = open_token_file(path, name);
  struct stat status {};
  if (::fstat(file.get(), &status) != 0) {
    throw std::runtime_error(name + ": fstat failed: " + std::strerror(errno));
  }
  check_status(status, name);

  const SecretBytes contents = read_all(file, static_cast<std::size_t>(status.st_size), name);
  std::span<const std::uint8_t> token = contents.span();
  while (!token.empty() && is_space(token.front())) {
    token = token.subspan(1);
  }
  while (!token.empty() && is_space(token.back())) {
    token = token.first(token.size() - 1);
  }
  if (token.empty()) {
    throw std::runtime_error(name + ": empty; write the service account token (ops_...) into it");
  }
  // The token goes into `op`'s environment, where a NUL would cut it and a line break has no
  // place; a real token is one line of printable characters.
  if (std::any_of(token.begin(), token.end(), is_control)) {
    throw std::runtime_error(name +
                             ": holds more than one line or a control character; a "
                             "token is one line");
  }
  return SecretBytes::copy_of(token);
}

}  // namespace secretfs::onepassword
