// Running the daemon: choose what to serve, mount it read-only, answer the control socket, and
// serve until unmounted or signalled.
#pragma once

#include <filesystem>
#include <optional>

#include "fs/mount_point.hpp"
#include "secretfs/age/key_files.hpp"
#include "secretfs/state.hpp"

namespace secretfs::fs {

enum class Detach {
  no,   // stay in the foreground (systemd, tests)
  yes,  // become a daemon once the mount is live, logging to syslog
};

struct MountOptions {
  std::optional<std::filesystem::path> manifest;     // activated first when given
  std::optional<std::filesystem::path> mount_point;  // overrides the manifest's
  std::optional<std::filesystem::path> state_dir;    // overrides the manifest's
  Detach detach = Detach::yes;
  MountPointContents mount_point_contents = MountPointContents::empty;
  FilePermissions identity_permissions = FilePermissions::strict;
};

// Returns the process exit code: 0 after a clean unmount, non-zero when nothing can be served
// or the mount fails. Problems with single secrets are logged and do not stop it.
int run_mount(const MountOptions& options);

}  // namespace secretfs::fs
