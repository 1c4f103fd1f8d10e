// The one place where `secretfs edit` lets plaintext out of secure memory: a file the editor
// can open. It lives in a private folder on a memory-backed file system, and every way out of
// the program wipes it and removes it.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <span>
#include <string>

#include "secretfs/secret_bytes.hpp"

namespace secretfs::cli {

class ScratchFile {
 public:
  // Creates a 0700 folder under $XDG_RUNTIME_DIR (else /dev/shm), refusing any folder that is
  // not on tmpfs or ramfs, and in it a 0600 file called `name` holding `content`. Installs
  // handlers so that SIGINT, SIGTERM, SIGHUP and SIGQUIT wipe the folder before secretfs dies.
  ScratchFile(const std::string& name, std::span<const std::uint8_t> content);

  // Wipes (overwrites with zeros) and removes every file in the folder, then the folder.
  ~ScratchFile();

  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;

  const std::filesystem::path& path() const { return file_; }

  // The file's content as the editor left it.
  SecretBytes read() const;

  // Runs `editor` (a shell word list such as "code --wait") on the file and returns its exit
  // status; a signal that ends secretfs meanwhile ends the editor too.
  int edit(const std::string& editor) const;

 private:
  std::filesystem::path folder_;
  std::filesystem::path file_;
};

}  // namespace secretfs::cli
