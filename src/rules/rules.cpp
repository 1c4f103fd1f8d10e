// Reading `recipients.toml`. Every check runs at load time and every message starts with
// "<file>:<line>: ", so a mistake is found before any secret file is touched.
#include "rules/rules.hpp"

#include <toml++/toml.h>
#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "secretfs/age/error.hpp"
#include "secretfs/age/key_files.hpp"

namespace secretfs::rules {

namespace {

constexpr std::string_view kHostsKey = "hosts";
constexpr std::string_view kUsersKey = "users";
constexpr std::string_view kGroupsKey = "groups";
constexpr std::string_view kRulesKey = "rules";
constexpr std::string_view kFilesKey = "files";
constexpr std::string_view kRecipientsKey = "recipients";

// The folder that version control keeps its own files in: never a secret.
constexpr std::string_view kGitFolder = ".git";

int line_of(const toml::node& node) {
  return static_cast<int>(node.source().begin.line);
}

int line_of(const toml::key& key) {
  return static_cast<int>(key.source().begin.line);
}

}  // namespace

class RulesReader {
 public:
  explicit RulesReader(const std::filesystem::path& path) : source_(path.string()) {
    rules_.path_ = std::filesystem::absolute(path).lexically_normal();
    rules_.base_dir_ = rules_.path_.parent_path();
  }

  Rules read(std::string_view text) && {
    const toml::table root = parse_toml(text);
    for (auto&& [key, value] : root) {
      read_top_level(key, value);
    }
    check_groups();
    check_rules();
    return std::move(rules_);
  }

 private:
  [[noreturn]] void fail(ErrorKind kind, int line, const std::string& message) const {
    throw RulesError(kind, source_ + ":" + std::to_string(line) + ": " + message);
  }

  toml::table parse_toml(std::string_view text) const {
    try {
      return toml::parse(text, source_);
    } catch (const toml::parse_error& error) {
      fail(ErrorKind::syntax, static_cast<int>(error.source().begin.line),
           "TOML syntax error: " + std::string(error.description()));
    }
  }

  void read_top_level(const toml::key& key, const toml::node& value) {
    if (key.str() == kHostsKey || key.str() == kUsersKey) {
      read_keys(key, value);
    } else if (key.str() == kGroupsKey) {
      read_groups(key, value);
    } else if (key.str() == kRulesKey) {
      read_rules(key, value);
    } else {
      fail(ErrorKind::syntax, line_of(key),
           "unknown key `" + std::string(key.str()) + "` (want hosts, users, groups or rules)");
    }
  }

  const toml::table& table_of(const toml::key& key, const toml::node& value) const {
    if (!value.is_table()) {
      fail(ErrorKind::syntax, line_of(key), "`" + std::string(key.str()) + "` must be a table");
    }
    return *value.as_table();
  }

  // A host or user: the singular of the table's name, for messages ("host `web1`").
  static std::string kind_of(const toml::key& table) {
    return table.str() == kHostsKey ? "host" : "user";
  }

  void claim_name(const std::string& name, int line, const std::string& what) {
    if (!claimed_.emplace(name, what).second) {
      fail(ErrorKind::duplicate, line,
           what + " `" + name + "`: the name is already used by a " + claimed_.at(name));
    }
  }

  void read_keys(const toml::key& table_key, const toml::node& value) {
    const std::string kind = kind_of(table_key);
    for (auto&& [key, entry] : table_of(table_key, value)) {
      const std::string name(key.str());
      const int line = line_of(key);
      const auto* text = entry.as_string();
      if (text == nullptr) {
        fail(ErrorKind::syntax, line, kind + " `" + name + "` must be a recipient string");
      }
      claim_name(name, line, kind);
      try {
        age::parse_recipient(text->get());
      } catch (const age::Error& error) {
        fail(ErrorKind::bad_key, line,
             kind + " `" + name + "`: key does not parse: " + std::string(error.what()));
      }
      rules_.keys_[name] = Rules::Key{text->get(), line};
    }
  }

  std::vector<std::string> names_in(const toml::node& value, int line,
                                    const std::string& what) const {
    const auto* array = value.as_array();
    if (array == nullptr) {
      fail(ErrorKind::syntax, line, what + " must be an array of names");
    }
    std::vector<std::string> names;
    for (const auto& element : *array) {
      const auto* name = element.as_string();
      if (name == nullptr) {
        fail(ErrorKind::syntax, line_of(element), what + " must hold names (strings)");
      }
      names.push_back(name->get());
    }
    return names;
  }

  void read_groups(const toml::key& table_key, const toml::node& value) {
    for (auto&& [key, entry] : table_of(table_key, value)) {
      const std::string name(key.str());
      claim_name(name, line_of(key), "group");
      rules_.groups_[name] =
          Rules::Group{names_in(entry, line_of(key), "group `" + name + "`"), line_of(key)};
    }
  }

  void read_rules(const toml::key& key, const toml::node& value) {
    const auto* array = value.as_array();
    if (array == nullptr || !array->is_array_of_tables()) {
      fail(ErrorKind::syntax, line_of(key), "`rules` must be an array of tables ([[rules]])");
    }
    for (const auto& element : *array) {
      read_rule(*element.as_table());
    }
  }

  std::string glob_in(const toml::node& value, int line, const std::string& what) const {
    if (!value.is_string()) {
      fail(ErrorKind::syntax, line, what + ": files must be a string (a glob)");
    }
    return value.as_string()->get();
  }

  void read_rule(const toml::table& table) {
    Rule rule;
    rule.line = line_of(table);
    const std::string what = "rule " + std::to_string(rules_.rules_.size() + 1);
    for (auto&& [key, value] : table) {
      if (key.str() == kFilesKey) {
        rule.files = glob_in(value, line_of(key), what);
      } else if (key.str() == kRecipientsKey) {
        rule.recipients = names_in(value, line_of(key), what + ": recipients");
      } else {
        fail(ErrorKind::syntax, line_of(key),
             what + ": unexpected key `" + std::string(key.str()) +
                 "` (want files = \"glob\" and recipients = [names])");
      }
    }
    if (rule.files.empty()) {
      fail(ErrorKind::syntax, rule.line, what + ": needs files = \"glob\"");
    }
    if (rule.recipients.empty()) {
      fail(ErrorKind::syntax, rule.line, what + ": needs at least one name in recipients");
    }
    rules_.rules_.push_back(std::move(rule));
  }

  bool known(const std::string& name) const {
    return rules_.keys_.contains(name) || rules_.groups_.contains(name);
  }

  // Walks a group's members depth first; `trail` is the chain of groups being expanded, so a
  // name already on it closes a cycle.
  void check_group(const std::string& name, std::vector<std::string>& trail) const {
    const auto& group = rules_.groups_.at(name);
    if (std::find(trail.begin(), trail.end(), name) != trail.end()) {
      std::string chain;
      for (const auto& link : trail) {
        chain += link + " -> ";
      }
      fail(ErrorKind::group_cycle, rules_.groups_.at(trail.front()).line,
           "group `" + trail.front() + "` contains itself (" + chain + name + ")");
    }
    trail.push_back(name);
    for (const auto& member : group.members) {
      if (!known(member)) {
        fail(ErrorKind::unknown_name, group.line,
             "group `" + name + "`: unknown name `" + member + "` (not a host, user or group)");
      }
      if (rules_.groups_.contains(member)) {
        check_group(member, trail);
      }
    }
    trail.pop_back();
  }

  void check_groups() const {
    for (const auto& [name, group] : rules_.groups_) {
      std::vector<std::string> trail;
      check_group(name, trail);
    }
  }

  void check_rules() const {
    for (std::size_t i = 0; i < rules_.rules_.size(); ++i) {
      const Rule& rule = rules_.rules_[i];
      for (const auto& name : rule.recipients) {
        if (!known(name)) {
          fail(ErrorKind::unknown_name, rule.line,
               "rule " + std::to_string(i + 1) + ": unknown name `" + name +
                   "` in recipients (not a host, user or group)");
        }
      }
    }
  }

  std::string source_;
  Rules rules_;
  std::map<std::string, std::string> claimed_;  // name -> "host", "user" or "group"
};

Rules Rules::parse(std::string_view text, const std::filesystem::path& path) {
  return RulesReader(path).read(text);
}

Rules Rules::load(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw RulesError(ErrorKind::not_found, path.string() + ": cannot read the rules file");
  }
  std::stringstream text;
  text << in.rdbuf();
  return parse(text.str(), path);
}

const Rule* Rules::match(const std::filesystem::path& file) const {
  const auto absolute = std::filesystem::weakly_canonical(std::filesystem::absolute(file));
  const auto relative = absolute.lexically_relative(std::filesystem::weakly_canonical(base_dir_));
  if (relative.empty() || *relative.begin() == "..") {
    return nullptr;
  }
  for (const auto& rule : rules_) {
    if (glob_matches(rule.files, relative.generic_string())) {
      return &rule;
    }
  }
  return nullptr;
}

const Rule& Rules::rule_for(const std::filesystem::path& file) const {
  if (const Rule* rule = match(file)) {
    return *rule;
  }
  throw RulesError(ErrorKind::no_rule,
                   file.string() + ": no rule in " + path_.string() + " matches this file");
}

void Rules::expand(const std::string& name, std::vector<std::string>& out) const {
  if (const auto key = keys_.find(name); key != keys_.end()) {
    if (std::find(out.begin(), out.end(), key->second.recipient) == out.end()) {
      out.push_back(key->second.recipient);
    }
    return;
  }
  for (const auto& member : groups_.at(name).members) {
    expand(member, out);
  }
}

std::vector<std::string> Rules::recipients_of(const Rule& rule) const {
  std::vector<std::string> recipients;
  for (const auto& name : rule.recipients) {
    expand(name, recipients);
  }
  return recipients;
}

std::vector<std::filesystem::path> Rules::matching_files() const {
  std::vector<std::filesystem::path> files;
  auto entry = std::filesystem::recursive_directory_iterator(base_dir_);
  for (; entry != std::filesystem::recursive_directory_iterator(); ++entry) {
    if (entry->is_directory() && entry->path().filename() == kGitFolder) {
      entry.disable_recursion_pending();
    } else if (entry->is_regular_file() && match(entry->path()) != nullptr) {
      files.push_back(entry->path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::optional<std::filesystem::path> find_rules_file(const std::filesystem::path& folder) {
  auto current = std::filesystem::absolute(folder).lexically_normal();
  for (;;) {
    const auto candidate = current / kRulesFileName;
    if (std::filesystem::is_regular_file(candidate)) {
      return candidate;
    }
    if (current == current.root_path() || current.parent_path() == current) {
      return std::nullopt;
    }
    current = current.parent_path();
  }
}

Rules rules_for_file(const std::filesystem::path& file,
                     const std::optional<std::filesystem::path>& explicit_path) {
  if (explicit_path) {
    return Rules::load(*explicit_path);
  }
  const auto folder = std::filesystem::absolute(file).lexically_normal().parent_path();
  const auto found = find_rules_file(folder);
  if (!found) {
    throw RulesError(ErrorKind::not_found, file.string() + ": no " + std::string(kRulesFileName) +
                                               " in " + folder.string() +
                                               " or any folder above it; give --rules FILE");
  }
  return Rules::load(*found);
}

}  // namespace secretfs::rules
