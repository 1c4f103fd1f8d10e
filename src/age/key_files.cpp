// Identity files and recipient lists, read the way the age CLI reads them, plus the
// ownership and mode checks that a daemon holding host keys owes its users.
#include "secretfs/age/key_files.hpp"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "secretfs/age/error.hpp"
#include "secretfs/age/ssh.hpp"
#include "secretfs/age/x25519.hpp"
#include "secretfs/private_file.hpp"

namespace secretfs::age {

namespace {

constexpr std::string_view kWhitespace = " \t\r\n";
constexpr std::string_view kPemBegin = "-----BEGIN";
constexpr std::string_view kArmoredAgeBegin = "-----BEGIN AGE";
constexpr std::string_view kAgeVersionPrefix = "age-encryption.org";
constexpr std::string_view kPluginIdentityPrefix = "AGE-PLUGIN-";
constexpr std::string_view kPostQuantumIdentityPrefix = "AGE-SECRET-KEY-PQ-";
constexpr std::string_view kX25519RecipientHrp = "age";
constexpr std::string_view kAgeRecipientPrefix = "age1";
constexpr char kBech32Separator = '1';
constexpr std::size_t kMaxIdentityFileSize = 1024 * 1024;  // real ones are under 4 KiB

std::string_view trim_leading_whitespace(std::string_view text) {
  text.remove_prefix(std::min(text.find_first_not_of(kWhitespace), text.size()));
  return text;
}

std::string line_name(std::string_view source, std::size_t number) {
  return std::string(source) + ": line " + std::to_string(number);
}

// Calls `visit(line, number)` for every line that is neither empty nor a '#' comment.
// One trailing CR is dropped, as age does, so files saved with CRLF endings still parse.
// An Error from `visit` is rethrown with the source and line number in front.
template <typename Visit>
void for_each_entry(std::string_view text, std::string_view source, Visit visit) {
  std::size_t number = 0;
  while (!text.empty()) {
    ++number;
    const auto end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    if (line.ends_with('\r')) {
      line.remove_suffix(1);
    }
    if (line.empty() || line.starts_with('#')) {
      continue;
    }
    try {
      visit(line);
    } catch (const Error& error) {
      throw Error(error.kind(), line_name(source, number) + ": " + error.what());
    }
  }
}

// The identity line itself is secret, so messages describe it and never quote it.
std::unique_ptr<Identity> parse_identity_line(std::string_view line) {
  if (line.find_first_of(kWhitespace) == 0) {
    throw Error(ErrorKind::key, "leading whitespace before the identity");
  }
  if (line.starts_with(kPluginIdentityPrefix)) {
    throw Error(ErrorKind::unsupported, "age plugin identities are not supported");
  }
  if (line.starts_with(kPostQuantumIdentityPrefix)) {
    throw Error(ErrorKind::unsupported, "post-quantum (PQ) age identities are not supported");
  }
  return X25519Identity::parse(line);
}

Identities parse_identity_list(std::string_view text, std::string_view source) {
  Identities identities;
  for_each_entry(text, source,
                 [&](std::string_view line) { identities.push_back(parse_identity_line(line)); });
  if (identities.empty()) {
    throw Error(ErrorKind::key, std::string(source) + ": no identities found");
  }
  return identities;
}

Identities parse_ssh_identity(std::string_view text, std::string_view source) {
  auto ssh = parse_openssh_private_key(text, source);
  auto derived = ssh->derived_x25519();
  Identities identities;
  identities.push_back(std::move(ssh));
  identities.push_back(std::move(derived));
  return identities;
}

// Plugin and post-quantum recipients are age1 Bech32 strings whose human-readable part is
// longer than "age" (age1pq1..., age1tag1..., age1yubikey1...).
bool is_other_age_recipient(std::string_view text) {
  const auto separator = text.rfind(kBech32Separator);
  return separator != std::string_view::npos && text.substr(0, separator) != kX25519RecipientHrp &&
         text.substr(0, separator).starts_with(kAgeRecipientPrefix);
}

}  // namespace

Identities parse_identities(std::string_view text, std::string_view source) {
  const std::string_view start = trim_leading_whitespace(text);
  if (start.starts_with(kAgeVersionPrefix) || start.starts_with(kArmoredAgeBegin)) {
    throw Error(ErrorKind::unsupported,
                std::string(source) +
                    ": passphrase-encrypted identity files are not supported; a daemon cannot "
                    "ask for the passphrase");
  }
  if (start.starts_with(kPemBegin)) {
    return parse_ssh_identity(start, source);
  }
  return parse_identity_list(text, source);
}

IdentityFile read_identity_file(const std::filesystem::path& path, FilePermissions permissions) {
  const std::string name = "identity file " + path.string();
  PrivateFile file;
  try {
    file = read_private_file(path, name, kMaxIdentityFileSize, permissions);
  } catch (const PrivateFileError& error) {
    throw Error(error.kind() == PrivateFileError::Kind::io ? ErrorKind::io : ErrorKind::key,
                error.what());
  }
  return {parse_identities(file.contents.view(), name), std::move(file.waived)};
}

Identities load_identity_file(const std::filesystem::path& path, FilePermissions permissions) {
  return read_identity_file(path, permissions).identities;
}

std::unique_ptr<Recipient> parse_recipient(std::string_view text) {
  if (text.starts_with(kAgeRecipientPrefix)) {
    if (is_other_age_recipient(text)) {
      throw Error(ErrorKind::unsupported,
                  "post-quantum, tag and plugin age recipients are not supported (" +
                      std::string(text.substr(0, text.rfind(kBech32Separator) + 1)) + "...)");
    }
    return X25519Recipient::parse(text);
  }
  if (text.starts_with("ssh-") || text.starts_with("ecdsa-") || text.starts_with("sk-")) {
    return SshEd25519Recipient::parse(text);
  }
  throw Error(ErrorKind::key, "unknown recipient type (want \"age1...\" or \"ssh-ed25519 ...\")");
}

Recipients parse_recipients(std::string_view text, std::string_view source) {
  Recipients recipients;
  for_each_entry(text, source,
                 [&](std::string_view line) { recipients.push_back(parse_recipient(line)); });
  if (recipients.empty()) {
    throw Error(ErrorKind::key, std::string(source) + ": no recipients found");
  }
  return recipients;
}

std::unique_ptr<Recipient> recipient_of(const Identity& identity) {
  if (const auto* x25519 = dynamic_cast<const X25519Identity*>(&identity)) {
    return x25519->recipient();
  }
  if (const auto* ssh = dynamic_cast<const SshEd25519Identity*>(&identity)) {
    return ssh->recipient();
  }
  return nullptr;
}

}  // namespace secretfs::age
