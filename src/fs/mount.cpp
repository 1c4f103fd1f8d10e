#include "fs/mount.hpp"

#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "fs/operations.hpp"
#include "secretfs/log.hpp"

namespace secretfs::fs {

namespace {

// ro: the kernel answers EROFS to every change before asking us. allow_other with
// default_permissions: every user may look, and the kernel checks each file's uid, gid and mode
// against the caller, supplementary groups included. nosuid, nodev, noexec: nothing here runs.
constexpr const char* kMountOptions =
    "ro,nosuid,nodev,noexec,allow_other,default_permissions,fsname=secretfs,subtype=secretfs";

constexpr std::size_t kLogLineSize = 1024;

// A process holding plaintext must not leave it in a core dump, and must not be readable
// through /proc or ptrace by a process of the same uid.
void forbid_core_dumps() {
  const rlimit none{0, 0};
  if (::setrlimit(RLIMIT_CORE, &none) != 0 || ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    spdlog::warn("could not disable core dumps: {}", std::strerror(errno));
  }
}

// libfuse's own messages go through our logger.
void fuse_log(enum fuse_log_level level, const char* format, va_list arguments) {
  char line[kLogLineSize];
  std::vsnprintf(line, sizeof line, format, arguments);
  std::string_view text(line);
  while (!text.empty() && text.back() == '\n') {
    text.remove_suffix(1);
  }
  spdlog::log(level <= FUSE_LOG_ERR ? spdlog::level::err
              : level == FUSE_LOG_WARNING ? spdlog::level::warn
                                          : spdlog::level::debug,
              "fuse: {}", text);
}

// A daemon that died without unmounting leaves a mount whose every access fails with
// ENOTCONN; detach it so that the new mount can take its place.
void clear_stale_mount(const std::filesystem::path& mount_point) {
  struct stat status {};
  if (::stat(mount_point.c_str(), &status) == 0 || errno != ENOTCONN) {
    return;
  }
  spdlog::warn("{}: a previous secretfs died without unmounting; detaching its mount",
               mount_point.string());
  if (::umount2(mount_point.c_str(), MNT_DETACH) != 0) {
    spdlog::error("{}: could not detach the stale mount: {}", mount_point.string(),
                  std::strerror(errno));
  }
}

void prepare_mount_point(const std::filesystem::path& mount_point) {
  clear_stale_mount(mount_point);
  std::error_code error;
  std::filesystem::create_directories(mount_point, error);
  if (error) {
    throw std::runtime_error("mount point " + mount_point.string() + ": " + error.message());
  }
}

std::shared_ptr<const SecretSet> load(const manifest::Manifest& manifest,
                                      age::FilePermissions permissions) {
  for (const auto& problem : manifest.problems) {
    spdlog::error("{} (not served)", problem.message);
  }
  auto keyring = std::make_shared<const Keyring>(load_keyring(manifest.identities, permissions));
  for (const auto& problem : keyring->problems) {
    spdlog::error("{}", problem);
  }
  auto set = std::make_shared<const SecretSet>(manifest, keyring);
  for (const auto& problem : set->problems()) {
    spdlog::error("{} (opening it will fail with EIO)", problem);
  }
  return set;
}

// Owns the FUSE session and undoes each step it took, in reverse, however it is left.
class Session {
 public:
  Session(Served& served, const std::filesystem::path& mount_point) {
    std::vector<const char*> argv{"secretfs", "-o", kMountOptions};
    fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), const_cast<char**>(argv.data()));
    session_ = fuse_session_new(&args, &operations(), sizeof(fuse_lowlevel_ops), &served);
    if (session_ == nullptr) {
      throw std::runtime_error("could not create the FUSE session");
    }
    if (fuse_set_signal_handlers(session_) != 0) {
      throw std::runtime_error("could not install signal handlers");
    }
    handlers_ = true;
    if (fuse_session_mount(session_, mount_point.c_str()) != 0) {
      throw std::runtime_error("could not mount at " + mount_point.string());
    }
    mounted_ = true;
  }

  ~Session() {
    if (mounted_) {
      fuse_session_unmount(session_);
    }
    if (handlers_) {
      fuse_remove_signal_handlers(session_);
    }
    if (session_ != nullptr) {
      fuse_session_destroy(session_);
    }
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  int serve() { return fuse_session_loop(session_); }

 private:
  fuse_session* session_ = nullptr;
  bool handlers_ = false;
  bool mounted_ = false;
};

}  // namespace

int run_mount(const MountOptions& options) {
  forbid_core_dumps();
  fuse_set_log_func(fuse_log);

  manifest::Manifest manifest;
  try {
    manifest = manifest::load(options.manifest);
  } catch (const manifest::ManifestError& error) {
    spdlog::error("{}", error.what());
    return 1;
  }
  if (options.mount_point) {
    manifest.mount_point = std::filesystem::absolute(*options.mount_point).lexically_normal();
  }

  try {
    Served served{load(manifest, options.identity_permissions)};
    prepare_mount_point(manifest.mount_point);
    Session session(served, manifest.mount_point);
    spdlog::info("mounted {} secrets from {} at {}", served.set->tree().secrets().size(),
                 manifest.path.string(), manifest.mount_point.string());

    if (options.detach == Detach::yes) {
      if (fuse_daemonize(0) != 0) {
        throw std::runtime_error("could not detach from the terminal");
      }
      log::setup(log::Destination::syslog);
    }

    // The loop returns 0 when unmounted from outside, the signal's number when SIGINT, SIGTERM
    // or SIGHUP asked it to stop (both clean), and a negative errno when it failed.
    const int status = session.serve();
    if (status < 0) {
      spdlog::error("serving {} failed: {}", manifest.mount_point.string(), std::strerror(-status));
    }
    spdlog::info("unmounting {}", manifest.mount_point.string());
    return status < 0 ? 1 : 0;
  } catch (const std::exception& error) {
    spdlog::error("{}", error.what());
    return 1;
  }
}

}  // namespace secretfs::fs
