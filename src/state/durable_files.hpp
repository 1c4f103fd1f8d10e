// Reading and writing files in the state directory so that a crash leaves the old or the new
// content, never a mix: new files are written whole, fsynced, renamed into place, and their
// folder fsynced. Writes never follow a symbolic link.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace secretfs::state {

// Whether reading a file may go through a symbolic link. Ciphertexts named by a manifest often
// are links (into the Nix store); nothing inside the state directory ever is.
enum class Links { follow, refuse };

// The whole file; throws StateError naming it when it cannot be read or is over `max_size`.
// With `status`, also what fstat said of the file that was read.
std::string read_file(const std::filesystem::path& path, std::size_t max_size, Links links,
                      struct stat* status = nullptr);

// Sync::later leaves the fsync to one sync_file_system() after many files have been written.
enum class Sync { now, later };

// Creates `path` (which must not exist yet), writes `content` and fsyncs it (with Sync::now).
// The folder is not fsynced: the caller does that once it has written everything that belongs
// together.
void write_new_file(const std::filesystem::path& path, std::string_view content, mode_t mode,
                    Sync sync = Sync::now);

// Makes everything written to the file system that holds `folder` durable (syncfs): one call
// instead of an fsync per file when many files are written together.
void sync_file_system(const std::filesystem::path& folder);

// Replaces `folder`/`name` with `content` atomically: a temporary file in the same folder,
// fsync, rename, fsync of the folder.
void replace_file(const std::filesystem::path& folder, const std::string& name,
                  std::string_view content, mode_t mode);

// Renames `from` to `to`, failing rather than replacing an existing `to`.
void rename_new(const std::filesystem::path& from, const std::filesystem::path& to);

void fsync_folder(const std::filesystem::path& folder);

// Creates `path` with `mode` unless it exists; never changes an existing one.
void make_folder(const std::filesystem::path& path, mode_t mode);

// The names in `folder`, without "." and "..", in no particular order.
std::vector<std::string> list_folder(const std::filesystem::path& folder);

// What lstat() says `path` is; a symbolic link is never followed.
enum class Kind { missing, folder, file, other };
Kind kind_of(const std::filesystem::path& path);

// Lower-case hex of the SHA-256 of `bytes`.
std::string sha256_hex(std::string_view bytes);

// Random hex characters that make a temporary name unique even across processes.
std::string random_suffix();

// "path: what: strerror(error)" as a StateError.
[[noreturn]] void fail_errno(const std::filesystem::path& path, std::string_view what, int error);

}  // namespace secretfs::state
