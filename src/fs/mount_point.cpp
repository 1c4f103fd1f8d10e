#include "fs/mount_point.hpp"

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <system_error>

#include "secretfs/log.hpp"

namespace secretfs::fs {

namespace {

constexpr long kFuseSuperMagic = 0x65735546;
// The mount point folder under the mount, seen only while no daemon serves.
constexpr mode_t kIdleMountPointMode = 0700;
// Dead mounts can be stacked on one mount point when daemons died one after another.
constexpr int kMaxStaleLayers = 16;
// As many links as the kernel follows in one path before it gives ELOOP.
constexpr int kMaxLinks = 40;

std::filesystem::path without_trailing_slash(std::filesystem::path path) {
  path = path.lexically_normal();
  if (!path.has_filename() && path.has_relative_path()) {
    path = path.parent_path();
  }
  return path;
}

bool is_link(const std::filesystem::path& path) {
  struct stat status {};
  return ::lstat(path.c_str(), &status) == 0 && S_ISLNK(status.st_mode);
}

// Resolves real paths of many files at once: the thousands of secrets of a generation are
// blobs in one folder, which is resolved once.
class RealPaths {
 public:
  // `path` with every link resolved; as it is when that fails (a folder this process may not
  // search): such a file's own problem is reported where it is read.
  std::filesystem::path of(const std::filesystem::path& path) {
    const auto absolute = without_trailing_slash(std::filesystem::absolute(path));
    auto found = folders_.find(absolute.parent_path());
    if (found == folders_.end()) {
      found = folders_.emplace(absolute.parent_path(), resolved(absolute.parent_path())).first;
    }
    const auto real = found->second / absolute.filename();
    return is_link(real) ? resolved(real) : real;
  }

 private:
  static std::filesystem::path resolved(const std::filesystem::path& path) {
    std::error_code error;
    auto real = std::filesystem::weakly_canonical(path, error);
    return error ? path : real;
  }

  std::map<std::filesystem::path, std::filesystem::path> folders_;
};

}  // namespace

std::filesystem::path real_mount_point(const std::filesystem::path& configured) {
  auto path = without_trailing_slash(std::filesystem::absolute(configured));
  for (int links = 0; links <= kMaxLinks; ++links) {
    // The folders above it resolve as any path does; the last component is looked at with
    // lstat alone, which a dead mount answers with ENOTCONN rather than a link.
    const auto folder = std::filesystem::weakly_canonical(path.parent_path());
    path = folder / path.filename();
    if (!is_link(path)) {
      return path;
    }
    path = without_trailing_slash(folder / std::filesystem::read_symlink(path));
  }
  throw std::runtime_error("mount point " + configured.string() + ": " + std::strerror(ELOOP));
}

// A daemon that died without unmounting leaves a mount whose every access fails with ENOTCONN;
// each such layer is detached so that the new mount takes its place. statfs is asked rather
// than stat, which the kernel may answer from its cache of the dead mount. A live FUSE mount is
// refused: a second daemon would stack its mount over the first one.
void prepare_mount_point(const std::filesystem::path& mount_point, MountPointContents contents) {
  for (int layer = 0; layer < kMaxStaleLayers; ++layer) {
    struct statfs filesystem {};
    if (::statfs(mount_point.c_str(), &filesystem) == 0) {
      if (filesystem.f_type == kFuseSuperMagic) {
        throw std::runtime_error("mount point " + mount_point.string() +
                                 " already holds a FUSE mount; unmount it first (fusermount3 -u)");
      }
      break;
    }
    if (errno != ENOTCONN) {
      break;
    }
    spdlog::warn("{}: a previous secretfs died without unmounting; detaching its mount",
                 mount_point.string());
    // UMOUNT_NOFOLLOW: the path was resolved already; a link put in its place since must not
    // lead the detach elsewhere.
    if (::umount2(mount_point.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0) {
      throw std::runtime_error("mount point " + mount_point.string() +
                               ": could not detach a dead mount: " + std::strerror(errno));
    }
  }
  std::error_code error;
  std::filesystem::create_directories(mount_point, error);
  if (error) {
    throw std::runtime_error("mount point " + mount_point.string() + ": " + error.message());
  }
  const bool empty = std::filesystem::is_empty(mount_point, error) && !error;
  if (contents == MountPointContents::empty && !empty) {
    throw std::runtime_error("mount point " + mount_point.string() +
                             " is not empty; the mount would hide what is in it. Empty it, or "
                             "pass --allow-non-empty");
  }
  // While no daemon serves, the folder itself shows: only root may look into it, so that a
  // service never takes an empty listing for the secrets being gone.
  if (empty && ::chmod(mount_point.c_str(), kIdleMountPointMode) != 0) {
    throw std::runtime_error("mount point " + mount_point.string() +
                             ": chmod: " + std::strerror(errno));
  }
}

void refuse_hiding(const std::filesystem::path& mount_point,
                   const std::vector<std::filesystem::path>& needed) {
  RealPaths real_paths;
  for (const auto& path : needed) {
    const auto real = real_paths.of(path);
    const auto relative = real.lexically_relative(mount_point);
    if (relative.empty() || *relative.begin() == "..") {
      continue;
    }
    const std::string shown = real == without_trailing_slash(std::filesystem::absolute(path))
                                  ? path.string()
                                  : path.string() + " (really " + real.string() + ")";
    throw std::runtime_error("mount point " + mount_point.string() + " would hide " + shown +
                             ", which the daemon reads while serving; choose a mount point "
                             "outside it");
  }
}

}  // namespace secretfs::fs
