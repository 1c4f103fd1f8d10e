#include "cli/io.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace secretfs::cli {

namespace {

constexpr std::size_t kReadStep = 64 * 1024;
constexpr mode_t kPrivateFileMode = 0600;

bool is_standard_stream(const std::optional<std::string>& path) {
  return !path || path->empty() || *path == "-";
}

std::string name_of(const std::optional<std::string>& path, const char* stream) {
  return is_standard_stream(path) ? std::string(stream) : *path;
}

// Grows by copying into a larger secure buffer: plaintext never passes through ordinary
// heap memory, which would not be wiped.
SecretBytes read_all(int fd, const std::string& name) {
  SecretBytes buffer(kReadStep);
  std::size_t filled = 0;
  for (;;) {
    if (filled == buffer.size()) {
      SecretBytes larger(buffer.size() * 2);
      std::memcpy(larger.data(), buffer.data(), filled);
      buffer = std::move(larger);
    }
    const ssize_t got = ::read(fd, buffer.data() + filled, buffer.size() - filled);
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got < 0) {
      throw Failure(name + ": read: " + std::strerror(errno));
    }
    if (got == 0) {
      break;
    }
    filled += static_cast<std::size_t>(got);
  }
  buffer.shrink(filled);
  return buffer;
}

}  // namespace

void write_all(int fd, std::span<const std::uint8_t> bytes, const std::string& name) {
  while (!bytes.empty()) {
    const ssize_t wrote = ::write(fd, bytes.data(), bytes.size());
    if (wrote < 0 && errno == EINTR) {
      continue;
    }
    if (wrote < 0) {
      throw Failure(name + ": write: " + std::strerror(errno));
    }
    bytes = bytes.subspan(static_cast<std::size_t>(wrote));
  }
}

SecretBytes read_input(const std::optional<std::string>& path) {
  if (is_standard_stream(path)) {
    return read_all(STDIN_FILENO, "standard input");
  }
  const int fd = ::open(path->c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw Failure(*path + ": " + std::strerror(errno));
  }
  try {
    SecretBytes bytes = read_all(fd, *path);
    ::close(fd);
    return bytes;
  } catch (...) {
    ::close(fd);
    throw;
  }
}

void write_output(const std::optional<std::string>& path, std::span<const std::uint8_t> bytes,
                  Existing existing) {
  const std::string name = name_of(path, "standard output");
  if (is_standard_stream(path)) {
    write_all(STDOUT_FILENO, bytes, name);
    return;
  }
  const int flags =
      O_WRONLY | O_CREAT | O_CLOEXEC | (existing == Existing::refuse ? O_EXCL : O_TRUNC);
  const int fd = ::open(path->c_str(), flags, kPrivateFileMode);
  if (fd < 0) {
    throw Failure(name + ": " + std::strerror(errno));
  }
  try {
    write_all(fd, bytes, name);
  } catch (...) {
    ::close(fd);
    throw;
  }
  if (::close(fd) != 0) {
    throw Failure(name + ": close: " + std::strerror(errno));
  }
}

bool output_is_terminal(const std::optional<std::string>& path) {
  return is_standard_stream(path) && ::isatty(STDOUT_FILENO) == 1;
}

}  // namespace secretfs::cli
