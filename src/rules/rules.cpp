// Reading `recipients.toml`. Every check runs at load time and every message starts with
// "<file>:<line>: ", so a mistake is found before any secret file is touched.
#include "rules/rules.hpp"

#include <toml++/toml.h>
#include <algorithm>
#include <cstdio>
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

// Collects every mistake instead of stopping at the first: `fail` throws a Mistake, which the
// loop over hosts, groups or rules catches and records before going on with the next entry.
class RulesReader {
 public:
  explicit RulesReader(const std::filesystem::path& path) : source_(path.string()) {
    rules_.path_ = std::filesystem::absolute(path).lexically_normal();
    rules_.base_dir_ = rules_.path_.parent_path();
  }

  Rules read(std::string_view text) && {
    const toml::table root = parse_toml(text);
    for (auto&& [key, value] : root) {
      recording([&] { read_top_level(key, value); });
    }
    check_groups();
    check_rules();
    if (!mistakes_.empty()) {
      std::string message;
      for (const auto& mistake : mistakes_) {
        message += (message.empty() ? "" : "\n") + mistake.message;
      }
      throw RulesError(mistakes_.front().kind, message);
    }
    warn_about_shadowed_rules();
    return std::move(rules_);
  }

 private:
  struct Mistake {
    ErrorKind kind;
    std::string message;
  };

  std::string at(int line) const { return source_ + ":" + std::to_string(line) + ": "; }

  [[noreturn]] void fail(ErrorKind kind, int line, const std::string& message) const {
    throw Mistake{kind, at(line) + message};
  }

  template <typename Step>
  void recording(Step step) {
    try {
      step();
    } catch (const Mistake& mistake) {
      mistakes_.push_back(mistake);
    }
  }

  // A TOML syntax error stops everything: nothing after it can be read reliably.
  toml::table parse_toml(std::string_view text) const {
    try {
      return toml::parse(text, source_);
    } catch (const toml::parse_error& error) {
      throw RulesError(ErrorKind::syntax,
                       at(static_cast<int>(error.source().begin.line)) +
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

  void read_key(const std::string& kind, const toml::key& key, const toml::node& entry) {
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

  void read_keys(const toml::key& table_key, const toml::node& value) {
    const std::string kind = kind_of(table_key);
    for (auto&& [key, entry] : table_of(table_key, value)) {
      recording([&] { read_key(kind, key, entry); });
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

  void read_group(const toml::key& key, const toml::node& entry) {
    const std::string name(key.str());
    claim_name(name, line_of(key), "group");
    rules_.groups_[name] =
        Rules::Group{names_in(entry, line_of(key), "group `" + name + "`"), line_of(key)};
  }

  void read_groups(const toml::key& table_key, const toml::node& value) {
    for (auto&& [key, entry] : table_of(table_key, value)) {
      recording([&] { read_group(key, entry); });
    }
  }

  void read_rules(const toml::key& key, const toml::node& value) {
    const auto* array = value.as_array();
    if (array == nullptr || !array->is_array_of_tables()) {
      fail(ErrorKind::syntax, line_of(key), "`rules` must be an array of tables ([[rules]])");
    }
    for (const auto& element : *array) {
      // Numbered even when broken, so that "rule 3" always means the third [[rules]] table.
      ++rule_count_;
      recording([&] { read_rule(*element.as_table()); });
    }
  }

  std::string glob_in(const toml::node& value, int line, const std::string& what) const {
    if (!value.is_string()) {
      fail(ErrorKind::syntax, line, what + ": files must be a string (a glob)");
    }
    const std::string glob = value.as_string()->get();
    if (const auto problem = glob_problem(glob)) {
      fail(ErrorKind::bad_glob, line,
           what + ": files = \"" + glob + "\" can never match a file: it " + *problem);
    }
    return glob;
  }

  void read_rule_key(Rule& rule, const toml::key& key, const toml::node& value) {
    const std::string what = "rule " + std::to_string(rule.number);
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

  // A rule with a broken glob is still kept, so that its recipients get checked too; the
  // Rules are never handed out while any mistake is recorded.
  void read_rule(const toml::table& table) {
    Rule rule;
    rule.line = line_of(table);
    rule.number = rule_count_;
    bool has_files = false;
    for (auto&& [key, value] : table) {
      has_files = has_files || key.str() == kFilesKey;
      recording([&] { read_rule_key(rule, key, value); });
    }
    if (!rule.recipients.empty()) {
      rules_.rules_.push_back(rule);
    }
    const std::string what = "rule " + std::to_string(rule.number);
    if (!has_files) {
      fail(ErrorKind::syntax, rule.line, what + ": needs files = \"glob\"");
    }
    if (rule.recipients.empty()) {
      fail(ErrorKind::syntax, rule.line, what + ": needs at least one name in recipients");
    }
  }

  // A name that was declared counts as known even when its declaration had a mistake of its
  // own, so that one broken key is reported once, not again by every rule that names it.
  bool known(const std::string& name) const { return claimed_.contains(name); }

  void check_members(const std::string& name, const Rules::Group& group) {
    for (const auto& member : group.members) {
      recording([&] {
        if (!known(member)) {
          fail(ErrorKind::unknown_name, group.line,
               "group `" + name + "`: unknown name `" + member + "` (not a host, user or group)");
        }
      });
    }
  }

  // Walks a group's members depth first; `trail` is the chain of groups being expanded, so a
  // name already on it closes a cycle. Each cycle is reported once, from its first group.
  void check_cycle(const std::string& name, std::vector<std::string>& trail) {
    if (const auto start = std::find(trail.begin(), trail.end(), name); start != trail.end()) {
      std::string chain;
      for (auto link = start; link != trail.end(); ++link) {
        chain += *link + " -> ";
        in_cycle_.insert(*link);
      }
      fail(ErrorKind::group_cycle, rules_.groups_.at(name).line,
           "group `" + name + "` contains itself (" + chain + name + ")");
    }
    trail.push_back(name);
    for (const auto& member : rules_.groups_.at(name).members) {
      if (rules_.groups_.contains(member) && !in_cycle_.contains(member)) {
        check_cycle(member, trail);
      }
    }
    trail.pop_back();
  }

  void check_groups() {
    for (const auto& [name, group] : rules_.groups_) {
      check_members(name, group);
    }
    for (const auto& [name, group] : rules_.groups_) {
      if (!in_cycle_.contains(name)) {
        std::vector<std::string> trail;
        recording([&] { check_cycle(name, trail); });
      }
    }
  }

  // Whether `name` stands for at least one key; `empty` collects the groups passed on the way
  // that hold none. Safe on cycles: a group already being walked adds nothing.
  bool has_key(const std::string& name, std::vector<std::string>& empty,
               std::set<std::string>& walking) const {
    if (rules_.keys_.contains(name)) {
      return true;
    }
    const auto group = rules_.groups_.find(name);
    if (group == rules_.groups_.end() || !walking.insert(name).second) {
      return false;
    }
    bool any = false;
    for (const auto& member : group->second.members) {
      any = has_key(member, empty, walking) || any;
    }
    if (!any && std::find(empty.begin(), empty.end(), name) == empty.end()) {
      empty.push_back(name);
    }
    return any;
  }

  void check_resolves(const Rule& rule) {
    std::vector<std::string> empty;
    std::set<std::string> walking;
    bool any = false;
    for (const auto& name : rule.recipients) {
      any = has_key(name, empty, walking) || any;
    }
    if (any) {
      return;
    }
    std::string groups;
    for (const auto& name : empty) {
      groups += (groups.empty() ? "`" : ", `") + name + "` (line " +
                std::to_string(rules_.groups_.at(name).line) + ")";
    }
    fail(ErrorKind::no_recipients, rule.line,
         "rule " + std::to_string(rule.number) +
             ": recipients resolve to no key, so its files could never be decrypted; empty "
             "groups: " +
             groups);
  }

  void check_rules() {
    // A broken key or group already has its own message; guessing at emptiness from what is
    // left would add a second, misleading one.
    const bool clean = mistakes_.empty();
    for (const Rule& rule : rules_.rules_) {
      bool names_known = true;
      for (const auto& name : rule.recipients) {
        recording([&] {
          if (!known(name)) {
            names_known = false;
            fail(ErrorKind::unknown_name, rule.line,
                 "rule " + std::to_string(rule.number) + ": unknown name `" + name +
                     "` in recipients (not a host, user or group)");
          }
        });
      }
      if (names_known && clean) {
        recording([&] { check_resolves(rule); });
      }
    }
  }

  void warn_about_shadowed_rules() {
    const auto& rules = rules_.rules_;
    for (std::size_t later = 0; later < rules.size(); ++later) {
      for (std::size_t earlier = 0; earlier < later; ++earlier) {
        if (glob_covers(rules[earlier].files, rules[later].files)) {
          rules_.warnings_.push_back(
              at(rules[later].line) + "rule " + std::to_string(rules[later].number) +
              " can never match: rule " + std::to_string(rules[earlier].number) + " (line " +
              std::to_string(rules[earlier].line) + ", files = \"" + rules[earlier].files +
              "\") comes first and matches every file it would");
          break;
        }
      }
    }
  }

  std::string source_;
  Rules rules_;
  std::map<std::string, std::string> claimed_;  // name -> "host", "user" or "group"
  std::set<std::string> in_cycle_;
  std::vector<Mistake> mistakes_;
  int rule_count_ = 0;
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
    } else if (std::filesystem::is_regular_file(entry->symlink_status()) &&
               match(entry->path()) != nullptr) {
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

void print_warnings_once(const Rules& rules) {
  static std::set<std::filesystem::path> warned;
  if (!warned.insert(rules.path()).second) {
    return;
  }
  for (const auto& warning : rules.warnings()) {
    std::fprintf(stderr, "warning: %s\n", warning.c_str());
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
