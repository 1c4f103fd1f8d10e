// Reading identity files and recipient lists as the age CLI does.
#pragma once

#include <filesystem>
#include <string_view>

#include "secretfs/age/identity.hpp"

namespace secretfs::age {

// Parses an identity file's contents: an age identity list (comments with '#', empty lines,
// one "AGE-SECRET-KEY-1…" per line) or an OpenSSH private key, which yields the ssh-ed25519
// identity and its derived X25519 identity. Errors name `source` and the line.
Identities parse_identities(std::string_view text, std::string_view source);

enum class FilePermissions {
  strict,  // owned by root or the caller, no access for group or others (as ssh demands)
  any,     // development only: skip the ownership and mode check
};

// Reads and parses an identity file. With FilePermissions::strict a file owned by another
// user or accessible to group or others is refused with Error(key) naming it and its mode.
Identities load_identity_file(const std::filesystem::path& path,
                              FilePermissions permissions = FilePermissions::strict);

// Parses one recipient: "age1…" or "ssh-ed25519 AAAA… [comment]".
// Throws Error(unsupported) for ssh-rsa and other known but unsupported kinds.
std::unique_ptr<Recipient> parse_recipient(std::string_view text);

// Parses a recipients file: comments with '#', empty lines, one recipient per line.
Recipients parse_recipients(std::string_view text, std::string_view source);

}  // namespace secretfs::age
