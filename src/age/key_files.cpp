// Identity files and recipient lists, read the way the age CLI reads them, plus the
// ownership and mode checks that a daemon holding host keys owes its users.
#include "secretfs/age/key_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "secretfs/age/error.hpp"
#include "secretfs/age/ssh.hpp"
#include "secretfs/age/x25519.hpp"

namespace secretfs::age {

namespace {

constexpr std::string_view kWhitespace = " \t\r\n";
constexpr std::string_view kPemBegin = "-----BEGIN";
constexpr std::string_view kArmoredAgeBegin = "-----BEGIN AGE";
constexpr std::string_view kAgeVersionPrefix = "age-encryption.org";
constexpr std::string_view kPluginIdentityPrefix = "AGE-PLUGIN-";
constexpr std::string_view kPostQuantumIdentityPrefix = "AGE-SECRET-KEY-PQ-";
constexpr std::string_view kX25519RecipientHrp = "age";
constexpr std::string_view kAgeRecipientPrefix = "age1";
constexpr char kBech32Separator = '1';
constexpr std::size_t kMaxIdentityFileSize = 1024 * 1024;  // real ones are under 4 KiB
constexpr mode_t kGroupOrOtherAccess = 077;
constexpr mode_t kWritableByGroupOrOthers = S_IWGRP | S_IWOTH;
constexpr mode_t kPermissionBits = 07777;
constexpr uid_t kRootUid = 0;

std::string_view trim_leading_whitespace(std::string_view text) {
  text.remove_prefix(std::min(text.find_first_not_of(kWhitespace), text.size()));
  return text;
}

std::string line_name(std::string_view source, std::size_t number) {
  return std::string(source) + ": line " + std::to_string(number);
}

// Calls `visit(line, number)` for every line that is neither empty nor a '#' comment.
// One trailing CR is dropped, as age does, so files saved with CRLF endings still parse.
// An Error from `visit` is rethrown with the source and line number in front.
template <typename Visit>
void for_each_entry(std::string_view text, std::string_view source, Visit visit) {
  std::size_t number = 0;
  while (!text.empty()) {
    ++number;
    const auto end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    if (line.ends_with('\r')) {
      line.remove_suffix(1);
    }
    if (line.empty() || line.starts_with('#')) {
      continue;
    }
    try {
      visit(line);
    } catch (const Error& error) {
      throw Error(error.kind(), line_name(source, number) + ": " + error.what());
    }
  }
}

// The identity line itself is secret, so messages describe it and never quote it.
std::unique_ptr<Identity> parse_identity_line(std::string_view line) {
  if (line.find_first_of(kWhitespace) == 0) {
    throw Error(ErrorKind::key, "leading whitespace before the identity");
  }
  if (line.starts_with(kPluginIdentityPrefix)) {
    throw Error(ErrorKind::unsupported, "age plugin identities are not supported");
  }
  if (line.starts_with(kPostQuantumIdentityPrefix)) {
    throw Error(ErrorKind::unsupported, "post-quantum (PQ) age identities are not supported");
  }
  return X25519Identity::parse(line);
}

Identities parse_identity_list(std::string_view text, std::string_view source) {
  Identities identities;
  for_each_entry(text, source,
                 [&](std::string_view line) { identities.push_back(parse_identity_line(line)); });
  if (identities.empty()) {
    throw Error(ErrorKind::key, std::string(source) + ": no identities found");
  }
  return identities;
}

Identities parse_ssh_identity(std::string_view text, std::string_view source) {
  auto ssh = parse_openssh_private_key(text, source);
  auto derived = ssh->derived_x25519();
  Identities identities;
  identities.push_back(std::move(ssh));
  identities.push_back(std::move(derived));
  return identities;
}

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;

  int get() const { return fd_; }

 private:
  int fd_;
};

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

// The same rule ssh applies to private keys: another user who can read or replace this
// file can read every secret the machine can.
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

// Whoever may write to the folder that holds a key can rename another file over it, whatever
// the key's own mode says (ssh's StrictModes refuses such a folder too). A sticky folder such
// as /tmp lets only a file's owner rename or remove it. stat, not lstat: the key was opened
// without following a link in its last component, so it is in the folder its parent resolves
// to.
void add_folder_problems(const std::filesystem::path& path, const std::string& name,
                         std::vector<std::string>& problems) {
  const std::filesystem::path folder = path.has_parent_path() ? path.parent_path() : ".";
  struct stat status {};
  if (::stat(folder.c_str(), &status) != 0) {
    return;  // the key itself was opened through it; nothing more can be learnt
  }
  const std::string described = name + ": its folder " + folder.string() + " (owner uid " +
                                std::to_string(status.st_uid) + ", mode " +
                                octal_mode(status.st_mode) + ")";
  if (!owned_by_root_or_caller(status)) {
    problems.push_back(described + " belongs to another user, who could replace the key; want " +
                       wanted_owner() + " (chown root " + folder.string() + ")");
  }
  if ((status.st_mode & kWritableByGroupOrOthers) != 0 && (status.st_mode & S_ISVTX) == 0) {
    problems.push_back(described + " lets group or others replace the key; chmod go-w " +
                       folder.string() + ", or keep the key in a folder only root may change");
  }
}

// O_NOFOLLOW: a symbolic link planted in place of the key must not redirect the read.
// O_NONBLOCK: a FIFO there must be refused as not a regular file, not block the open forever.
int open_identity_file(const std::filesystem::path& path, const std::string& name) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    const int error = errno;
    const std::string reason =
        error == ELOOP ? "is a symbolic link, which is refused" : std::strerror(error);
    throw Error(ErrorKind::io, name + ": cannot open: " + reason);
  }
  return fd;
}

SecretBytes read_contents(const FileDescriptor& file, std::size_t size, const std::string& name) {
  SecretBytes contents(size);
  std::size_t filled = 0;
  while (filled < size) {
    const ssize_t count = ::read(file.get(), contents.data() + filled, size - filled);
    if (count < 0 && errno == EINTR) {
      continue;
    }
    if (count < 0) {
      throw Error(ErrorKind::io, name + ": read failed: " + std::strerror(errno));
    }
    if (count == 0) {
      break;  // the file shrank since fstat; parse what is there
    }
    filled += static_cast<std::size_t>(count);
  }
  contents.shrink(filled);
  return contents;
}

// Plugin and post-quantum recipients are age1 Bech32 strings whose human-readable part is
// longer than "age" (age1pq1..., age1tag1..., age1yubikey1...).
bool is_other_age_recipient(std::string_view text) {
  const auto separator = text.rfind(kBech32Separator);
  return separator != std::string_view::npos && text.substr(0, separator) != kX25519RecipientHrp &&
         text.substr(0, separator).starts_with(kAgeRecipientPrefix);
}

}  // namespace

Identities parse_identities(std::string_view text, std::string_view source) {
  const std::string_view start = trim_leading_whitespace(text);
  if (start.starts_with(kAgeVersionPrefix) || start.starts_with(kArmoredAgeBegin)) {
    throw Error(ErrorKind::unsupported,
                std::string(source) +
                    ": passphrase-encrypted identity files are not supported; a daemon cannot "
                    "ask for the passphrase");
  }
  if (start.starts_with(kPemBegin)) {
    return parse_ssh_identity(start, source);
  }
  return parse_identity_list(text, source);
}

IdentityFile read_identity_file(const std::filesystem::path& path, FilePermissions permissions) {
  const std::string name = "identity file " + path.string();
  const FileDescriptor file(open_identity_file(path, name));

  struct stat status {};
  if (::fstat(file.get(), &status) != 0) {
    throw Error(ErrorKind::io, name + ": fstat failed: " + std::strerror(errno));
  }
  if (!S_ISREG(status.st_mode)) {
    throw Error(ErrorKind::key, name + ": not a regular file");
  }
  std::vector<std::string> problems;
  add_file_problems(status, name, problems);
  add_folder_problems(path, name, problems);
  if (permissions == FilePermissions::strict && !problems.empty()) {
    throw Error(ErrorKind::key, problems.front());
  }
  if (static_cast<std::size_t>(status.st_size) > kMaxIdentityFileSize) {
    throw Error(ErrorKind::key, name + ": " + std::to_string(status.st_size) +
                                    " bytes is too large for an identity file");
  }

  const SecretBytes contents = read_contents(file, static_cast<std::size_t>(status.st_size), name);
  return {parse_identities(contents.view(), name), std::move(problems)};
}

Identities load_identity_file(const std::filesystem::path& path, FilePermissions permissions) {
  return read_identity_file(path, permissions).identities;
}

std::unique_ptr<Recipient> parse_recipient(std::string_view text) {
  if (text.starts_with(kAgeRecipientPrefix)) {
    if (is_other_age_recipient(text)) {
      throw Error(ErrorKind::unsupported,
                  "post-quantum, tag and plugin age recipients are not supported (" +
                      std::string(text.substr(0, text.rfind(kBech32Separator) + 1)) + "...)");
    }
    return X25519Recipient::parse(text);
  }
  if (text.starts_with("ssh-") || text.starts_with("ecdsa-") || text.starts_with("sk-")) {
    return SshEd25519Recipient::parse(text);
  }
  throw Error(ErrorKind::key, "unknown recipient type (want \"age1...\" or \"ssh-ed25519 ...\")");
}

Recipients parse_recipients(std::string_view text, std::string_view source) {
  Recipients recipients;
  for_each_entry(text, source,
                 [&](std::string_view line) { recipients.push_back(parse_recipient(line)); });
  if (recipients.empty()) {
    throw Error(ErrorKind::key, std::string(source) + ": no recipients found");
  }
  return recipients;
}

std::unique_ptr<Recipient> recipient_of(const Identity& identity) {
  if (const auto* x25519 = dynamic_cast<const X25519Identity*>(&identity)) {
    return x25519->recipient();
  }
  if (const auto* ssh = dynamic_cast<const SshEd25519Identity*>(&identity)) {
    return ssh->recipient();
  }
  return nullptr;
}

}  // namespace secretfs::age
