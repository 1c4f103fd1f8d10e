// Reading identity files and recipient lists as the age CLI does.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "secretfs/age/identity.hpp"
#include "secretfs/private_file.hpp"

namespace secretfs::age {

// Parses an identity file's contents: an age identity list (comments with '#', empty lines,
// one "AGE-SECRET-KEY-1…" per line) or an OpenSSH private key, which yields the ssh-ed25519
// identity and its derived X25519 identity. Errors name `source` and the line.
Identities parse_identities(std::string_view text, std::string_view source);

struct IdentityFile {
  Identities identities;
  // What FilePermissions::strict would have refused, one line each naming the file (or its
  // folder), the owner and mode, and the fix; empty when nothing. Always empty with strict.
  std::vector<std::string> waived;
};

// Reads and parses an identity file. With FilePermissions::strict a file that breaks a rule
// above is refused with Error(key) naming it (or its folder) and its mode; with
// FilePermissions::any it is read, and the rules it broke are in `waived`. A symbolic link in
// place of the file is refused either way.
IdentityFile read_identity_file(const std::filesystem::path& path, FilePermissions permissions);

// The identities of read_identity_file(path, permissions).
Identities load_identity_file(const std::filesystem::path& path,
                              FilePermissions permissions = FilePermissions::strict);

// Parses one recipient: "age1…" or "ssh-ed25519 AAAA… [comment]".
// Throws Error(unsupported) for ssh-rsa and other known but unsupported kinds.
std::unique_ptr<Recipient> parse_recipient(std::string_view text);

// Parses a recipients file: comments with '#', empty lines, one recipient per line.
Recipients parse_recipients(std::string_view text, std::string_view source);

// The recipient that `identity` opens files for: what a host encrypts to so that only it can
// read the file back. nullptr for an identity of a kind without one.
std::unique_ptr<Recipient> recipient_of(const Identity& identity);

}  // namespace secretfs::age
