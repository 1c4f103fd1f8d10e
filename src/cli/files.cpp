// edit, view, rekey and rotate: managing the age files of a secrets repository, with the
// recipients of each file taken from the nearest recipients.toml.
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "cli/commands.hpp"
#include "cli/identities.hpp"
#include "cli/io.hpp"
#include "cli/scratch.hpp"
#include "manifest/names.hpp"
#include "rules/rules.hpp"
#include "rules/sealing.hpp"
#include "secretfs/age/armor.hpp"
#include "secretfs/counted.hpp"
#include "secretfs/manifest.hpp"
#include "secretfs/onepassword.hpp"

namespace secretfs::cli {

namespace {

// A path as it may be printed: a repository is shared, and a file name holding terminal
// escape sequences must not reach the admin's terminal as they are.
std::string shown(const std::filesystem::path& path) {
  return manifest::printable_name(path.string());
}

constexpr const char* kEditorVariable = "EDITOR";
constexpr const char* kDefaultEditor = "vi";
constexpr std::string_view kAgeSuffix = ".age";
constexpr const char* kUnnamedScratch = "secret";
constexpr mode_t kNewFileMode = 0600;
constexpr mode_t kPermissionBits = 07777;
constexpr std::size_t kDefaultLength = 32;
constexpr std::size_t kMaxLength = 4096;
constexpr const char* kDefaultCharset = "A-Za-z0-9";

// ---- shared steps --------------------------------------------------------------------------

std::vector<std::string> recipients_for(const std::filesystem::path& file,
                                        const rules::Rules& rules) {
  rules::print_warnings_once(rules);
  return rules.recipients_of(rules.rule_for(file));
}

std::vector<std::string> recipients_for(const std::filesystem::path& file,
                                        const std::optional<std::string>& rules_path) {
  return recipients_for(file, rules::rules_for_file(file, rules_path));
}

// secretfs never writes through a symbolic link nor replaces one with a regular file: the link
// may point outside the repository, and the rules were matched against the link's own path.
// edit, rekey and rotate all refuse one and name its target.
void refuse_link(const std::filesystem::path& file) {
  std::error_code error;
  if (std::filesystem::is_symlink(file, error)) {
    throw Failure(file.string() + ": is a symbolic link to " +
                  std::filesystem::read_symlink(file, error).string() +
                  "; secretfs does not write through links: name the file itself");
  }
}

// The file's bytes as they are now (ciphertext), or nullopt when there is no file.
std::optional<std::vector<std::uint8_t>> current_bytes(const std::filesystem::path& file) {
  if (!std::filesystem::exists(file)) {
    return std::nullopt;
  }
  return age::read_file(file);
}

// Names the file in front of an age failure: "db.age: no match: …".
[[noreturn]] void fail_decrypt(const std::filesystem::path& file, const age::Error& error) {
  throw Failure(file.string() + ": " + std::string(age::to_string(error.kind())) + ": " +
                error.what());
}

rules::OpenedFile open_bytes(const std::filesystem::path& file, std::span<const std::uint8_t> bytes,
                             const age::Identities& identities,
                             const std::vector<std::string>& recipients) {
  try {
    return rules::open_sealed(bytes, age::pointers(identities), recipients);
  } catch (const age::Error& error) {
    fail_decrypt(file, error);
  }
}

rules::OpenedFile open_file(const std::filesystem::path& file, const age::Identities& identities,
                            const std::vector<std::string>& recipients) {
  return open_bytes(file, age::read_file(file), identities, recipients);
}

// The new file takes the old one's owner, group and mode, so that an edit run as root does not
// hand a repository file to root. A file that did not exist gets the caller's and mode 0600.
void copy_ownership(int fd, const std::optional<struct stat>& old, const std::string& name) {
  const mode_t mode = old ? (old->st_mode & kPermissionBits) : kNewFileMode;
  struct stat now {};
  if (old && ::fstat(fd, &now) == 0 && (now.st_uid != old->st_uid || now.st_gid != old->st_gid) &&
      ::fchown(fd, old->st_uid, old->st_gid) != 0) {
    throw Failure(name + ": cannot keep the owner uid " + std::to_string(old->st_uid) + ", gid " +
                  std::to_string(old->st_gid) + ": " + std::strerror(errno));
  }
  // After fchown, which clears set-id bits.
  if (::fchmod(fd, mode) != 0) {
    throw Failure(name + ": " + std::strerror(errno));
  }
}

// Readers (git, a running `secretfs activate`) see the old file or the new one, never half of
// one: a temporary file beside it, synced, then renamed over it. It holds ciphertext only.
void replace_file(const std::filesystem::path& file, std::span<const std::uint8_t> bytes) {
  refuse_link(file);
  std::optional<struct stat> old;
  if (struct stat status{}; ::lstat(file.c_str(), &status) == 0) {
    old = status;
  }
  const auto folder = std::filesystem::absolute(file).parent_path();
  std::string temporary = (folder / ("." + file.filename().string() + ".XXXXXX")).string();
  const int fd = ::mkstemp(temporary.data());
  if (fd < 0) {
    throw Failure(temporary + ": " + std::strerror(errno));
  }
  try {
    write_all(fd, bytes, temporary);
    copy_ownership(fd, old, file.string());
    if (::fsync(fd) != 0) {
      throw Failure(temporary + ": " + std::strerror(errno));
    }
  } catch (...) {
    ::close(fd);
    ::unlink(temporary.c_str());
    throw;
  }
  ::close(fd);
  if (::rename(temporary.c_str(), file.c_str()) != 0) {
    const int error = errno;
    ::unlink(temporary.c_str());
    throw Failure(file.string() + ": rename: " + std::strerror(error));
  }
  const int folder_fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (folder_fd >= 0) {
    ::fsync(folder_fd);
    ::close(folder_fd);
  }
}

bool same_bytes(const SecretBytes& a, const SecretBytes& b) {
  return a.size() == b.size() && (a.empty() || sodium_memcmp(a.data(), b.data(), a.size()) == 0);
}

// ---- edit ----------------------------------------------------------------------------------

struct EditOptions {
  std::string file;
  std::vector<std::string> identities;
  std::optional<std::string> rules;
};

// The editor sees the secret's own name without ".age", so that it can pick a syntax.
std::string scratch_name(const std::filesystem::path& file) {
  std::string name = file.filename().string();
  if (name.ends_with(kAgeSuffix)) {
    name.resize(name.size() - kAgeSuffix.size());
  }
  return name.empty() ? kUnnamedScratch : name;
}

std::string editor_command() {
  const char* editor = std::getenv(kEditorVariable);
  return editor != nullptr && *editor ? editor : kDefaultEditor;
}

SecretBytes edit_in_scratch(const std::filesystem::path& file, const SecretBytes& original,
                            const std::string& unchanged) {
  const ScratchFile scratch(scratch_name(file), original.span());
  const std::string editor = editor_command();
  if (const int status = scratch.edit(editor); status != 0) {
    throw Failure("editor `" + editor + "` exited with status " + std::to_string(status) + "; " +
                  unchanged);
  }
  try {
    return scratch.read();
  } catch (const Failure& error) {
    throw Failure(std::string(error.what()) + "; " + unchanged);
  }
}

// Another edit, a rekey or a `git pull` may have rewritten the file while the editor was open;
// writing over it would drop that change without a word.
void refuse_lost_update(const std::filesystem::path& file,
                        const std::optional<std::vector<std::uint8_t>>& before) {
  if (current_bytes(file) != before) {
    throw Failure(file.string() + (before ? " changed" : " was created") +
                  " while the editor was open; your changes were not saved, so as not to "
                  "overwrite that change. Edit it again to start from what is there now");
  }
}

int edit(const EditOptions& options) {
  const std::filesystem::path file = options.file;
  refuse_link(file);
  const auto recipients = recipients_for(file, options.rules);
  const auto before = current_bytes(file);
  SecretBytes original;
  auto output = age::Output::binary;
  if (before) {
    auto opened = open_bytes(file, *before, caller_identities(options.identities), recipients);
    original = std::move(opened.plaintext);
    output = opened.output;
  }

  const SecretBytes edited = edit_in_scratch(
      file, original, file.string() + (before ? " is unchanged" : " was not created"));
  if (same_bytes(original, edited)) {
    std::fprintf(stderr, "%s: %s\n", shown(file).c_str(),
                 before ? "unchanged" : "not created (the new file was left empty)");
    return 0;
  }
  refuse_lost_update(file, before);
  try {
    replace_file(file, rules::seal(edited.span(), recipients, output));
  } catch (const std::exception& error) {
    throw Failure(std::string(error.what()) + "; your changes were not saved");
  }
  std::fprintf(stderr, "%s: encrypted to %s\n", shown(file).c_str(),
               counted(recipients.size(), "recipient").c_str());
  return 0;
}

// ---- view ----------------------------------------------------------------------------------

struct ViewOptions {
  std::string file;
  std::vector<std::string> identities;
  bool binary = false;
};

// One UTF-8 sequence: the code point, and how many bytes it took (0 when the bytes are not
// valid UTF-8: a stray continuation byte, a cut sequence, an overlong form, a surrogate).
struct CodePoint {
  std::uint32_t value = 0;
  std::size_t length = 0;
};

// The lead byte of a sequence gives its length: 0xxxxxxx, 110xxxxx, 1110xxxx or 11110xxx; the
// bits after the tag start the code point, and each continuation byte 10xxxxxx adds six more.
struct LeadForm {
  std::uint8_t mask;
  std::uint8_t tag;
  std::size_t length;
};
constexpr LeadForm kLeadForms[] = {
    {0x80, 0x00, 1}, {0xe0, 0xc0, 2}, {0xf0, 0xe0, 3}, {0xf8, 0xf0, 4}};
constexpr std::uint8_t kContinuationMask = 0xc0;
constexpr std::uint8_t kContinuationTag = 0x80;
constexpr unsigned kContinuationBits = 6;
// Below these a sequence of that length is an overlong form of a shorter one.
constexpr std::uint32_t kSmallestOfLength[] = {0, 0, 0x80, 0x800, 0x10000};
constexpr std::uint32_t kLargestCodePoint = 0x10ffff;
constexpr std::uint32_t kSurrogateFirst = 0xd800;
constexpr std::uint32_t kSurrogateLast = 0xdfff;

CodePoint decode_utf8(std::span<const std::uint8_t> bytes) {
  const auto* form = std::find_if(std::begin(kLeadForms), std::end(kLeadForms),
                                  [&](const LeadForm& f) { return (bytes[0] & f.mask) == f.tag; });
  if (form == std::end(kLeadForms) || bytes.size() < form->length) {
    return {};
  }
  std::uint32_t value = bytes[0] & static_cast<std::uint8_t>(~form->mask);
  for (std::size_t i = 1; i < form->length; ++i) {
    if ((bytes[i] & kContinuationMask) != kContinuationTag) {
      return {};
    }
    value =
        (value << kContinuationBits) | (bytes[i] & static_cast<std::uint8_t>(~kContinuationMask));
  }
  const bool valid = value >= kSmallestOfLength[form->length] && value <= kLargestCodePoint &&
                     (value < kSurrogateFirst || value > kSurrogateLast);
  return valid ? CodePoint{value, form->length} : CodePoint{};
}

// Characters that steer a terminal rather than show: C0 controls other than tab and newline,
// DEL, the C1 controls (U+009B is an escape sequence by itself), and the bidirectional
// overrides and isolates, which make text display in an order other than the one it has.
bool steers_terminal(std::uint32_t c) {
  const bool c0 = c < 0x20 && c != '\t' && c != '\n';
  const bool c1 = c >= 0x7f && c <= 0x9f;
  const bool bidi = (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
  return c0 || c1 || bidi;
}

// Content that could do more than print text on a terminal counts as binary: invalid UTF-8,
// and the characters above. A '\r' is allowed only as part of "\r\n": alone it moves the
// cursor back and lets a later part of a line hide an earlier one.
bool looks_binary(const SecretBytes& plaintext) {
  const auto bytes = plaintext.span();
  for (std::size_t i = 0; i < bytes.size();) {
    if (bytes[i] == '\r' && i + 1 < bytes.size() && bytes[i + 1] == '\n') {
      i += 2;
      continue;
    }
    const CodePoint point = decode_utf8(bytes.subspan(i));
    if (point.length == 0 || steers_terminal(point.value)) {
      return true;
    }
    i += point.length;
  }
  return false;
}

int view(const ViewOptions& options) {
  const auto identities = caller_identities(options.identities);
  SecretBytes plaintext;
  try {
    plaintext = age::decrypt(age::read_file(options.file), age::pointers(identities));
  } catch (const age::Error& error) {
    fail_decrypt(options.file, error);
  }
  if (!options.binary && output_is_terminal(std::nullopt) && looks_binary(plaintext)) {
    throw Failure(options.file +
                  ": holds binary content (control characters, bidirectional overrides or "
                  "invalid UTF-8); refusing to write it to a terminal (use --binary, or "
                  "redirect the output)");
  }
  write_output(std::nullopt, plaintext.span());
  return 0;
}

// ---- rekey ---------------------------------------------------------------------------------

struct RekeyOptions {
  std::vector<std::string> files;
  std::vector<std::string> identities;
  std::optional<std::string> rules;
};

struct Planned {
  std::filesystem::path file;
  std::vector<std::string> recipients;
  rules::OpenedFile opened;
};

std::vector<std::filesystem::path> files_to_rekey(const RekeyOptions& options) {
  if (!options.files.empty()) {
    return {options.files.begin(), options.files.end()};
  }
  std::optional<std::filesystem::path> rules_path = options.rules;
  if (!rules_path) {
    rules_path = rules::find_rules_file(std::filesystem::current_path());
  }
  if (!rules_path) {
    throw Failure("no " + std::string(rules::kRulesFileName) +
                  " here or above; give --rules FILE or the files to rekey");
  }
  const auto rules = rules::Rules::load(*rules_path);
  rules::print_warnings_once(rules);
  // A broad glob such as `**` also matches the rules file itself and a README; only age files
  // are secrets.
  std::vector<std::filesystem::path> files;
  for (auto& file : rules.matching_files()) {
    if (file.native().ends_with(kAgeSuffix)) {
      files.push_back(std::move(file));
    }
  }
  return files;
}

Planned plan(const std::filesystem::path& file, const RekeyOptions& options,
             const age::Identities& identities) {
  refuse_link(file);
  auto recipients = recipients_for(file, options.rules);
  auto opened = open_file(file, identities, recipients);
  return Planned{file, std::move(recipients), std::move(opened)};
}

// Every file is decrypted before any is written: one file nobody here can open stops the whole
// run, so a half-rekeyed repository never happens because of a missing key.
int rekey(const RekeyOptions& options) {
  const auto files = files_to_rekey(options);
  const auto identities = caller_identities(options.identities);
  std::vector<Planned> plans;
  std::vector<std::string> problems;
  for (const auto& file : files) {
    try {
      plans.push_back(plan(file, options, identities));
    } catch (const std::runtime_error& error) {
      problems.emplace_back(error.what());
    }
  }
  if (!problems.empty()) {
    for (const auto& problem : problems) {
      std::fprintf(stderr, "error: %s\n", problem.c_str());
    }
    throw Failure(std::to_string(problems.size()) + " of " + counted(files.size(), "file") +
                  " cannot be rekeyed; nothing was rewritten");
  }

  std::size_t rewritten = 0;
  for (const auto& planned : plans) {
    if (planned.opened.recipients == rules::RecipientsState::match) {
      std::printf("unchanged %s\n", shown(planned.file).c_str());
      continue;
    }
    replace_file(planned.file, rules::seal(planned.opened.plaintext.span(), planned.recipients,
                                           planned.opened.output));
    std::printf("rekeyed   %s (%s)\n", shown(planned.file).c_str(),
                counted(planned.recipients.size(), "recipient").c_str());
    ++rewritten;
  }
  std::printf("%s: %zu rekeyed, %zu unchanged\n", counted(plans.size(), "file").c_str(), rewritten,
              plans.size() - rewritten);
  return 0;
}

// ---- rotate --------------------------------------------------------------------------------

struct RotateOptions {
  std::string file;
  bool generate = false;
  std::size_t length = kDefaultLength;
  std::string charset = kDefaultCharset;
  std::optional<std::string> rules;
  std::optional<std::string> manifest;
};

// "A-Za-z0-9_" -> the 63 characters; a '-' first or last stands for itself.
std::string expand_charset(const std::string& spec) {
  std::string characters;
  for (std::size_t i = 0; i < spec.size(); ++i) {
    if (i + 2 < spec.size() && spec[i + 1] == '-') {
      if (spec[i] > spec[i + 2]) {
        throw Failure("--charset: range " + spec.substr(i, 3) + " runs backwards");
      }
      for (char c = spec[i]; c <= spec[i + 2]; ++c) {
        characters += c;
      }
      i += 2;
    } else {
      characters += spec[i];
    }
  }
  return characters;
}

// Each character must appear once and be printable ASCII: a repeated one would be drawn more
// often than the others, and a control character could not be typed back.
std::string checked_charset(const std::string& spec) {
  const std::string characters = expand_charset(spec);
  std::set<char> seen;
  for (const char c : characters) {
    if (c < '!' || c > '~') {
      throw Failure("--charset: only printable ASCII characters other than space are allowed");
    }
    if (!seen.insert(c).second) {
      throw Failure(std::string("--charset: `") + c + "` appears more than once");
    }
  }
  if (characters.size() < 2) {
    throw Failure("--charset: needs at least 2 characters");
  }
  return characters;
}

// randombytes_uniform draws without modulo bias, so every character is equally likely.
SecretBytes generate_value(std::size_t length, const std::string& charset) {
  if (length == 0 || length > kMaxLength) {
    throw Failure("--length: must be between 1 and " + std::to_string(kMaxLength));
  }
  const std::string characters = checked_charset(charset);
  SecretBytes value(length);
  for (std::size_t i = 0; i < length; ++i) {
    value.data()[i] = static_cast<std::uint8_t>(
        characters[randombytes_uniform(static_cast<std::uint32_t>(characters.size()))]);
  }
  return value;
}

age::Output form_of(const std::filesystem::path& file) {
  if (!std::filesystem::exists(file)) {
    return age::Output::binary;
  }
  return age::is_armored(age::read_file(file)) ? age::Output::armored : age::Output::binary;
}

void list_users(const std::filesystem::path& manifest_path, const std::filesystem::path& file) {
  const auto manifest = manifest::load(manifest_path);
  const auto target = std::filesystem::weakly_canonical(std::filesystem::absolute(file));
  std::size_t users = 0;
  for (const auto& secret : manifest.secrets) {
    if (std::filesystem::weakly_canonical(secret.file) == target) {
      std::printf("used by secret `%s` (%s:%d)\n", shown(secret.name).c_str(),
                  shown(manifest_path).c_str(), secret.line);
      ++users;
    }
  }
  if (users == 0) {
    std::printf("no secret in %s uses %s\n", shown(manifest_path).c_str(), shown(file).c_str());
    return;
  }
  std::printf("serve the new value where this manifest is used: secretfs activate --manifest %s\n",
              shown(manifest_path).c_str());
}

// A value typed at a terminal would be echoed on the screen (and kept in its scrollback).
SecretBytes read_value(const std::filesystem::path& file) {
  if (::isatty(STDIN_FILENO) == 1) {
    throw Failure("standard input is a terminal, which would show the value as you type it; " +
                  file.string() +
                  " is unchanged. Pipe the value in (printf '%s' \"$VALUE\" | secretfs rotate " +
                  file.string() + ") or use --generate");
  }
  return read_input(std::nullopt);
}

int rotate(const RotateOptions& options) {
  const std::filesystem::path file = options.file;
  refuse_link(file);
  const auto recipients = recipients_for(file, options.rules);
  const SecretBytes value =
      options.generate ? generate_value(options.length, options.charset) : read_value(file);
  if (value.empty()) {
    throw Failure("the new value is empty; " + file.string() + " is unchanged");
  }
  replace_file(file, rules::seal(value.span(), recipients, form_of(file)));
  std::printf("%s: new value encrypted to %s\n", shown(file).c_str(),
              counted(recipients.size(), "recipient").c_str());
  if (options.manifest) {
    list_users(*options.manifest, file);
  }
  return 0;
}

// ---- sync: 1Password values into secret files ---------------------------------------------

struct SyncOptions {
  std::vector<std::string> arguments;  // SECRET... with --manifest; REFERENCE FILE without
  std::optional<std::string> manifest;
  std::optional<std::string> token_file;
  std::optional<std::string> op;
  std::vector<std::string> identities;
  std::optional<std::string> rules;
};

struct SyncTarget {
  std::string label;  // the secret's name, or the reference when given alone
  std::string reference;
  std::filesystem::path file;

  // The target and its reference, for messages, naming the reference once.
  std::string described() const {
    return label == reference ? reference : label + ": source " + reference;
  }
};

// Owners and groups do not matter to sync, and a host's users are rarely an admin's: any name
// is taken, so that a secret is never left out because its owner lives elsewhere.
class AnyAccounts final : public manifest::Accounts {
 public:
  std::optional<User> user_by_name(const std::string&) const override { return User{0, 0}; }
  std::optional<User> user_by_uid(uid_t uid) const override { return User{uid, 0}; }
  std::optional<gid_t> group_by_name(const std::string&) const override { return 0; }
};

// A secret the manifest refuses for a reason of its own (a bad name, a bad reference) cannot
// be synced either; it is named rather than skipped.
void report_refused(const manifest::Manifest& manifest, const std::vector<std::string>& names) {
  for (const auto& problem : manifest.problems) {
    if (problem.kind == manifest::EntryKind::secret &&
        (names.empty() || std::find(names.begin(), names.end(), problem.secret) != names.end())) {
      throw Failure(problem.message + "; nothing was synced");
    }
  }
}

// The secrets of the manifest that have both `source` and `file`, or those named.
std::vector<SyncTarget> targets_of(const manifest::Manifest& manifest,
                                   const std::vector<std::string>& names) {
  std::vector<SyncTarget> targets;
  for (const auto& secret : manifest.secrets) {
    const bool named = names.empty() || std::find(names.begin(), names.end(), secret.name) !=
                                            names.end();
    if (named && !secret.source.empty() && !secret.file.empty()) {
      targets.push_back({"secret `" + shown(secret.name) + "`", secret.source, secret.file});
    }
  }
  for (const auto& name : names) {
    if (std::none_of(targets.begin(), targets.end(), [&](const SyncTarget& target) {
          return target.label == "secret `" + shown(name) + "`";
        })) {
      throw Failure("secret `" + shown(name) + "`: not in " + manifest.path.string() +
                    " with both `source` and `file`");
    }
  }
  return targets;
}

// Writes `value` to the target's file unless the file already holds it for the rule's
// recipients; returns what was done, for the report.
std::string sync_file(const SyncTarget& target, const SecretBytes& value,
                      const age::Identities& identities, const std::optional<std::string>& rules,
                      std::uint64_t max_size) {
  refuse_link(target.file);
  const auto recipients = recipients_for(target.file, rules);
  if (const auto bytes = current_bytes(target.file)) {
    const rules::OpenedFile opened = open_bytes(target.file, *bytes, identities, recipients);
    const bool same_value = opened.plaintext.size() == value.size() &&
                            (value.empty() || sodium_memcmp(opened.plaintext.data(), value.data(),
                                                            value.size()) == 0);
    if (same_value && opened.recipients == rules::RecipientsState::match) {
      return "unchanged";
    }
  }
  const auto sealed = rules::seal(value.span(), recipients, form_of(target.file));
  // The host refuses a file over its max_secret_size; better not to write one.
  if (sealed.size() > max_size) {
    throw Failure("its encrypted file would be " + std::to_string(sealed.size()) +
                  " bytes, more than max_secret_size (" + std::to_string(max_size) + " bytes)");
  }
  replace_file(target.file, sealed);
  return "new value encrypted to " + counted(recipients.size(), "recipient");
}

int sync(const SyncOptions& options) {
  std::vector<SyncTarget> targets;
  manifest::OnePassword settings;
  std::uint64_t max_size = manifest::kDefaultMaxSecretSize;
  if (options.manifest) {
    const AnyAccounts accounts;
    const auto manifest = manifest::load(*options.manifest, accounts);
    report_refused(manifest, options.arguments);
    settings = manifest.onepassword;
    max_size = manifest.max_secret_size;
    targets = targets_of(manifest, options.arguments);
  } else if (options.arguments.size() == 2) {
    targets.push_back({options.arguments[0], options.arguments[0], options.arguments[1]});
  } else {
    throw Failure("give --manifest FILE [SECRET...], or a REFERENCE and a FILE");
  }
  if (options.token_file) {
    settings.token_file = *options.token_file;
  }
  if (options.op) {
    settings.op = *options.op;
  }
  if (settings.token_file.empty()) {
    throw Failure("no token file: give --token-file, or [onepassword] token_file in the manifest");
  }
  if (targets.empty()) {
    throw Failure("no secret has both `source` and `file`: nothing to sync");
  }

  // Before anything is asked of 1Password: without an identity to open the files with, no
  // request would be of use.
  const auto identities = caller_identities(options.identities);
  std::vector<onepassword::Reference> references;
  for (const auto& target : targets) {
    auto parsed = onepassword::parse_reference(target.reference);
    if (const auto* reason = std::get_if<std::string>(&parsed)) {
      throw Failure(target.described() + ": " + *reason);
    }
    if (onepassword::is_one_time_password(std::get<onepassword::Reference>(parsed))) {
      throw Failure(target.described() + ": " +
                    std::string(onepassword::kOneTimePasswordRefused));
    }
    references.push_back(std::get<onepassword::Reference>(std::move(parsed)));
  }
  std::string config = (std::filesystem::temp_directory_path() / "secretfs-op-XXXXXX").string();
  if (::mkdtemp(config.data()) == nullptr) {
    throw Failure(config + ": " + std::strerror(errno));
  }
  onepassword::Settings client_settings;
  client_settings.op = settings.op;
  client_settings.timeout = settings.timeout;
  client_settings.config_dir = config;
  client_settings.max_value_size = max_size;
  std::vector<onepassword::Result> results;
  onepassword::kill_op_on_interrupt();
  try {
    onepassword::Client client(client_settings,
                               onepassword::read_token_file(settings.token_file));
    results = client.fetch(references);
  } catch (const std::runtime_error& error) {
    std::filesystem::remove_all(config);
    throw Failure(error.what());
  }
  std::filesystem::remove_all(config);

  std::size_t failed = 0;
  for (std::size_t index = 0; index < targets.size(); ++index) {
    const SyncTarget& target = targets[index];
    try {
      if (const auto* error = std::get_if<onepassword::Error>(&results[index])) {
        throw Failure(std::string(onepassword::to_string(error->failure)) + ": " +
                      error->message);
      }
      const std::string done = sync_file(target, std::get<SecretBytes>(results[index]),
                                         identities, options.rules, max_size);
      std::printf("%s: %s: %s\n", shown(target.file).c_str(), target.label.c_str(), done.c_str());
    } catch (const std::exception& error) {
      std::fprintf(stderr, "error: %s: %s\n", target.described().c_str(), error.what());
      ++failed;
    }
  }
  if (failed == targets.size()) {
    throw Failure(targets.size() == 1 ? std::string("the file was not synced")
                                      : "none of the " + counted(targets.size(), "file") +
                                            " was synced");
  }
  if (failed > 0) {
    throw Failure(std::to_string(failed) + " of " + counted(targets.size(), "file") +
                  " not synced; the others are up to date");
  }
  return 0;
}

void add_identity_option(CLI::App& command, std::vector<std::string>& identities) {
  command
      .add_option("-i,--identity", identities,
                  "Identity file; may repeat (default: $SECRETFS_IDENTITY, "
                  "~/.config/secretfs/key.txt, ~/.ssh/id_ed25519)")
      ->allow_extra_args(false);
}

void add_rules_option(CLI::App& command, std::optional<std::string>& rules) {
  command.add_option("--rules", rules,
                     "Rules file (default: the nearest recipients.toml above the file)");
}

}  // namespace

void add_edit(CLI::App& app, Command& selected) {
  auto options = std::make_shared<EditOptions>();
  auto* command = app.add_subcommand(
      "edit", "Edit a secret file in $EDITOR; the plaintext stays in memory-backed storage");
  command->add_option("file", options->file, "The age file (created when missing)")->required();
  add_identity_option(*command, options->identities);
  add_rules_option(*command, options->rules);
  command->footer("Example:\n  secretfs edit secrets/web1/db-password.age\n");
  command->callback([&selected, options] { selected = [options] { return edit(*options); }; });
}

void add_view(CLI::App& app, Command& selected) {
  auto options = std::make_shared<ViewOptions>();
  auto* command = app.add_subcommand("view", "Decrypt a secret file to standard output");
  command->add_option("file", options->file, "The age file")->required();
  add_identity_option(*command, options->identities);
  command->add_flag("--binary", options->binary, "Write binary content even to a terminal");
  command->footer("Example:\n  secretfs view -i ~/.ssh/id_ed25519 secrets/web1/db-password.age\n");
  command->callback([&selected, options] { selected = [options] { return view(*options); }; });
}

void add_rekey(CLI::App& app, Command& selected) {
  auto options = std::make_shared<RekeyOptions>();
  auto* command = app.add_subcommand(
      "rekey", "Re-encrypt secret files to their rule's recipients (all or nothing)");
  command->add_option("files", options->files,
                      "Files to rekey (default: every .age file a rule matches)");
  add_identity_option(*command, options->identities);
  add_rules_option(*command, options->rules);
  command->footer(
      "Example, after adding a host to recipients.toml:\n  cd secrets && secretfs rekey\n");
  command->callback([&selected, options] { selected = [options] { return rekey(*options); }; });
}

void add_rotate(CLI::App& app, Command& selected) {
  auto options = std::make_shared<RotateOptions>();
  auto* command = app.add_subcommand(
      "rotate", "Encrypt a new value (generated, or read from standard input) to a secret file");
  command->add_option("file", options->file, "The age file (created when missing)")->required();
  auto* generate = command->add_flag("-g,--generate", options->generate, "Generate a random value");
  command
      ->add_option("--length", options->length,
                   "Length of the generated value, 1 to " + std::to_string(kMaxLength) +
                       " (default " + std::to_string(kDefaultLength) + ")")
      ->needs(generate);
  command
      ->add_option("--charset", options->charset,
                   "Characters to draw from, ranges allowed (default A-Za-z0-9)")
      ->needs(generate);
  add_rules_option(*command, options->rules);
  command->add_option("--manifest", options->manifest,
                      "Also list the secrets of this manifest that use the file");
  command->footer(
      "Examples:\n"
      "  secretfs rotate --generate --length 40 secrets/web1/db-password.age\n"
      "  printf '%s' \"$TOKEN\" | secretfs rotate secrets/api-token.age "
      "--manifest /etc/secretfs/manifest.toml\n");
  command->callback([&selected, options] { selected = [options] { return rotate(*options); }; });
}

void add_sync(CLI::App& app, Command& selected) {
  auto options = std::make_shared<SyncOptions>();
  auto* command = app.add_subcommand(
      "sync", "Write 1Password values into secret files, encrypted to their rule's recipients");
  command->add_option("arguments", options->arguments,
                      "With --manifest: the secrets to sync (default: every secret with both "
                      "`source` and `file`); without: a REFERENCE and a FILE");
  command->add_option("-m,--manifest", options->manifest, "Manifest naming sources and files");
  command->add_option("--token-file", options->token_file,
                      "Service account token file (default: the manifest's token_file)");
  command->add_option("--op", options->op,
                      "The 1Password CLI (default: the manifest's op, else op in PATH)");
  add_identity_option(*command, options->identities);
  add_rules_option(*command, options->rules);
  command->footer(
      "Examples:\n"
      "  secretfs sync --manifest hosts/web1.toml --token-file ~/.config/secretfs/op-token\n"
      "  secretfs sync op://Prod/db/password secrets/web1/db-password.age "
      "--token-file ~/.config/secretfs/op-token\n");
  command->callback([&selected, options] { selected = [options] { return sync(*options); }; });
}

}  // namespace secretfs::cli
