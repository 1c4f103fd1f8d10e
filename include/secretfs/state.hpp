// The state directory: every activated manifest as a numbered generation, with a copy of each
// ciphertext it uses, so that a rollback works after the original files are gone.
//
// Layout (documented in docs/generations.md):
//
//   <state_dir>/                 root-owned, mode 0700
//     blobs/<sha256 hex>         ciphertext and template file copies, content-addressed, 0600
//     generations/<N>/           one folder per generation, written whole then renamed in
//       manifest.toml            the manifest's text, byte for byte
//       generation.json          number, creation time, manifest hash, the manifest's original
//                                path, each secret's original file and blob, and each template
//                                file's original path and blob
//     current                    the number of the generation being served, "N\n"
//     last                       the highest number ever given, so numbers are never reused
//     onepassword/<id>.json      the last good value of one 1Password reference: the
//                                reference, its blob (the value encrypted to the host's own
//                                identities) and when 1Password last gave it
//     lock                       flock()ed while an activation, rollback or prune runs
//     control.sock               the daemon's control socket (root only)
//
// Every file is written under a temporary name, fsynced, renamed into place, and its folder
// fsynced, so a crash at any point leaves either the old or the new state. The state
// directory never holds plaintext.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "secretfs/manifest.hpp"

namespace secretfs::state {

class StateError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

using Number = std::uint64_t;

struct GenerationInfo {
  Number number = 0;
  std::int64_t created = 0;        // seconds since the epoch
  std::string manifest_sha256;     // hex SHA-256 of manifest.toml
  std::filesystem::path manifest;  // where the manifest was when activated
  std::size_t secrets = 0;         // secrets served: a stored ciphertext or a 1Password value
  bool current = false;
  std::string problem;  // why its record cannot be read; empty when it can
};

// The last good value of a 1Password reference, as the state directory keeps it.
struct CachedValue {
  std::string reference;
  std::string blob;          // SHA-256 hex of the ciphertext, its name under blobs/
  std::int64_t fetched = 0;  // when 1Password last gave this value (seconds since the epoch)
  std::int64_t changed = 0;  // when 1Password first gave it
};

struct Stored {
  Number number = 0;
  bool created = false;  // false: identical to the current generation, nothing was written
};

// An exclusive hold on the state directory's lock; released when destroyed.
class Lock {
 public:
  explicit Lock(int fd) : fd_(fd) {}
  ~Lock();
  Lock(Lock&& other) noexcept;
  Lock& operator=(Lock&&) = delete;
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;

 private:
  int fd_;
};

enum class Ownership {
  root,  // the directory must belong to root, as it does in production
  any,   // tests and development: any owner, still not group- or world-writable
};

class StateDir {
 public:
  // Opens the state directory, creating it (mode 0700) and its subfolders when missing.
  // Refuses one that is group- or world-writable, or (with Ownership::root) not root's,
  // with StateError naming the folder, its owner and mode. What it holds is checked the same
  // way as it is read: a generation, `current` or a blob that another user could have written
  // is refused too.
  static StateDir open(const std::filesystem::path& path, Ownership ownership = Ownership::root);

  // Opens a state directory that exists already, for commands that only read it (status,
  // generations, list) or only switch between its generations (rollback): creates nothing.
  // Refuses, with StateError, a path that does not exist, a folder that is not a state
  // directory (no blobs/ and generations/), one that cannot be read (not root), and what
  // open() refuses.
  static StateDir open_existing(const std::filesystem::path& path,
                                Ownership ownership = Ownership::root);

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path control_socket() const { return path_ / "control.sock"; }

  // Blocks until this process holds the state directory's lock.
  Lock lock() const;

  std::optional<Number> current() const;
  std::vector<GenerationInfo> generations() const;  // by number, ascending
  std::optional<GenerationInfo> generation(Number number) const;

  // Stores `manifest` (with `text`, the manifest file's exact bytes) as generation last+1 and
  // returns its number, or returns the current generation's number with created == false when
  // the manifest text and every ciphertext are identical to it. Does not change `current`.
  // Only manifest.secrets and manifest.templates are stored (a template file's text as it was
  // read with the manifest); the caller validates first. Throws StateError.
  Stored store(const manifest::Manifest& manifest, const std::string& text);

  // Whether store() would return the current generation unchanged and have nothing to repair:
  // the same manifest text from the same place, the same ciphertext for every secret, and
  // every blob in place. Writes nothing; false when a ciphertext cannot be read.
  bool is_current(const manifest::Manifest& manifest, const std::string& text) const;

  // Makes `number` the current generation (atomically). Throws StateError if it does not exist.
  void set_current(Number number);

  // Generation `number` as a manifest whose secrets' files are the stored blobs. The manifest's
  // text is parsed again, so owners and groups are resolved now, not when it was stored. A
  // secret whose blob is missing, or could have been written by another user, is refused (one
  // of manifest.problems).
  manifest::Manifest load(Number number,
                          const manifest::Accounts& accounts = manifest::system_accounts()) const;

  // The cached value of `reference`, or nullopt when none was ever stored. Throws StateError
  // for an index file that is damaged or that another user could have written.
  std::optional<CachedValue> cached_value(const std::string& reference) const;

  // With the lock held: makes `ciphertext` (the value encrypted to the host's own identities)
  // the cached value of `reference`, fetched at `now`. The blob is written before the index
  // points at it, so a crash leaves the old value or the new one.
  void store_value(const std::string& reference, std::string_view ciphertext, std::int64_t now);

  // With the lock held: records that 1Password gave the cached value of `reference` again.
  void confirm_value(const std::string& reference, std::int64_t now);

  // Points each secret read from 1Password at its cached value (file and sha256). One without
  // a cached value keeps an empty file: it is served, and its opens fail until a value comes.
  void attach_values(manifest::Manifest& manifest) const;

  // Removes the oldest generations beyond `keep` (never the current one, nor the newest one
  // older than it), then every blob no remaining generation references. Returns the removed
  // generation numbers.
  std::vector<Number> prune(std::size_t keep);

 private:
  StateDir(std::filesystem::path path, Ownership ownership)
      : path_(std::move(path)), ownership_(ownership) {}
  std::filesystem::path path_;
  Ownership ownership_;
};

// The names, sorted and each once, of the secrets and templates that `after` adds or removes,
// or whose content, owner, group or mode differ from `before`. A template's content is its
// text and the content of every secret it inserts. Both come from StateDir::load, so their
// files are blobs.
std::vector<std::string> changed_secrets(const manifest::Manifest& before,
                                         const manifest::Manifest& after);

}  // namespace secretfs::state
