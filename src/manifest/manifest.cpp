// The manifest as a whole: top-level keys, the set of secrets and templates, and reading the
// file.
//
// Top-level problems throw ManifestError at the first one found (in line order), because a
// manifest with a wrong mount point or identity list cannot be served in part. Problems inside
// one secret's or template's table only refuse that entry; see secret_table.cpp. A template's
// placeholders are checked later, once its text is read (templates::resolve).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cerrno>
#include <cstdint>
#include <map>
#include <system_error>

#include "manifest/names.hpp"
#include "manifest/paths.hpp"
#include "manifest/secret_table.hpp"
#include "secretfs/manifest.hpp"

namespace secretfs::manifest {

namespace {

constexpr std::uint64_t kKibibyte = 1024;
constexpr std::size_t kMaxSizeDigits = 9;  // with a G unit still far below 2^64

// "123", "512K", "16M", "1G": bytes, or nullopt for anything else (and for an overflow).
std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') {
    ++digits;
  }
  if (digits == 0 || digits > kMaxSizeDigits) {
    return std::nullopt;
  }
  std::uint64_t number = std::stoull(std::string(text.substr(0, digits)));
  const std::string_view unit = text.substr(digits);
  const std::string_view units = "KMG";
  if (unit.empty()) {
    return number;
  }
  const auto power = units.find(unit);
  if (unit.size() != 1 || power == std::string_view::npos) {
    return std::nullopt;
  }
  for (std::size_t i = 0; i <= power; ++i) {
    number *= kKibibyte;
  }
  return number;
}

struct DurationUnit {
  std::string_view suffix;
  std::chrono::milliseconds length;
};
constexpr std::array kDurationUnits = {
    DurationUnit{"ms", std::chrono::milliseconds(1)}, DurationUnit{"s", std::chrono::seconds(1)},
    DurationUnit{"m", std::chrono::minutes(1)},       DurationUnit{"h", std::chrono::hours(1)},
    DurationUnit{"d", std::chrono::days(1)},
};

// "500ms", "30s", "15m", "1h", "2d", or nullopt for anything else (and for an overflow).
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') {
    ++digits;
  }
  if (digits == 0 || digits > kMaxSizeDigits) {
    return std::nullopt;
  }
  const auto number = std::stoll(std::string(text.substr(0, digits)));
  for (const DurationUnit& unit : kDurationUnits) {
    if (text.substr(digits) == unit.suffix) {
      return unit.length * number;
    }
  }
  return std::nullopt;
}

constexpr std::string_view kMountPointKey = "mount_point";
constexpr std::string_view kStateDirKey = "state_dir";
constexpr std::string_view kKeepGenerationsKey = "keep_generations";
constexpr std::string_view kAuditLogKey = "audit_log";
constexpr std::string_view kMaxSecretSizeKey = "max_secret_size";
constexpr std::string_view kIdentitiesKey = "identities";
constexpr std::string_view kSecretsKey = "secrets";
constexpr std::string_view kTemplatesKey = "templates";
constexpr std::string_view kOnePasswordKey = "onepassword";

// Below these, `op` would be killed before it can answer, or 1Password asked in a tight loop.
constexpr std::chrono::milliseconds kMinRefresh = std::chrono::seconds(1);
constexpr std::chrono::milliseconds kMinOpTimeout = std::chrono::milliseconds(100);
constexpr std::chrono::milliseconds kMinRetry = std::chrono::milliseconds(100);
// Far beyond any sensible interval, and far from where a clock's arithmetic would overflow.
constexpr std::chrono::milliseconds kMaxDuration = std::chrono::days(365);

// A manifest lists file names, not contents; anything this large is the wrong file.
constexpr std::size_t kMaxManifestSize = std::size_t{16} << 20;
constexpr std::size_t kReadChunkSize = std::size_t{64} << 10;

// Rollback goes to the generation before the current one, so both must survive a prune.
constexpr std::int64_t kMinKeepGenerations = 2;

// "manifest.toml:7: ", or "manifest.toml: " when the line is unknown.
std::string where(std::string_view source, int line) {
  std::string prefix(source);
  if (line > 0) {
    prefix += ":" + std::to_string(line);
  }
  return prefix + ": ";
}

std::string_view kind_word(EntryKind kind) {
  return kind == EntryKind::template_ ? "template" : "secret";
}

std::string entry_prefix(EntryKind kind, std::string_view name) {
  return std::string(kind_word(kind)) + " `" + printable_name(name) + "`: ";
}

struct Entry {
  const toml::key* key;
  const toml::node* value;
};

// toml++ tables are ordered by key; messages and problems follow the manifest's lines instead.
std::vector<Entry> in_line_order(const toml::table& table) {
  std::vector<Entry> entries;
  for (auto&& [key, value] : table) {
    entries.push_back({&key, &value});
  }
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return line_of(*a.key) < line_of(*b.key);
  });
  return entries;
}

class ManifestReader {
 public:
  ManifestReader(std::string_view source, const std::filesystem::path& base_dir,
                 const Accounts& accounts)
      : source_(source), base_dir_(std::filesystem::absolute(base_dir)), accounts_(accounts) {}

  Manifest read(std::string_view text) && {
    const toml::table root = parse_toml(text);
    for (const Entry& entry : in_line_order(root)) {
      read_top_level(*entry.key, *entry.value);
    }
    refuse_conflicts();
    require_token_file();
    collect();
    return std::move(manifest_);
  }

 private:
  [[noreturn]] void fail(int line, const std::string& message) const {
    throw ManifestError(where(source_, line) + message);
  }

  void fail_type(const toml::key& key, const toml::node& value, std::string_view wanted) const {
    fail(line_of(key), "key `" + std::string(key.str()) + "` must be " + std::string(wanted) +
                           ", not " + std::string(type_phrase(value)));
  }

  toml::table parse_toml(std::string_view text) const {
    try {
      return toml::parse(text, source_);
    } catch (const toml::parse_error& error) {
      const auto& begin = error.source().begin;
      throw ManifestError(std::string(source_) + ":" + std::to_string(begin.line) + ":" +
                          std::to_string(begin.column) +
                          ": TOML syntax error: " + std::string(error.description()));
    }
  }

  void read_top_level(const toml::key& key, const toml::node& value) {
    if (key.str() == kMountPointKey) {
      read_mount_point(key, value);
    } else if (key.str() == kStateDirKey) {
      read_state_dir(key, value);
    } else if (key.str() == kKeepGenerationsKey) {
      read_keep_generations(key, value);
    } else if (key.str() == kAuditLogKey) {
      manifest_.audit_log = read_absolute_path(key, value);
    } else if (key.str() == kMaxSecretSizeKey) {
      read_max_secret_size(key, value);
    } else if (key.str() == kIdentitiesKey) {
      read_identities(key, value);
    } else if (key.str() == kSecretsKey) {
      read_entries(EntryKind::secret, key, value);
    } else if (key.str() == kTemplatesKey) {
      read_entries(EntryKind::template_, key, value);
    } else if (key.str() == kOnePasswordKey) {
      read_onepassword(key, value);
    } else {
      fail(line_of(key), "unknown key `" + printable_name(key.str()) +
                             "` (expected mount_point, state_dir, keep_generations, "
                             "audit_log, max_secret_size, identities, onepassword, secrets or "
                             "templates)");
    }
  }

  // [onepassword]: where the token is, which CLI to run, and how often.
  void read_onepassword(const toml::key& key, const toml::node& value) {
    const auto* table = value.as_table();
    if (table == nullptr) {
      fail_type(key, value, "a table");
    }
    OnePassword& settings = manifest_.onepassword;
    for (const Entry& entry : in_line_order(*table)) {
      const std::string_view name = entry.key->str();
      if (name == "token_file") {
        settings.token_file = read_absolute_path(*entry.key, *entry.value);
      } else if (name == "op") {
        settings.op = read_program(*entry.key, *entry.value);
      } else if (name == "refresh") {
        settings.refresh = read_duration(*entry.key, *entry.value, kMinRefresh);
      } else if (name == "timeout") {
        settings.timeout = read_duration(*entry.key, *entry.value, kMinOpTimeout);
      } else if (name == "retry") {
        settings.retry = read_duration(*entry.key, *entry.value, kMinRetry);
      } else {
        fail(line_of(*entry.key), "unknown key `onepassword." + printable_name(name) +
                                      "` (expected token_file, op, refresh, timeout or retry)");
      }
    }
  }

  // A bare name is looked up in PATH when it runs; anything with a '/' is a path.
  std::filesystem::path read_program(const toml::key& key, const toml::node& value) const {
    if (!value.is_string()) {
      fail_type(key, value, "a string");
    }
    const std::string& text = value.as_string()->get();
    check_path_text(line_of(value), "onepassword.op", text);
    if (text.find('/') == std::string::npos) {
      return text;
    }
    return resolve_path(base_dir_, text);
  }

  std::chrono::milliseconds read_duration(const toml::key& key, const toml::node& value,
                                          std::chrono::milliseconds minimum) const {
    const std::string what = "onepassword." + std::string(key.str());
    if (!value.is_string()) {
      fail(line_of(key), what + " must be a string such as \"30s\", not " +
                             std::string(type_phrase(value)));
    }
    const auto duration = parse_duration(value.as_string()->get());
    if (!duration) {
      fail(line_of(value), what + " `" + printable_name(value.as_string()->get()) +
                               "` is not a duration: a number with ms, s, m, h or d, such as "
                               "\"30s\"");
    }
    if (*duration < minimum) {
      fail(line_of(value), what + " must be at least " + std::to_string(minimum.count()) + " ms");
    }
    if (*duration > kMaxDuration) {
      fail(line_of(value), what + " must be at most 365d");
    }
    return *duration;
  }

  // A value read from 1Password needs the token to read it with.
  void require_token_file() {
    if (!manifest_.onepassword.token_file.empty()) {
      return;
    }
    for (auto& [name, reading] : secrets_) {
      if (reading.secret.from_onepassword) {
        reading.problems.push_back(
            {reading.secret.line,
             "has `source` but no `file`, and the manifest has no [onepassword] token_file to "
             "read it with"});
      }
    }
  }

  // Paths from the manifest are handed to system calls, which would stop at a NUL.
  void check_path_text(int line, std::string_view what, const std::string& text) const {
    if (text.empty()) {
      fail(line, std::string(what) + " is empty");
    }
    if (text.find('\0') != std::string::npos) {
      fail(line, std::string(what) + " contains a NUL byte");
    }
  }

  void read_mount_point(const toml::key& key, const toml::node& value) {
    manifest_.mount_point = read_absolute_path(key, value);
  }

  void read_state_dir(const toml::key& key, const toml::node& value) {
    manifest_.state_dir = read_absolute_path(key, value);
  }

  // mount_point and state_dir are system-wide places; relative to what would they be?
  std::filesystem::path read_absolute_path(const toml::key& key, const toml::node& value) const {
    if (!value.is_string()) {
      fail_type(key, value, "a string");
    }
    const std::string what(key.str());
    const std::string& text = value.as_string()->get();
    check_path_text(line_of(value), what, text);
    if (!std::filesystem::path(text).is_absolute()) {
      fail(line_of(value), what + " `" + printable_name(text) + "` must be an absolute path");
    }
    return resolve_path("/", text);
  }

  void read_keep_generations(const toml::key& key, const toml::node& value) {
    if (!value.is_integer()) {
      fail_type(key, value, "an integer");
    }
    const std::int64_t keep = value.as_integer()->get();
    if (keep < kMinKeepGenerations) {
      fail(line_of(value), "keep_generations must be at least " +
                               std::to_string(kMinKeepGenerations) + ", not " +
                               std::to_string(keep));
    }
    manifest_.keep_generations = static_cast<std::size_t>(keep);
  }

  // Bytes, as an integer or as a string with a binary unit: "512K", "16M", "1G".
  void read_max_secret_size(const toml::key& key, const toml::node& value) {
    std::optional<std::uint64_t> size;
    if (value.is_integer() && value.as_integer()->get() > 0) {
      size = static_cast<std::uint64_t>(value.as_integer()->get());
    } else if (value.is_string()) {
      size = parse_size(value.as_string()->get());
    } else if (!value.is_integer()) {
      fail_type(key, value, "an integer or a string such as \"16M\"");
    }
    if (!size || *size == 0) {
      fail(line_of(value), "max_secret_size must be a positive number of bytes, optionally "
                           "with K, M or G (1024-based), such as 16M");
    }
    manifest_.max_secret_size = *size;
  }

  void read_identities(const toml::key& key, const toml::node& value) {
    const auto* identities = value.as_array();
    if (identities == nullptr) {
      fail_type(key, value, "an array of strings");
    }
    for (std::size_t i = 0; i < identities->size(); ++i) {
      const toml::node& identity = *identities->get(i);
      const std::string what = "identities[" + std::to_string(i) + "]";
      if (!identity.is_string()) {
        fail(line_of(identity),
             what + " must be a string, not " + std::string(type_phrase(identity)));
      }
      check_path_text(line_of(identity), what, identity.as_string()->get());
      manifest_.identities.push_back(resolve_path(base_dir_, identity.as_string()->get()));
    }
  }

  // [secrets."NAME"] or [templates."NAME"]: one table per entry.
  void read_entries(EntryKind kind, const toml::key& key, const toml::node& value) {
    const auto* entries = value.as_table();
    if (entries == nullptr) {
      fail_type(key, value, "a table");
    }
    for (const Entry& entry : in_line_order(*entries)) {
      const std::string name(entry.key->str());
      const auto* table = entry.value->as_table();
      if (table == nullptr) {
        fail(line_of(*entry.key), entry_prefix(kind, name) + "must be a table such as [" +
                                      std::string(key.str()) + ".\"" + printable_name(name) +
                                      "\"], not " + std::string(type_phrase(*entry.value)));
      }
      if (kind == EntryKind::secret) {
        secrets_.emplace(name, read_secret(name, *table, base_dir_, accounts_));
      } else {
        templates_.emplace(name, read_template(name, *table, base_dir_, accounts_));
      }
    }
  }

  // A secret or a template, whichever has `name`, as far as conflicts between names go.
  struct Named {
    EntryKind kind;
    int line;
    std::vector<SecretProblem>* problems;
  };

  std::vector<Named> named(const std::string& name) {
    std::vector<Named> found;
    if (const auto secret = secrets_.find(name); secret != secrets_.end()) {
      found.push_back({EntryKind::secret, secret->second.secret.line, &secret->second.problems});
    }
    if (const auto entry = templates_.find(name); entry != templates_.end()) {
      found.push_back(
          {EntryKind::template_, entry->second.template_.line, &entry->second.problems});
    }
    return found;
  }

  // Secrets and templates share one tree, so a name is one file. `a` and `a/b`, or a secret and
  // a template both called `a`, cannot all be served; each is refused, so that neither wins by
  // accident.
  void refuse_conflicts() {
    std::vector<std::string> names;
    for (const auto& [name, reading] : secrets_) {
      if (!check_name(name)) {
        names.push_back(name);
      }
    }
    for (const auto& [name, reading] : templates_) {
      if (!check_name(name)) {
        if (secrets_.contains(name)) {
          refuse_shared_name(name);
        }
        names.push_back(name);
      }
    }
    // Names that pass check_name() have no control characters, so they print as they are.
    for (const auto& [file, directory] : find_conflicts(names)) {
      for (const Named& file_entry : named(file)) {
        for (const Named& directory_entry : named(directory)) {
          file_entry.problems->push_back(
              {file_entry.line, "is a file, but " + std::string(kind_word(directory_entry.kind)) +
                                    " `" + directory + "` needs `" + file + "` to be a directory"});
          directory_entry.problems->push_back(
              {directory_entry.line, "needs `" + file + "` to be a directory, but " +
                                         std::string(kind_word(file_entry.kind)) + " `" + file +
                                         "` is a file"});
        }
      }
    }
  }

  void refuse_shared_name(const std::string& name) {
    SecretReading& secret = secrets_.at(name);
    TemplateReading& entry = templates_.at(name);
    secret.problems.push_back(
        {secret.secret.line, "is also the name of a template; a name serves one file"});
    entry.problems.push_back(
        {entry.template_.line, "is also the name of a secret; a name serves one file"});
  }

  // Accepted entries in name order (the maps' order); problems in line order.
  void collect() {
    std::vector<std::pair<int, Problem>> problems;
    const auto refuse = [&](EntryKind kind, const std::string& name,
                            const std::vector<SecretProblem>& found) {
      for (const SecretProblem& problem : found) {
        problems.push_back(
            {problem.line,
             Problem{name, entry_problem(source_, problem.line, kind, name, problem.reason),
                     kind}});
      }
    };
    for (auto& [name, reading] : secrets_) {
      if (reading.problems.empty()) {
        manifest_.secrets.push_back(std::move(reading.secret));
      }
      refuse(EntryKind::secret, name, reading.problems);
    }
    for (auto& [name, reading] : templates_) {
      if (reading.problems.empty()) {
        manifest_.templates.push_back(std::move(reading.template_));
      }
      refuse(EntryKind::template_, name, reading.problems);
    }
    std::stable_sort(problems.begin(), problems.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [line, problem] : problems) {
      manifest_.problems.push_back(std::move(problem));
    }
  }

  std::string source_;
  std::filesystem::path base_dir_;
  const Accounts& accounts_;
  std::map<std::string, SecretReading> secrets_;
  std::map<std::string, TemplateReading> templates_;
  Manifest manifest_;
};

[[noreturn]] void fail_reading(const std::filesystem::path& path, int error) {
  throw ManifestError(path.string() +
                      ": cannot read manifest: " + std::generic_category().message(error));
}

std::string read_text(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    fail_reading(path, errno);
  }
  std::string text;
  std::array<char, kReadChunkSize> chunk;
  while (true) {
    const ssize_t count = ::read(fd, chunk.data(), chunk.size());
    if (count < 0 && errno == EINTR) {
      continue;
    }
    if (count < 0) {
      const int error = errno;
      ::close(fd);
      fail_reading(path, error);
    }
    if (count == 0) {
      break;
    }
    text.append(chunk.data(), static_cast<std::size_t>(count));
    if (text.size() > kMaxManifestSize) {
      ::close(fd);
      throw ManifestError(path.string() + ": manifest is larger than " +
                          std::to_string(kMaxManifestSize) + " bytes");
    }
  }
  ::close(fd);
  return text;
}

}  // namespace

Manifest parse(std::string_view text, const std::filesystem::path& base_dir,
               std::string_view source, const Accounts& accounts) {
  return ManifestReader(source, base_dir, accounts).read(text);
}

Manifest load(const std::filesystem::path& path, const Accounts& accounts) {
  const auto absolute = resolve_path(std::filesystem::current_path(), path.native());
  Manifest manifest = parse(read_text(path), absolute.parent_path(), path.native(), accounts);
  manifest.path = absolute;
  return manifest;
}

}  // namespace secretfs::manifest
