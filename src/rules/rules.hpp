// The recipients rules: `recipients.toml` says which keys each secret file is encrypted to.
//
//   [hosts]   web1 = "ssh-ed25519 AAAA… root@web1"
//   [users]   ops1 = "age1…"
//   [groups]  admins = ["ops1"]
//   [[rules]] files = "web1/*.age"  recipients = ["web1", "admins"]
//
// Globs are relative to the folder of the rules file, and the first rule whose glob matches a
// file decides its recipients. Everything is checked when the file is loaded (every key parses,
// every name is known, no group contains itself, every rule resolves to at least one key, every
// glob can match something), so a command never fails halfway through a set of files because of
// a mistake in the rules. Every mistake in the file is reported at once, one per line.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace secretfs::rules {

inline constexpr std::string_view kRulesFileName = "recipients.toml";

enum class ErrorKind {
  syntax,         // not TOML, or a key or value of the wrong shape
  unknown_name,   // a rule or group names no host, user or group
  group_cycle,    // a group contains itself, directly or through other groups
  bad_key,        // a host's or user's key does not parse as a recipient
  duplicate,      // one name used twice (a host and a user, say)
  no_rule,        // no rule matches a file
  not_found,      // no rules file could be read or found
  no_recipients,  // a rule resolves to no key (only empty groups): its files could never be read
  bad_glob,       // a glob that can never match a file (absolute, "..", trailing '/', open '[')
};

class RulesError : public std::runtime_error {
 public:
  RulesError(ErrorKind kind, const std::string& message)
      : std::runtime_error(message), kind_(kind) {}

  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

struct Rule {
  std::string files;                    // the glob, relative to the rules file's folder
  std::vector<std::string> recipients;  // host, user or group names, as written
  int line = 0;                         // where the rule's table starts
  int number = 0;                       // 1 for the first [[rules]] table, and so on
};

class Rules {
 public:
  // Parses rules text; `path` is where it came from: messages name it, globs are relative to
  // its folder.
  static Rules parse(std::string_view text, const std::filesystem::path& path);

  // Reads and parses a rules file; throws RulesError(not_found) when it cannot be read.
  static Rules load(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return path_; }
  const std::filesystem::path& base_dir() const { return base_dir_; }
  const std::vector<Rule>& rules() const { return rules_; }

  // Mistakes that do not stop the rules from working, such as a rule that can never match
  // because an earlier rule's glob covers it; each starts with "<file>:<line>: ".
  const std::vector<std::string>& warnings() const { return warnings_; }

  // The first rule whose glob matches `file`, or nullptr. A file outside the rules file's
  // folder matches nothing.
  const Rule* match(const std::filesystem::path& file) const;

  // Like match, but throws RulesError(no_rule) naming the file and the rules file.
  const Rule& rule_for(const std::filesystem::path& file) const;

  // The recipient strings a rule resolves to, groups expanded, each key once, in the order
  // they are first named.
  std::vector<std::string> recipients_of(const Rule& rule) const;

  // Every regular file under the rules file's folder that some rule matches, sorted. Symbolic
  // links are left out: secretfs never rewrites a file through a link.
  std::vector<std::filesystem::path> matching_files() const;

 private:
  struct Key {
    std::string recipient;
    int line = 0;
  };
  struct Group {
    std::vector<std::string> members;
    int line = 0;
  };
  friend class RulesReader;

  void expand(const std::string& name, std::vector<std::string>& out) const;

  std::filesystem::path path_;
  std::filesystem::path base_dir_;
  std::map<std::string, Key> keys_;  // hosts and users share one name space
  std::map<std::string, Group> groups_;
  std::vector<Rule> rules_;
  std::vector<std::string> warnings_;
};

// The nearest `recipients.toml` in `folder` or one of its parents, like `.sops.yaml`.
std::optional<std::filesystem::path> find_rules_file(const std::filesystem::path& folder);

// The rules for `file`: from `explicit_path` when given, else the nearest rules file above the
// file's folder. Throws RulesError(not_found) when there is none.
Rules rules_for_file(const std::filesystem::path& file,
                     const std::optional<std::filesystem::path>& explicit_path);

// Writes the rules' warnings to standard error as "warning: …", once per rules file however
// often it is loaded (rekey loads it once per file).
void print_warnings_once(const Rules& rules);

// Whether `relative` (a '/'-separated path) matches `glob`: `*` and `?` stay within one path
// segment, `**` as a whole segment matches any number of segments, `[abc]`, `[a-z]` and
// `[!abc]` match one character of a set.
bool glob_matches(std::string_view glob, std::string_view relative);

// Why `glob` can never match a file below the rules file's folder, or nullopt when it can.
std::optional<std::string> glob_problem(std::string_view glob);

// Whether every path `later` matches is also matched by `earlier`, for the common shapes: the
// same glob, a `later` without wildcards, and an `earlier` of literal folders, then `**`, then
// an optional last segment of `*` or `*` followed by a literal suffix ("**/*.age"). False when
// unsure, so that it only ever drives a warning that is right.
bool glob_covers(std::string_view earlier, std::string_view later);

}  // namespace secretfs::rules
