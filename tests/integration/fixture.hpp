// Real mounts for integration tests: a private temporary folder, a `secretfs mount` daemon that
// the fixture waits for and always stops and unmounts (even when a test fails), and readers
// that run as other users.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace secretfs::test {

// The secretfs binary under test (set by meson as SECRETFS_BINARY).
std::filesystem::path binary();

// The path in single quotes, for a shell command (test paths hold no quote).
std::string shell_quoted(const std::filesystem::path& path);

// Runs a shell command; returns its exit status. Output goes to the test log.
int run(const std::string& command);

// Runs a shell command and returns its standard output; fails the test if it exits non-zero.
std::string output_of(const std::string& command);

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

void write_file(const std::filesystem::path& path, const std::string& content, mode_t mode = 0600);
std::string read_file(const std::filesystem::path& path);

enum class MountSource {
  manifest,   // secretfs mount --manifest SOURCE
  state_dir,  // secretfs mount --state-dir SOURCE: the current generation
};

// A running `secretfs mount --foreground`. The constructor returns once the mount is live;
// the destructor stops the daemon and detaches the mount whatever state they are in.
class Mount {
 public:
  Mount(const std::filesystem::path& source, const std::filesystem::path& mount_point,
        MountSource kind = MountSource::manifest);
  ~Mount();
  Mount(const Mount&) = delete;
  Mount& operator=(const Mount&) = delete;

  const std::filesystem::path& point() const { return point_; }
  std::filesystem::path operator/(const std::string& name) const { return point_ / name; }
  pid_t pid() const { return pid_; }
  std::string log() const;

  // Sends SIGTERM and waits; returns the daemon's exit status.
  int stop();

 private:
  std::filesystem::path point_;
  std::filesystem::path log_path_;
  pid_t pid_ = -1;
};

// True while `point` is a FUSE mount of secretfs in /proc/self/mountinfo.
bool is_mounted(const std::filesystem::path& point);

struct Reader {
  uid_t uid;
  gid_t gid;
  std::vector<gid_t> groups;  // supplementary groups
};

struct ReadResult {
  int error = 0;  // errno of the failed open or read, 0 on success
  std::string content;
};

// Opens and reads `path` to the end in this process.
ReadResult read_here(const std::filesystem::path& path);

// Opens and reads `path` to the end in a child process running as `reader`.
ReadResult read_as(const std::filesystem::path& path, const Reader& reader);

// Sends `request` on the Unix socket at `path` from a child process running as `reader`, and
// returns the first line of the answer ("" when the connection fails).
std::string ask_as(const std::filesystem::path& path, const std::string& request,
                   const Reader& reader);

// Encrypts `plaintext` to the age1 `recipient` into `output`, in this process: tests that need
// thousands of distinct files cannot start an `age` process for each.
void encrypt_file(const std::string& recipient, const std::string& plaintext,
                  const std::filesystem::path& output);

// The daemon's open file descriptors (entries of /proc/PID/fd) and resident memory (VmRSS of
// /proc/PID/status, in KiB): what a leak makes grow. Descriptors of callers' /proc/PID/comm,
// which the audit trail keeps for a bounded number of recent callers, are counted apart.
struct OpenFds {
  std::size_t others = 0;
  std::size_t caller_names = 0;
};
OpenFds open_fds(pid_t pid);
std::size_t resident_kib(pid_t pid);

// A marker no other memory can hold by chance: "secretfs-marker-" and 32 random hex digits.
std::string unique_marker();

// How many times `needle` occurs in the readable memory of process `pid` (as root).
std::size_t occurrences_in_memory(pid_t pid, const std::string& needle);

// Changes the calling process's groups, gid and uid to `reader`'s; false when refused. For
// forked children that read as a service would.
bool become(const Reader& reader);

}  // namespace secretfs::test
