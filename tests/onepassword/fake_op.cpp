// A stand-in for the 1Password CLI `op`, for tests: fake_op <data-dir> <op arguments...>.
// Tests install `#!/bin/sh\nexec /abs/fake_op /abs/data-dir "$@"` as their `op`.
//
// The data folder holds account.json (the token and the vaults, each item as `op item get
// --format json` prints it, files with a fake-only "content_base64"), an optional `mode` file
// (rate_limited, down, hang or revoked) and calls.jsonl, where every run appends one line
// before it prints anything: {"time", "argv", "env" (sorted names), "stdin" ("devnull" or
// "other"), "config_dir_mode", "pid"}.
//
// Parts of the `op` contract this encodes. [doc] = 1Password's documentation; [seen] = output
// quoted from real runs in third-party code or threads (op-js, CI actions), not documented;
// [3p] = a third-party report not checked against an official page; [ours] = invented here
// because no source gives it. Check all but [doc] against a real account.
//  1. [doc] Secret references op://<vault>/<item>[/<section>]/<field>[?query]; vault, item,
//     section and field match by name case-insensitively or by ID; a file attachment's name
//     takes the field's place.
//  2. [doc] The token comes from OP_SERVICE_ACCOUNT_TOKEN.
//  3. [doc] `op read [-n|--no-newline] <ref>` prints the value and a newline, or with -n the
//     value alone. [ours] A file attachment's bytes come out exactly, binary included.
//  4. [doc] Queries ?attribute=otp|type|id|value|purpose on fields,
//     ?attribute=content|size|id|name on files, ?ssh-format=openssh. [ours] The OTP code is
//     six digits derived from the stored secret (FNV-1a), not TOTP; ssh-format returns the
//     value unchanged; an unknown query is an error.
//  5. [seen] `op item get <item> --vault <vault> --format json` prints the item: id, title,
//     version, vault{id,name}, category, created_at, updated_at, sections[{id,label}],
//     fields[{id,type,purpose?,label,value,reference,section?{id,label}}],
//     files[{id,name,size,content_path,section?}]. [ours] An empty field has no "value"; the
//     keys print in the order account.json has them.
//  6. [seen] Every failure: exit status 1 and "[ERROR] YYYY/MM/DD HH:MM:SS <message>" on
//     stderr (the pattern op-js parses).
//  7. [seen] Missing item: "<item>" isn't an item in the "<vault>" vault. Specify the item
//     with its UUID, name, or domain.  `op read` prefixes "could not read secret '<ref>': ".
//  8. [seen] Ambiguous item: More than one item matches "<item>".
//  9. [seen] Bad token: error initializing client: Validation: (failed to
//     session.DecodeSACredentials), Server: (failed to DecodeSACredentials), failed to
//     parseToken, format is invalid   (seen through a CI action; its prefix may vary).
// 10. [3p] Rate limit: (429) Too Many Requests: You've reached the maximum number of requests
//     ([ours]: the words after "reached").
// 11. [3p] Too many '/': too many '/': secret references should match
//     op://<vault>/<item>[/<section>]/<field>   ([ours]: "too few '/'" likewise).
// 12. [ours] Missing vault: "<vault>" isn't a vault in this account. Specify the vault with its
//     UUID or name.  Ambiguous vault or field: More than one vault|field matches "<name>".
//     Missing item without --vault: "<item>" isn't an item. Specify the item with its UUID,
//     name, or domain.
// 13. [ours] Missing field: could not read secret '<ref>': item '<vault>/<item>' does not have
//     a field '<field>'.
// 14. [ours] Revoked token (mode revoked): error initializing client: (401) Unauthorized:
//     the service account has been deleted, expired or revoked.
// 15. [ours] Network down (mode down): error initializing client: Post
//     "https://my.1password.com/api/v2/auth/start": dial tcp: lookup my.1password.com: no such
//     host
// 16. [ours] `op whoami` prints {"url": "https://fake.1password.com", "user_type":
//     "SERVICE_ACCOUNT"}; any other command: unknown command "<command>" for "op".
// 17. [ours] A mode acts before the token is checked; the token is checked before the command.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "age/base64.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using json =
    nlohmann::ordered_json;  // items print in the order the test wrote them, as `op` keeps its own

constexpr std::string_view kErrorPrefix = "[ERROR] 2026/12/04 12:00:00 ";
constexpr int kFailure = 1;
constexpr auto kHang = std::chrono::hours(1);
constexpr std::uint32_t kOtpModulus = 1'000'000;

[[noreturn]] void fail(const std::string& message) {
  std::cerr << kErrorPrefix << message << std::endl;
  std::exit(kFailure);
}

std::string lower(std::string_view text) {
  std::string result(text);
  std::transform(result.begin(), result.end(), result.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return result;
}

std::string text_of(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// ---- calls.jsonl --------------------------------------------------------------------------

std::vector<std::string> environment_names() {
  std::vector<std::string> names;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    names.emplace_back(text.substr(0, text.find('=')));
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string stdin_kind() {
  struct stat in {};
  struct stat null {};
  if (::fstat(STDIN_FILENO, &in) != 0 || ::stat("/dev/null", &null) != 0) {
    return "closed";
  }
  return in.st_dev == null.st_dev && in.st_ino == null.st_ino ? "devnull" : "other";
}

json config_dir_mode() {
  const char* folder = std::getenv("OP_CONFIG_DIR");
  struct stat status {};
  if (folder == nullptr || ::stat(folder, &status) != 0) {
    return nullptr;
  }
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(status.st_mode & 07777));
  return text;
}

// One line written with one write(2), so that concurrent runs never interleave their lines.
void record_call(const fs::path& data, const std::vector<std::string>& arguments) {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const json call = {
      {"time", std::chrono::duration<double>(now).count()},
      {"argv", arguments},
      {"env", environment_names()},
      {"stdin", stdin_kind()},
      {"config_dir_mode", config_dir_mode()},
      {"pid", ::getpid()},
  };
  const std::string line = call.dump() + "\n";
  std::FILE* file = std::fopen((data / "calls.jsonl").c_str(), "a");
  if (file == nullptr) {
    fail("fake op: cannot append to calls.jsonl");
  }
  ::setvbuf(file, nullptr, _IOFBF, line.size() + 1);
  std::fwrite(line.data(), 1, line.size(), file);
  std::fclose(file);
}

// ---- account ------------------------------------------------------------------------------

void apply_mode(const fs::path& data) {
  std::string mode = text_of(data / "mode");
  mode.erase(std::remove_if(mode.begin(), mode.end(), ::isspace), mode.end());
  if (mode == "hang") {
    std::this_thread::sleep_for(kHang);
  } else if (mode == "rate_limited") {
    fail("(429) Too Many Requests: You've reached the maximum number of requests");
  } else if (mode == "down") {
    fail(
        "error initializing client: Post \"https://my.1password.com/api/v2/auth/start\": dial "
        "tcp: lookup my.1password.com: no such host");
  } else if (mode == "revoked") {
    fail(
        "error initializing client: (401) Unauthorized: the service account has been deleted, "
        "expired or revoked");
  }
}

void check_token(const json& account) {
  const char* token = std::getenv("OP_SERVICE_ACCOUNT_TOKEN");
  if (token == nullptr || account.value("token", "") != token) {
    fail(
        "error initializing client: Validation: (failed to session.DecodeSACredentials), "
        "Server: (failed to DecodeSACredentials), failed to parseToken, format is invalid");
  }
}

bool named(const json& entry, const char* label_key, std::string_view wanted) {
  return (entry.contains(label_key) &&
          lower(entry[label_key].get<std::string>()) == lower(wanted)) ||
         (entry.contains("id") && entry["id"].get<std::string>() == wanted);
}

std::vector<const json*> matching(const json& list, const char* label_key,
                                  std::string_view wanted) {
  std::vector<const json*> found;
  for (const json& entry : list) {
    if (named(entry, label_key, wanted)) {
      found.push_back(&entry);
    }
  }
  return found;
}

// The one vault called `name`; `context` prefixes errors ("could not read secret '...': ").
const json& find_vault(const json& account, const std::string& name, const std::string& context) {
  const auto vaults = matching(account.at("vaults"), "name", name);
  if (vaults.empty()) {
    fail(context + "\"" + name +
         "\" isn't a vault in this account. Specify the vault with its "
         "UUID or name.");
  }
  if (vaults.size() > 1) {
    fail(context + "More than one vault matches \"" + name + "\"");
  }
  return *vaults.front();
}

const json& find_item(const json& vault, const std::string& vault_name, const std::string& name,
                      const std::string& context) {
  const auto items = matching(vault.at("items"), "title", name);
  if (items.empty()) {
    fail(context + "\"" + name + "\" isn't an item in the \"" + vault_name +
         "\" vault. Specify the item with its UUID, name, or domain.");
  }
  if (items.size() > 1) {
    fail(context + "More than one item matches \"" + name + "\"");
  }
  return *items.front();
}

// ---- item get -----------------------------------------------------------------------------

std::optional<std::string> option(const std::vector<std::string>& arguments,
                                  const std::string& name) {
  for (std::size_t i = 0; i + 1 < arguments.size(); ++i) {
    if (arguments[i] == name) {
      return arguments[i + 1];
    }
  }
  return std::nullopt;
}

// Without --vault, `op` looks in every vault the account can read.
const json& find_item_anywhere(const json& account, const std::string& name) {
  std::vector<const json*> items;
  for (const json& vault : account.at("vaults")) {
    const auto found = matching(vault.at("items"), "title", name);
    items.insert(items.end(), found.begin(), found.end());
  }
  if (items.empty()) {
    fail("\"" + name + "\" isn't an item. Specify the item with its UUID, name, or domain.");
  }
  if (items.size() > 1) {
    fail("More than one item matches \"" + name + "\"");
  }
  return *items.front();
}

void item_get(const json& account, const std::vector<std::string>& arguments) {
  if (arguments.size() < 3 || arguments[2].starts_with("-")) {
    fail("expected an item: op item get <item> [--vault <vault>] --format json");
  }
  if (option(arguments, "--format") != "json") {
    fail("fake op: only --format json is implemented");
  }
  const std::optional<std::string> vault_name = option(arguments, "--vault");
  json item = vault_name
                  ? find_item(find_vault(account, *vault_name, ""), *vault_name, arguments[2], "")
                  : find_item_anywhere(account, arguments[2]);
  if (item.contains("files")) {
    for (json& file : item["files"]) {
      file.erase("content_base64");  // the fake's own key; `op` prints no file contents
    }
  }
  std::cout << item.dump(2) << "\n";
}

// ---- read ---------------------------------------------------------------------------------

struct Parsed {
  std::string vault, item, section, field, query;
};

Parsed parse(const std::string& reference) {
  const std::string form = "op://<vault>/<item>[/<section>]/<field>";
  if (!reference.starts_with("op://")) {
    fail("invalid secret reference: secret references should match " + form);
  }
  std::string path = reference.substr(5);
  Parsed parsed;
  if (const auto mark = path.find('?'); mark != std::string::npos) {
    parsed.query = path.substr(mark + 1);
    path.resize(mark);
  }
  std::vector<std::string> segments;
  std::stringstream stream(path);
  for (std::string segment; std::getline(stream, segment, '/');) {
    segments.push_back(segment);
  }
  if (segments.size() > 4) {
    fail("too many '/': secret references should match " + form);
  }
  if (segments.size() < 3) {
    fail("too few '/': secret references should match " + form);
  }
  parsed.vault = segments[0];
  parsed.item = segments[1];
  parsed.section = segments.size() == 4 ? segments[2] : "";
  parsed.field = segments.back();
  return parsed;
}

bool in_section(const json& entry, const std::string& section) {
  return section.empty() ||
         (entry.contains("section") && named(entry["section"], "label", section));
}

std::vector<const json*> matching_in(const json& item, const char* list, const char* label_key,
                                     const Parsed& parsed) {
  static const json kNone = json::array();
  std::vector<const json*> found;
  const json& entries = item.contains(list) ? item[list] : kNone;  // a reference, not a copy
  for (const json* entry : matching(entries, label_key, parsed.field)) {
    if (in_section(*entry, parsed.section)) {
      found.push_back(entry);
    }
  }
  return found;
}

std::string one_time_code(const std::string& secret) {
  std::uint32_t hash = 2166136261u;  // FNV-1a: stable, so tests can compute the code too
  for (const unsigned char c : secret) {
    hash = (hash ^ c) * 16777619u;
  }
  char code[8];
  std::snprintf(code, sizeof code, "%06u", hash % kOtpModulus);
  return code;
}

std::string field_value(const json& field, const std::string& query, const std::string& context) {
  const std::string value = field.value("value", "");
  if (query.empty() || query == "attribute=value" || query == "ssh-format=openssh") {
    return value;
  }
  if (query == "attribute=otp" || query == "attribute=totp") {
    if (field.value("type", "") != "OTP") {
      fail(context + "field '" + field.value("label", "") + "' is not a one-time password field");
    }
    return one_time_code(value);
  }
  for (const char* attribute : {"type", "id", "purpose"}) {
    if (query == std::string("attribute=") + attribute) {
      return field.value(attribute, "");
    }
  }
  fail(context + "unknown query '" + query + "'");
}

std::string file_value(const json& file, const std::string& query, const std::string& context) {
  if (query.empty() || query == "attribute=content") {
    std::vector<std::uint8_t> bytes;
    if (!secretfs::age::decode_base64_padded(file.value("content_base64", ""), bytes)) {
      fail("fake op: content_base64 of file '" + file.value("name", "") + "' is not base64");
    }
    return {bytes.begin(), bytes.end()};
  }
  if (query == "attribute=size") {
    return std::to_string(file.value("size", 0));
  }
  for (const char* attribute : {"id", "name"}) {
    if (query == std::string("attribute=") + attribute) {
      return file.value(attribute, "");
    }
  }
  fail(context + "unknown query '" + query + "'");
}

void read(const json& account, const std::vector<std::string>& arguments) {
  bool newline = true;
  std::string reference;
  for (std::size_t i = 1; i < arguments.size(); ++i) {
    if (arguments[i] == "-n" || arguments[i] == "--no-newline") {
      newline = false;
    } else {
      reference = arguments[i];
    }
  }
  const Parsed parsed = parse(reference);
  const std::string context = "could not read secret '" + reference + "': ";
  const json& vault = find_vault(account, parsed.vault, context);
  const json& item = find_item(vault, parsed.vault, parsed.item, context);

  std::string value;
  const auto fields = matching_in(item, "fields", "label", parsed);
  const auto files = matching_in(item, "files", "name", parsed);
  if (fields.size() > 1 || (fields.empty() && files.size() > 1)) {
    fail(context + "More than one field matches \"" + parsed.field + "\"");
  } else if (fields.size() == 1) {
    value = field_value(*fields.front(), parsed.query, context);
  } else if (files.size() == 1) {
    value = file_value(*files.front(), parsed.query, context);
  } else {
    fail(context + "item '" + parsed.vault + "/" + parsed.item + "' does not have a field '" +
         parsed.field + "'");
  }
  std::cout << value << (newline ? "\n" : "") << std::flush;
}

}  // namespace

int main(int argc, char* argv[]) {
  if (argc < 2) {
    std::cerr << "usage: fake_op <data-dir> <op arguments...>\n";
    return 2;
  }
  const fs::path data = argv[1];
  const std::vector<std::string> arguments(argv + 2, argv + argc);
  record_call(data, arguments);
  apply_mode(data);

  const json account = json::parse(text_of(data / "account.json"));
  check_token(account);
  const std::string command = arguments.empty() ? "" : arguments[0];
  if (command == "item" && arguments.size() > 1 && arguments[1] == "get") {
    item_get(account, arguments);
  } else if (command == "read") {
    read(account, arguments);
  } else if (command == "whoami") {
    std::cout
        << json{{"url", "https://fake.1password.com"}, {"user_type", "SERVICE_ACCOUNT"}}.dump()
        << "\n";
  } else {
    fail("unknown command \"" + command + "\" for \"op\"");
  }
  return 0;
}
