#include "state/durable_files.hpp"

#include "secretfs/unique_fd.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <system_error>
#include <utility>

#include "secretfs/secret_bytes.hpp"
#include "secretfs/state.hpp"
#include "state/entry_names.hpp"

namespace secretfs::state {

namespace {

constexpr std::size_t kReadChunkSize = std::size_t{64} << 10;
constexpr std::size_t kRandomSuffixBytes = 8;

UniqueFd open_or_fail(const std::filesystem::path& path, int flags, mode_t mode,
                      std::string_view what) {
  UniqueFd fd(::open(path.c_str(), flags | O_CLOEXEC, mode));
  if (fd.get() < 0) {
    fail_errno(path, what, errno);
  }
  return fd;
}

void write_all(int fd, const std::filesystem::path& path, std::string_view content) {
  while (!content.empty()) {
    const ssize_t count = ::write(fd, content.data(), content.size());
    if (count < 0 && errno == EINTR) {
      continue;
    }
    if (count < 0) {
      fail_errno(path, "cannot write", errno);
    }
    content.remove_prefix(static_cast<std::size_t>(count));
  }
}

}  // namespace

void fail_errno(const std::filesystem::path& path, std::string_view what, int error) {
  throw StateError(path.string() + ": " + std::string(what) + ": " +
                   std::generic_category().message(error));
}

std::string read_file(const std::filesystem::path& path, std::size_t max_size, Links links,
                      struct stat* status) {
  const int nofollow = links == Links::refuse ? O_NOFOLLOW : 0;
  UniqueFd fd = open_or_fail(path, O_RDONLY | nofollow, 0, "cannot open");
  if (status != nullptr && ::fstat(fd.get(), status) != 0) {
    fail_errno(path, "cannot stat", errno);
  }
  std::string content;
  std::array<char, kReadChunkSize> chunk;
  while (true) {
    const ssize_t count = ::read(fd.get(), chunk.data(), chunk.size());
    if (count < 0 && errno == EINTR) {
      continue;
    }
    if (count < 0) {
      fail_errno(path, "cannot read", errno);
    }
    if (count == 0) {
      return content;
    }
    content.append(chunk.data(), static_cast<std::size_t>(count));
    if (content.size() > max_size) {
      throw StateError(path.string() + ": larger than " + std::to_string(max_size) + " bytes");
    }
  }
}

void write_new_file(const std::filesystem::path& path, std::string_view content, mode_t mode,
                    Sync sync) {
  UniqueFd fd = open_or_fail(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode, "cannot create");
  write_all(fd.get(), path, content);
  if (sync == Sync::now && ::fsync(fd.get()) != 0) {
    fail_errno(path, "cannot fsync", errno);
  }
  if (fd.close() != 0) {
    fail_errno(path, "cannot close", errno);
  }
}

void replace_file(const std::filesystem::path& folder, const std::string& name,
                  std::string_view content, mode_t mode) {
  const auto temporary = folder / temporary_name(name);
  try {
    write_new_file(temporary, content, mode);
    // rename() replaces a symbolic link at `name` instead of writing through it.
    if (::rename(temporary.c_str(), (folder / name).c_str()) != 0) {
      fail_errno(folder / name, "cannot rename into place", errno);
    }
  } catch (...) {
    ::unlink(temporary.c_str());
    throw;
  }
  fsync_folder(folder);
}

void rename_new(const std::filesystem::path& from, const std::filesystem::path& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) != 0) {
    fail_errno(to, "cannot rename " + from.filename().string() + " into place", errno);
  }
}

void sync_file_system(const std::filesystem::path& folder) {
  UniqueFd fd = open_or_fail(folder, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0, "cannot open folder");
  if (::syncfs(fd.get()) != 0) {
    fail_errno(folder, "cannot sync its file system", errno);
  }
}

void fsync_folder(const std::filesystem::path& folder) {
  UniqueFd fd = open_or_fail(folder, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0, "cannot open folder");
  if (::fsync(fd.get()) != 0) {
    fail_errno(folder, "cannot fsync folder", errno);
  }
}

void make_folder(const std::filesystem::path& path, mode_t mode) {
  if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST) {
    fail_errno(path, "cannot create folder", errno);
  }
}

std::vector<std::string> list_folder(const std::filesystem::path& folder) {
  DIR* stream = ::opendir(folder.c_str());
  if (stream == nullptr) {
    fail_errno(folder, "cannot list", errno);
  }
  std::vector<std::string> names;
  errno = 0;
  while (const dirent* entry = ::readdir(stream)) {
    const std::string_view name = entry->d_name;
    if (name != "." && name != "..") {
      names.emplace_back(name);
    }
  }
  const int error = errno;
  ::closedir(stream);
  if (error != 0) {
    fail_errno(folder, "cannot list", error);
  }
  return names;
}

Kind kind_of(const std::filesystem::path& path) {
  struct stat status {};
  if (::lstat(path.c_str(), &status) != 0) {
    if (errno == ENOENT) {
      return Kind::missing;
    }
    fail_errno(path, "cannot stat", errno);
  }
  if (S_ISDIR(status.st_mode)) {
    return Kind::folder;
  }
  return S_ISREG(status.st_mode) ? Kind::file : Kind::other;
}

std::string sha256_hex(std::string_view bytes) {
  std::array<unsigned char, crypto_hash_sha256_BYTES> digest;
  crypto_hash_sha256(digest.data(), reinterpret_cast<const unsigned char*>(bytes.data()),
                     bytes.size());
  std::array<char, crypto_hash_sha256_BYTES * 2 + 1> hex;
  sodium_bin2hex(hex.data(), hex.size(), digest.data(), digest.size());
  return std::string(hex.data(), hex.size() - 1);
}

std::string random_suffix() {
  initialize_sodium();
  std::array<unsigned char, kRandomSuffixBytes> random;
  randombytes_buf(random.data(), random.size());
  std::array<char, kRandomSuffixBytes * 2 + 1> hex;
  sodium_bin2hex(hex.data(), hex.size(), random.data(), random.size());
  return std::string(hex.data(), hex.size() - 1);
}

}  // namespace secretfs::state
