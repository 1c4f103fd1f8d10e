// Reading a key or token file with the checks ssh applies to private keys, for identities and
// for the 1Password token alike.
#include "secretfs/private_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "secretfs/unique_fd.hpp"

namespace secretfs {

namespace {

constexpr mode_t kGroupOrOtherAccess = 077;
constexpr mode_t kWritableByGroupOrOthers = S_IWGRP | S_IWOTH;
constexpr mode_t kPermissionBits = 07777;
constexpr uid_t kRootUid = 0;

using Kind = PrivateFileError::Kind;

std::string octal_mode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & kPermissionBits));
  return text;
}

bool owned_by_root_or_caller(const struct stat& status) {
  return status.st_uid == kRootUid || status.st_uid == ::geteuid();
}

std::string wanted_owner() {
  const uid_t caller = ::geteuid();
  return caller == kRootUid ? "root" : "root or uid " + std::to_string(caller);
}

// O_NOFOLLOW: a symbolic link planted in place of the file must not redirect the read.
// O_NONBLOCK: a FIFO there must be refused as not a regular file, not block the open forever.
UniqueFd open_file(const std::filesystem::path& path, const std::string& name) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    const int error = errno;
    if (error == ELOOP) {
      throw PrivateFileError(Kind::refused,
                             name + ": cannot open: is a symbolic link, which is refused");
    }
    throw PrivateFileError(Kind::io, name + ": cannot open: " + std::strerror(error));
  }
  return UniqueFd(fd);
}

// Another user who can read or replace the file can read every secret it opens.
void add_file_problems(const struct stat& status, const std::string& name,
                       std::vector<std::string>& problems) {
  if (!owned_by_root_or_caller(status)) {
    problems.push_back(name + ": owned by uid " + std::to_string(status.st_uid) + ", want " +
                       wanted_owner() + " (mode " + octal_mode(status.st_mode) + ")");
  }
  if ((status.st_mode & kGroupOrOtherAccess) != 0) {
    problems.push_back(name + ": mode " + octal_mode(status.st_mode) +
                       " gives access to group or others; chmod 600 it");
  }
}

// Whoever may write to the folder that holds the file can rename another file over it,
// whatever the file's own mode says; whoever may write to a folder further up can rename the
// folder below and put another in its place. So, as ssh's StrictModes does, every folder from
// the file's up to the root must belong to root or the caller and not be writable by group or
// others, unless sticky (/tmp), where only an entry's owner may rename or remove it. The
// folders above are those of the real path, as the kernel found the file.
void add_folder_problems(const std::filesystem::path& path, const std::string& name,
                         std::vector<std::string>& problems) {
  const std::filesystem::path nearest = path.has_parent_path() ? path.parent_path() : ".";
  std::error_code error;
  std::filesystem::path folder = std::filesystem::canonical(nearest, error);
  if (error) {
    return;  // the file itself was opened through it; nothing more can be learnt
  }
  for (bool first = true;; first = false) {
    struct stat status {};
    if (::stat(folder.c_str(), &status) != 0) {
      return;
    }
    const std::string shown = first ? nearest.string() : folder.string();
    const std::string described =
        name + (first ? ": its folder " : ": the folder above it ") + shown + " (owner uid " +
        std::to_string(status.st_uid) + ", mode " + octal_mode(status.st_mode) + ")";
    if (!owned_by_root_or_caller(status)) {
      problems.push_back(described + " belongs to another user, who could replace the file; " +
                         "want " + wanted_owner() + " (chown root " + shown + ")");
      return;
    }
    if ((status.st_mode & kWritableByGroupOrOthers) != 0 && (status.st_mode & S_ISVTX) == 0) {
      problems.push_back(described + " lets group or others replace the file; chmod go-w " +
                         shown + ", or keep the file in a folder only root may change");
      return;
    }
    if (folder == folder.root_path()) {
      return;
    }
    folder = folder.parent_path();
  }
}

SecretBytes read_contents(const UniqueFd& file, std::size_t size, const std::string& name) {
  SecretBytes contents(size);
  std::size_t filled = 0;
  while (filled < size) {
    const ssize_t count = ::read(file.get(), contents.data() + filled, size - filled);
    if (count < 0 && errno == EINTR) {
      continue;
    }
    if (count < 0) {
      throw PrivateFileError(Kind::io, name + ": read failed: " + std::strerror(errno));
    }
    if (count == 0) {
      break;  // the file shrank since fstat; take what is there
    }
    filled += static_cast<std::size_t>(count);
  }
  contents.shrink(filled);
  return contents;
}

}  // namespace

PrivateFile read_private_file(const std::filesystem::path& path, const std::string& name,
                              std::size_t max_size, FilePermissions permissions) {
  const UniqueFd file = open_file(path, name);
  struct stat status {};
  if (::fstat(file.get(), &status) != 0) {
    throw PrivateFileError(Kind::io, name + ": fstat failed: " + std::strerror(errno));
  }
  if (!S_ISREG(status.st_mode)) {
    throw PrivateFileError(Kind::refused, name + ": not a regular file");
  }
  std::vector<std::string> problems;
  add_file_problems(status, name, problems);
  add_folder_problems(path, name, problems);
  if (permissions == FilePermissions::strict && !problems.empty()) {
    throw PrivateFileError(Kind::refused, problems.front());
  }
  if (static_cast<std::uint64_t>(status.st_size) > max_size) {
    throw PrivateFileError(Kind::refused, name + ": " + std::to_string(status.st_size) +
                                              " bytes is too large");
  }
  return {read_contents(file, static_cast<std::size_t>(status.st_size), name),
          std::move(problems)};
}

}  // namespace secretfs
