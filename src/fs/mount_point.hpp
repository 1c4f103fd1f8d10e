// The mount point: the folder the kernel really mounts on, what must not be under it, and
// clearing the dead mounts that a killed daemon leaves there.
#pragma once

#include <filesystem>
#include <vector>

namespace secretfs::fs {

enum class MountPointContents {
  empty,  // refuse a mount point that holds files: the mount would hide them
  any,    // mount over whatever is there
};

// `configured` made absolute with every symbolic link on its way resolved, its last component
// included: the folder the kernel mounts on and lists in /proc/self/mountinfo. The daemon
// mounts, unmounts, looks for dead mounts and reports by this path, so that a link replaced
// while it runs changes none of them. Unlike std::filesystem::canonical it also resolves a
// folder that does not exist yet (it is created), or that holds a dead mount, which cannot be
// looked into. Throws std::runtime_error or std::filesystem::filesystem_error.
std::filesystem::path real_mount_point(const std::filesystem::path& configured);

// Makes `mount_point` (a real path) ready to mount on: detaches each dead mount stacked on it,
// creates it when missing, refuses a live FUSE mount there, and one that holds files unless
// `contents` is any. Throws std::runtime_error naming it.
void prepare_mount_point(const std::filesystem::path& mount_point, MountPointContents contents);

// Throws std::runtime_error when mounting on `mount_point` (a real path) would hide one of
// `needed`, the files the daemon reads while it serves: it would wait for itself to answer.
// Compared by real paths, so a link outside the mount point that leads inside it is caught.
void refuse_hiding(const std::filesystem::path& mount_point,
                   const std::vector<std::filesystem::path>& needed);

}  // namespace secretfs::fs
