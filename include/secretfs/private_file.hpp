// Files that hold a key or a token: whoever can read or replace one can read every secret it
// opens. They are read the way ssh reads a private key.
#pragma once

#include <cstddef>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "secretfs/secret_bytes.hpp"

namespace secretfs {

enum class FilePermissions {
  strict,  // as ssh demands: the file owned by root or the caller, no access for group or
           // others; its folder owned by root or the caller, and not writable by group or
           // others unless sticky (/tmp)
  any,     // development only: what strict refuses is let through (and reported)
};

class PrivateFileError : public std::runtime_error {
 public:
  enum class Kind {
    io,       // it could not be opened or read
    refused,  // a link in its place, not a regular file, too large, or a rule of
              // FilePermissions::strict broken
  };
  PrivateFileError(Kind kind, const std::string& message)
      : std::runtime_error(message), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

struct PrivateFile {
  SecretBytes contents;  // locked memory, wiped when released
  // What FilePermissions::strict would have refused, one line each naming the file (or its
  // folder), the owner and mode, and the fix; empty when nothing. Always empty with strict.
  std::vector<std::string> waived;
};

// Reads the file at `path`, at most `max_size` bytes, into locked memory. `name` starts every
// message ("identity file /etc/ssh/ssh_host_ed25519_key"). A symbolic link in place of the
// file, anything but a regular file and a file over `max_size` are refused either way; with
// FilePermissions::strict the first rule broken is refused too. Throws PrivateFileError.
PrivateFile read_private_file(const std::filesystem::path& path, const std::string& name,
                              std::size_t max_size, FilePermissions permissions);

}  // namespace secretfs
