// The recipients rules: `recipients.toml` says which keys each secret file is encrypted to.
//
//   [hosts]   web1 = "ssh-ed25519 AAAA… root@web1"
//   [users]   ops1 = "age1…"
//   [groups]  admins = ["ops1"]
//   [[rules]] files = "web1/*.age"  recipients = ["web1", "admins"]
//
// Globs are relative to the folder of the rules file, and the first rule whose glob matches a
// file decides its recipients. Everything is checked when the file is loaded (every key parses,
// every name is known, no group contains itself), so a command never fails halfway through a
// set of files because of a mistake in the rules.
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
  syntax,        // not TOML, or a key or value of the wrong shape
  unknown_name,  // a rule or group names no host, user or group
  group_cycle,   // a group contains itself, directly or through other groups
  bad_key,       // a host's or user's key does not parse as a recipient
  duplicate,     // one name used twice (a host and a user, say)
  no_rule,       // no rule matches a file
  not_found,     // no rules file could be read or found
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

  // The first rule whose glob matches `file`, or nullptr. A file outside the rules file's
  // folder matches nothing.
  const Rule* match(const std::filesystem::path& file) const;

  // Like match, but throws RulesError(no_rule) naming the file and the rules file.
  const Rule& rule_for(const std::filesystem::path& file) const;

  // The recipient strings a rule resolves to, groups expanded, each key once, in the order
  // they are first named.
  std::vector<std::string> recipients_of(const Rule& rule) const;

  // Every regular file under the rules file's folder that some rule matches, sorted.
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
};

// The nearest `recipients.toml` in `folder` or one of its parents, like `.sops.yaml`.
std::optional<std::filesystem::path> find_rules_file(const std::filesystem::path& folder);

// The rules for `file`: from `explicit_path` when given, else the nearest rules file above the
// file's folder. Throws RulesError(not_found) when there is none.
Rules rules_for_file(const std::filesystem::path& file,
                     const std::optional<std::filesystem::path>& explicit_path);

// Whether `relative` (a '/'-separated path) matches `glob`: `*` and `?` stay within one path
// segment, `**` as a whole segment matches any number of segments, `[abc]`, `[a-z]` and
// `[!abc]` match one character of a set.
bool glob_matches(std::string_view glob, std::string_view relative);

}  // namespace secretfs::rules
