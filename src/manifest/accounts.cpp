// Users and groups from the system databases (passwd and group, through NSS).
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>
#include <vector>

#include "secretfs/manifest.hpp"

namespace secretfs::manifest {

namespace {

// Used when sysconf gives no hint (it may return -1 for "no fixed limit").
constexpr std::size_t kFallbackBufferSize = 1024;
// Group entries list their members and can be large, but not larger than this.
constexpr std::size_t kMaxBufferSize = std::size_t{1} << 20;

std::size_t initial_buffer_size(int sysconf_name) {
  const long hint = sysconf(sysconf_name);
  return hint > 0 ? static_cast<std::size_t>(hint) : kFallbackBufferSize;
}

// glibc reports "no such entry" as success with a null result, but POSIX lets other systems
// use one of these codes for it instead.
bool means_not_found(int code) {
  return code == 0 || code == ENOENT || code == ESRCH || code == EBADF || code == EPERM;
}

// Runs a reentrant lookup (getpwnam_r and friends) with a buffer that grows until the entry
// fits, and returns what `extract` takes from the entry. Only values are extracted, since the
// entry's strings point into the buffer, which dies here.
template <typename Entry>
auto look_up(int sysconf_name, const std::string& what, auto call, auto extract)
    -> std::optional<decltype(extract(std::declval<const Entry&>()))> {
  std::vector<char> buffer(initial_buffer_size(sysconf_name));
  while (true) {
    Entry entry{};
    Entry* result = nullptr;
    const int code = call(&entry, buffer.data(), buffer.size(), &result);
    if (result != nullptr) {
      return extract(entry);
    }
    if (code == ERANGE && buffer.size() < kMaxBufferSize) {
      buffer.resize(buffer.size() * 2);
      continue;
    }
    if (code == EINTR) {
      continue;
    }
    if (means_not_found(code)) {
      return std::nullopt;
    }
    // A failing name service is not an unknown name: saying "unknown user" would mislead.
    throw std::system_error(code, std::generic_category(), "looking up " + what);
  }
}

// The C lookups would stop at a NUL and find a different, shorter name.
bool has_nul(const std::string& name) {
  return name.find('\0') != std::string::npos;
}

Accounts::User user_from(const passwd& entry) {
  return {entry.pw_uid, entry.pw_gid};
}

class SystemAccounts final : public Accounts {
 public:
  std::optional<User> user_by_name(const std::string& name) const override {
    if (has_nul(name)) {
      return std::nullopt;
    }
    return look_up<passwd>(
        _SC_GETPW_R_SIZE_MAX, "user `" + name + "`",
        [&](passwd* entry, char* buffer, std::size_t size, passwd** result) {
          return getpwnam_r(name.c_str(), entry, buffer, size, result);
        },
        user_from);
  }

  std::optional<User> user_by_uid(uid_t uid) const override {
    return look_up<passwd>(
        _SC_GETPW_R_SIZE_MAX, "uid " + std::to_string(uid),
        [&](passwd* entry, char* buffer, std::size_t size, passwd** result) {
          return getpwuid_r(uid, entry, buffer, size, result);
        },
        user_from);
  }

  std::optional<gid_t> group_by_name(const std::string& name) const override {
    if (has_nul(name)) {
      return std::nullopt;
    }
    return look_up<group>(
        _SC_GETGR_R_SIZE_MAX, "group `" + name + "`",
        [&](group* entry, char* buffer, std::size_t size, group** result) {
          return getgrnam_r(name.c_str(), entry, buffer, size, result);
        },
        [](const group& entry) { return entry.gr_gid; });
  }
};

}  // namespace

const Accounts& system_accounts() {
  static const SystemAccounts accounts;
  return accounts;
}

}  // namespace secretfs::manifest
