// Reading inputs and writing outputs for the commands, with plaintext kept in secure memory.
#pragma once

#include <filesystem>
#include <optional>
#include <span>
#include <string>

#include "secretfs/secret_bytes.hpp"

namespace secretfs::cli {

// A command failed; the message is printed as "secretfs: <message>" and the exit code is 1.
class Failure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Reads a whole file, or standard input when `path` is empty or "-", into secure memory.
SecretBytes read_input(const std::optional<std::string>& path);

enum class Existing {
  replace,  // truncate a file that is there
  refuse,   // fail when the file exists (new keys never overwrite old ones)
};

// Writes `bytes` to a new file of mode 0600, or to standard output when `path` is empty or "-".
void write_output(const std::optional<std::string>& path, std::span<const std::uint8_t> bytes,
                  Existing existing = Existing::replace);

// Writes all of `bytes` to `fd`; `name` names it in the error.
void write_all(int fd, std::span<const std::uint8_t> bytes, const std::string& name);

// True when the output would go to a terminal.
bool output_is_terminal(const std::optional<std::string>& path);

}  // namespace secretfs::cli
