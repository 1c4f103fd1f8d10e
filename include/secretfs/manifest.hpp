// The manifest: which secrets are served, from which age files, with which owner and mode, and
// which templates are rendered from them.
//
// Problems are kept apart by reach. A problem with the manifest as a whole (TOML syntax,
// an unknown top-level key, a wrong type at the top level) throws ManifestError and nothing is
// served. A problem with one secret or template (a bad name, mode, owner or key in its table)
// refuses that entry alone: it is left out of `secrets` or `templates` and described in
// `problems`, and every other entry is still served.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace secretfs::manifest {

inline constexpr std::string_view kDefaultMountPoint = "/run/secrets";
inline constexpr mode_t kDefaultMode = 0400;
inline constexpr std::string_view kDefaultStateDir = "/var/lib/secretfs";
inline constexpr std::size_t kDefaultKeepGenerations = 10;
// Secrets are keys, passwords and certificates; a file beyond this is refused unless the
// manifest raises the limit, so that one huge file cannot fill the daemon's locked memory.
inline constexpr std::uint64_t kDefaultMaxSecretSize = std::uint64_t{16} << 20;

// Units the daemon restarts or reloads itself when a refresh from 1Password changes what an
// entry serves (an activation's changes are the caller's to act on: see `activate --json`).
struct Units {
  std::vector<std::string> restart;  // `restart_units`
  std::vector<std::string> reload;   // `reload_units`
};

struct Secret {
  std::string name;            // "db/password": '/'-separated, validated
  std::filesystem::path file;  // absolute path of the age file; empty for a value read from
                               // 1Password until its encrypted copy is attached from the
                               // state directory
  std::string source;          // "op://vault/item/field", or empty. With `file` too, the
                               // file is served and `source` is only what `secretfs sync` reads
  uid_t uid = 0;
  gid_t gid = 0;
  mode_t mode = kDefaultMode;  // permission bits only, never write, execute or special bits
  int line = 0;                // where the secret's table starts in the manifest
  std::string sha256;          // stored generations: the file's expected SHA-256, in hex
  Units units;
  // `source` without `file`: the daemon reads the value from 1Password and serves the
  // encrypted copy it keeps in the state directory.
  bool from_onepassword = false;
};

// A template's text is known once it is read: `content` at once, a `file` by
// templates::read_files (or from a stored generation's copy), and checked by templates::resolve.
struct Template {
  std::string name;            // a path below the mount point, like a secret's
  std::string text;            // the template's text
  std::filesystem::path file;  // `file =`: absolute path of the template file; empty: `content`
  uid_t uid = 0;
  gid_t gid = 0;
  mode_t mode = kDefaultMode;
  int line = 0;
  std::string sha256;                   // stored generations: the file's expected SHA-256
  std::vector<std::string> references;  // the secrets it inserts, sorted, once each (resolve)
  Units units;
};

enum class EntryKind { secret, template_ };

struct Problem {
  std::string secret;   // the refused secret's or template's name, empty for the manifest
  std::string message;  // complete sentence naming the entry, e.g. "secret `a`: ..."
  EntryKind kind = EntryKind::secret;
};

inline constexpr std::chrono::milliseconds kDefaultRefresh = std::chrono::hours(1);
inline constexpr std::chrono::milliseconds kDefaultOpTimeout = std::chrono::seconds(30);
inline constexpr std::chrono::milliseconds kDefaultRetry = std::chrono::minutes(1);

// `[onepassword]`: how values with a `source` are read.
struct OnePassword {
  std::filesystem::path token_file;  // absolute; empty: not configured
  std::filesystem::path op = "op";   // the CLI: a path, or a name looked up in PATH
  std::chrono::milliseconds refresh = kDefaultRefresh;  // how often values are read again
  std::chrono::milliseconds timeout = kDefaultOpTimeout;  // for one run of `op`
  std::chrono::milliseconds retry = kDefaultRetry;  // first wait after a failure; doubles
};

struct Manifest {
  std::filesystem::path path;  // the manifest file itself (absolute)
  std::filesystem::path mount_point{kDefaultMountPoint};
  std::filesystem::path state_dir{kDefaultStateDir};       // absolute; generations live here
  std::size_t keep_generations = kDefaultKeepGenerations;  // at least 2
  std::filesystem::path audit_log;                      // absolute; empty: events go to the log
  std::uint64_t max_secret_size = kDefaultMaxSecretSize;  // bytes of age file per secret
  std::vector<std::filesystem::path> identities;  // absolute paths, in the manifest's order
  OnePassword onepassword;
  std::vector<Secret> secrets;                    // accepted secrets, sorted by name
  std::vector<Template> templates;                // accepted templates, sorted by name
  std::vector<Problem> problems;                  // refused entries, in manifest order
};

class ManifestError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Looks up users and groups; the system one reads passwd and group (getpwnam_r and friends).
class Accounts {
 public:
  virtual ~Accounts() = default;
  struct User {
    uid_t uid;
    gid_t primary_gid;
  };
  virtual std::optional<User> user_by_name(const std::string& name) const = 0;
  virtual std::optional<User> user_by_uid(uid_t uid) const = 0;
  virtual std::optional<gid_t> group_by_name(const std::string& name) const = 0;
};

const Accounts& system_accounts();

// Parses manifest text. Relative `file` and identity paths are taken relative to `base_dir`;
// `source` names the manifest in messages.
Manifest parse(std::string_view text, const std::filesystem::path& base_dir,
               std::string_view source, const Accounts& accounts = system_accounts());

// Reads and parses a manifest file; throws ManifestError when it cannot be read.
Manifest load(const std::filesystem::path& path, const Accounts& accounts = system_accounts());

// Why `name` cannot be a secret's or template's name, or nullopt when it can: no empty, "." or
// ".." segment, no leading '/', no NUL, control character (C0, DEL, C1) or bidirectional control
// (U+202A to U+202E, U+2066 to U+2069).
std::optional<std::string> check_name(std::string_view name);

}  // namespace secretfs::manifest
