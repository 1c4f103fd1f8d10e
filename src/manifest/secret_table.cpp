// One secret's or template's table. Each problem refuses this entry alone; the caller decides
// what the whole manifest does about it.
#include "manifest/secret_table.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <limits>
#include <optional>

#include "manifest/names.hpp"
#include "manifest/paths.hpp"

namespace secretfs::manifest {

namespace {

constexpr std::string_view kFileKey = "file";
constexpr std::string_view kContentKey = "content";
constexpr std::string_view kOwnerKey = "owner";
constexpr std::string_view kGroupKey = "group";
constexpr std::string_view kModeKey = "mode";
constexpr std::string_view kSourceKey = "source";
constexpr std::string_view kRestartUnitsKey = "restart_units";
constexpr std::string_view kReloadUnitsKey = "reload_units";
constexpr std::string_view kReferenceScheme = "op://";

// uid and gid are 32 bits; the all-ones value means "leave unchanged" to chown and is no one.
constexpr std::int64_t kMaxId = std::numeric_limits<std::uint32_t>::max() - 1;
constexpr gid_t kRootGid = 0;

constexpr std::size_t kMinModeDigits = 3;
constexpr std::size_t kMaxModeDigits = 4;
constexpr int kOctalBase = 8;
constexpr mode_t kReadBits = S_IRUSR | S_IRGRP | S_IROTH;

// Secrets are read-only plain files: none of these bits can mean anything for them, and a
// manifest that asks for one has misunderstood something worth telling.
struct ModeBits {
  mode_t bits;
  std::string_view name;
};
constexpr std::array kRefusedModeBits = {
    ModeBits{S_ISUID, "setuid"},
    ModeBits{S_ISGID, "setgid"},
    ModeBits{S_ISVTX, "sticky"},
    ModeBits{S_IWUSR | S_IWGRP | S_IWOTH, "write"},
    ModeBits{S_IXUSR | S_IXGRP | S_IXOTH, "execute"},
};

bool is_digits(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool has_control_character(std::string_view text) {
  return printable_name(text) != text;
}

std::string in_backticks(std::string_view text) {
  return "`" + printable_name(text) + "`";
}

// "a", "a and b", "a, b and c".
std::string join_names(const std::vector<std::string_view>& names) {
  std::string joined;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) {
      joined += i + 1 == names.size() ? " and " : ", ";
    }
    joined += names[i];
  }
  return joined;
}

// What an owner or group says: a number to use as it is, or a name to look up.
struct AccountRef {
  std::optional<std::uint32_t> number;
  std::string name;
};

// Reads a secret's table, or a template's: the same keys, but a template takes its text from
// `content` or from `file`, and a secret's `file` is its age file.
class SecretReader {
 public:
  SecretReader(EntryKind kind, const std::string& name, const toml::table& table,
               const std::filesystem::path& base_dir, const Accounts& accounts)
      : kind_(kind), table_(table), base_dir_(base_dir), accounts_(accounts) {
    reading_.secret.name = name;
    reading_.secret.line = line_of(table);
  }

  SecretReading read() && {
    if (auto reason = check_name(reading_.secret.name)) {
      refuse(line_of(table_), *reason);
    }
    for (auto&& [key, value] : table_) {
      read_key(key, value);
    }
    if (kind_ == EntryKind::template_) {
      read_text_source();
    } else {
      read_source();
      read_file();
    }
    read_owner_and_group();
    read_mode();
    return std::move(reading_);
  }

 private:
  void refuse(int line, std::string reason) {
    reading_.problems.push_back({line, std::move(reason)});
  }

  void refuse_type(const toml::key& key, const toml::node& value, std::string_view wanted) {
    refuse(line_of(key), "key `" + std::string(key.str()) + "` must be " + std::string(wanted) +
                             ", not " + std::string(type_phrase(value)));
  }

  // Keeps each known key whose value has the right type; refuses the others.
  void read_key(const toml::key& key, const toml::node& value) {
    const std::string_view name = key.str();
    const bool content = kind_ == EntryKind::template_ && name == kContentKey;
    const bool source = kind_ == EntryKind::secret && name == kSourceKey;
    if (name == kFileKey || name == kModeKey || content || source) {
      if (!value.is_string()) {
        return refuse_type(key, value, "a string");
      }
      (content  ? content_
       : source ? source_
       : name == kFileKey ? file_
                          : mode_) = &value;
    } else if (name == kRestartUnitsKey || name == kReloadUnitsKey) {
      read_units(key, value,
                 name == kRestartUnitsKey ? reading_.secret.units.restart
                                          : reading_.secret.units.reload);
    } else if (name == kOwnerKey || name == kGroupKey) {
      if (!value.is_string() && !value.is_integer()) {
        return refuse_type(key, value, "a string or an integer");
      }
      (name == kOwnerKey ? owner_ : group_) = &value;
    } else {
      refuse(line_of(key),
             "unknown key " + in_backticks(name) +
                 (kind_ == EntryKind::template_
                      ? " (expected content, file, owner, group, mode, restart_units or "
                        "reload_units)"
                      : " (expected file, source, owner, group, mode, restart_units or "
                        "reload_units)"));
    }
  }

  // A template's text is either in the manifest or in a file, never both: which one would win
  // is a guess the manifest should not leave to secretfs.
  void read_text_source() {
    if (content_ != nullptr && file_ != nullptr) {
      return refuse(line_of(*file_),
                    "keys `content` and `file` are both set; a template takes "
                    "its text from one of them");
    }
    if (file_ != nullptr) {
      return read_file();
    }
    if (content_ != nullptr) {
      reading_.content = content_->as_string()->get();
    } else if (!table_.contains(kContentKey) && !table_.contains(kFileKey)) {
      // A key of the wrong type was reported already; "missing" would contradict that.
      refuse(line_of(table_), "key `content` or `file` is missing");
    }
  }

  // Unit names go to systemctl as arguments of their own; one that starts with '-' would be
  // read as an option.
  void read_units(const toml::key& key, const toml::node& value, std::vector<std::string>& units) {
    const auto* array = value.as_array();
    if (array == nullptr) {
      return refuse_type(key, value, "an array of strings");
    }
    for (const toml::node& unit : *array) {
      const auto* text = unit.as_string();
      if (text == nullptr || text->get().empty() || text->get().front() == '-' ||
          has_control_character(text->get())) {
        return refuse(line_of(unit), "key `" + std::string(key.str()) +
                                         "` must list unit names such as \"nginx.service\"");
      }
      units.push_back(text->get());
    }
  }

  // A 1Password reference; its parts are checked where it is read (onepassword.hpp), this
  // catches what is plainly not one.
  void read_source() {
    if (source_ == nullptr) {
      return;
    }
    const std::string& text = source_->as_string()->get();
    if (!text.starts_with(kReferenceScheme) || has_control_character(text)) {
      return refuse(line_of(*source_),
                    "key `source` must be a 1Password reference such as "
                    "\"op://vault/item/field\"");
    }
    reading_.secret.source = text;
    reading_.secret.from_onepassword = file_ == nullptr;
  }

  void read_file() {
    if (file_ == nullptr) {
      // A key of the wrong type was reported already; "missing" would contradict that.
      if (!table_.contains(kFileKey) && !table_.contains(kSourceKey)) {
        refuse(line_of(table_), "key `file` or `source` is missing");
      }
      return;
    }
    const std::string& text = file_->as_string()->get();
    if (text.empty()) {
      return refuse(line_of(*file_), "key `file` is empty");
    }
    if (text.find('\0') != std::string::npos) {
      return refuse(line_of(*file_), "key `file` contains a NUL byte");
    }
    reading_.secret.file = resolve_path(base_dir_, text);
  }

  // Reads an owner or group as a number or a name; refuses it and returns nullopt when it is
  // neither. `id_kind` is "uid" or "gid".
  std::optional<AccountRef> read_account(const toml::node& value, std::string_view key,
                                         std::string_view id_kind) {
    const std::string key_name(key);
    if (const auto* integer = value.as_integer()) {
      if (integer->get() < 0 || integer->get() > kMaxId) {
        refuse(line_of(value), key_name + " " + std::to_string(integer->get()) +
                                   " is not a valid " + std::string(id_kind) + " (0 to " +
                                   std::to_string(kMaxId) + ")");
        return std::nullopt;
      }
      return AccountRef{static_cast<std::uint32_t>(integer->get()), {}};
    }
    const std::string& text = value.as_string()->get();
    if (text.empty()) {
      refuse(line_of(value), "key `" + key_name + "` is empty");
      return std::nullopt;
    }
    if (is_digits(text)) {
      return read_number(value, text, key_name, id_kind);
    }
    if (has_control_character(text)) {
      refuse(line_of(value), key_name + " " + in_backticks(text) + " has a control character");
      return std::nullopt;
    }
    return AccountRef{std::nullopt, text};
  }

  std::optional<AccountRef> read_number(const toml::node& value, const std::string& text,
                                        const std::string& key_name, std::string_view id_kind) {
    std::uint32_t number = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
    if (error != std::errc{} || end != text.data() + text.size() || number > kMaxId) {
      refuse(line_of(value), key_name + " `" + text + "` is not a valid " + std::string(id_kind) +
                                 " (0 to " + std::to_string(kMaxId) + ")");
      return std::nullopt;
    }
    return AccountRef{number, {}};
  }

  // The owner's uid and, when the owner has a passwd entry, its primary group.
  std::optional<Accounts::User> resolve_owner() {
    if (owner_ == nullptr) {
      return Accounts::User{0, kRootGid};
    }
    const auto owner = read_account(*owner_, kOwnerKey, "uid");
    if (!owner) {
      return std::nullopt;
    }
    if (owner->number) {
      // A number needs no passwd entry; without one there is no primary group to default to.
      const auto user = accounts_.user_by_uid(*owner->number);
      return Accounts::User{*owner->number, user ? user->primary_gid : kRootGid};
    }
    auto user = accounts_.user_by_name(owner->name);
    if (!user) {
      refuse(line_of(*owner_), "unknown user " + in_backticks(owner->name));
    }
    return user;
  }

  std::optional<gid_t> resolve_group() {
    const auto group = read_account(*group_, kGroupKey, "gid");
    if (!group) {
      return std::nullopt;
    }
    if (group->number) {
      return *group->number;
    }
    auto gid = accounts_.group_by_name(group->name);
    if (!gid) {
      refuse(line_of(*group_), "unknown group " + in_backticks(group->name));
    }
    return gid;
  }

  void read_owner_and_group() {
    const auto owner = resolve_owner();
    if (owner) {
      reading_.secret.uid = owner->uid;
      reading_.secret.gid = owner->primary_gid;
    }
    if (group_ != nullptr) {
      if (const auto gid = resolve_group()) {
        reading_.secret.gid = *gid;
      }
    }
  }

  void read_mode() {
    if (mode_ == nullptr) {
      return;
    }
    const std::string& text = mode_->as_string()->get();
    const bool octal =
        text.size() >= kMinModeDigits && text.size() <= kMaxModeDigits &&
        std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '7'; });
    if (!octal) {
      return refuse(line_of(*mode_), "mode " + in_backticks(text) +
                                         " is not an octal string of 3 or 4 digits, such as "
                                         "\"0400\"");
    }
    mode_t mode = 0;
    std::from_chars(text.data(), text.data() + text.size(), mode, kOctalBase);
    check_mode_bits(text, mode);
  }

  void check_mode_bits(const std::string& text, mode_t mode) {
    std::vector<std::string_view> refused;
    for (const auto& bits : kRefusedModeBits) {
      if ((mode & bits.bits) != 0) {
        refused.push_back(bits.name);
      }
    }
    if (!refused.empty()) {
      return refuse(line_of(*mode_), "mode `" + text + "` has " + join_names(refused) +
                                         " bits; a " +
                                         (kind_ == EntryKind::template_ ? "template" : "secret") +
                                         " may only have read bits (0444)");
    }
    reading_.secret.mode = mode & kReadBits;
  }

  EntryKind kind_;
  const toml::table& table_;
  const std::filesystem::path& base_dir_;
  const Accounts& accounts_;
  const toml::node* content_ = nullptr;
  const toml::node* source_ = nullptr;
  const toml::node* file_ = nullptr;
  const toml::node* owner_ = nullptr;
  const toml::node* group_ = nullptr;
  const toml::node* mode_ = nullptr;
  SecretReading reading_;
};

}  // namespace

SecretReading read_secret(const std::string& name, const toml::table& table,
                          const std::filesystem::path& base_dir, const Accounts& accounts) {
  return SecretReader(EntryKind::secret, name, table, base_dir, accounts).read();
}

TemplateReading read_template(const std::string& name, const toml::table& table,
                              const std::filesystem::path& base_dir, const Accounts& accounts) {
  SecretReading reading =
      SecretReader(EntryKind::template_, name, table, base_dir, accounts).read();
  Secret& secret = reading.secret;
  TemplateReading result;
  Template& entry = result.template_;
  entry.name = std::move(secret.name);
  entry.text = std::move(reading.content);
  entry.file = std::move(secret.file);
  entry.uid = secret.uid;
  entry.gid = secret.gid;
  entry.mode = secret.mode;
  entry.line = secret.line;
  entry.units = std::move(secret.units);
  result.problems = std::move(reading.problems);
  return result;
}

std::string_view type_phrase(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

int line_of(const toml::node& node) {
  return static_cast<int>(node.source().begin.line);
}

int line_of(const toml::key& key) {
  return static_cast<int>(key.source().begin.line);
}

}  // namespace secretfs::manifest
