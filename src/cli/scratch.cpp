// The scratch file behind `secretfs edit`.
//
// Why a memory-backed file system: the editor needs a path, and a path on a disk would leave the
// plaintext in blocks that outlive any unlink. tmpfs and ramfs pages die with the file (tmpfs
// can be swapped out, as can the editor's own memory; ramfs cannot). The folder is checked with
// statfs rather than trusted by name, because $XDG_RUNTIME_DIR can point anywhere.
//
// Why the cleanup is written with raw system calls: it also runs inside signal handlers, where
// only async-signal-safe calls are allowed, and one code path for both cases means the signal
// path is the tested path.
#include "cli/scratch.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "cli/io.hpp"

namespace secretfs::cli {

namespace {

constexpr const char* kRuntimeVariable = "XDG_RUNTIME_DIR";
constexpr const char* kSharedMemory = "/dev/shm";
constexpr const char* kFolderPattern = "secretfs-edit.XXXXXX";
constexpr mode_t kPrivateFile = 0600;
constexpr std::array kWipeSignals = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
constexpr std::size_t kZeroBlock = 4096;
constexpr std::size_t kListingBuffer = 4096;
// An editor may create files while secretfs removes others (a swap file, a backup); a few passes
// over the folder catch them without looping forever on a misbehaving editor.
constexpr int kWipePasses = 4;
// Folders the editor makes inside the scratch folder are wiped too, down to this depth. The
// bound keeps the signal handler's stack use fixed (one listing buffer per level).
constexpr int kWipeDepth = 8;
constexpr mode_t kPrivateFolder = 0700;
constexpr int kSignalExitBase = 128;

// State the signal handlers read. Set before the handlers are installed, cleared after they are
// removed, so a handler never sees a half-written path.
char g_folder[PATH_MAX];
volatile sig_atomic_t g_armed = 0;
volatile sig_atomic_t g_editor = 0;
std::array<struct sigaction, kWipeSignals.size()> g_previous{};
const unsigned char g_zeros[kZeroBlock] = {};

// The record getdents64 returns; glibc declares no type for it.
struct LinuxDirent64 {
  ino64_t inode;
  off64_t next;
  unsigned short length;
  unsigned char type;
  char name[];
};

void overwrite_with_zeros(int fd) noexcept {
  struct stat status {};
  if (::fstat(fd, &status) != 0 || !S_ISREG(status.st_mode)) {
    return;
  }
  off_t left = status.st_size;
  while (left > 0) {
    const auto step = static_cast<std::size_t>(std::min<off_t>(left, kZeroBlock));
    const ssize_t wrote = ::write(fd, g_zeros, step);
    if (wrote < 0 && errno == EINTR) {
      continue;
    }
    if (wrote <= 0) {
      return;
    }
    left -= wrote;
  }
}

int wipe_pass(int folder_fd, int depth) noexcept;

// A folder's content first, then the folder. Opened without following links, so that a link
// the editor left can only ever be removed, never followed.
void wipe_subfolder(int folder_fd, const char* name, int depth) noexcept {
  const int fd = ::openat(folder_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0) {
    // A folder the editor made read-only still has to be emptied.
    ::fchmod(fd, kPrivateFolder);
    for (int pass = 0; pass < kWipePasses && depth < kWipeDepth && wipe_pass(fd, depth + 1) > 0;
         ++pass) {
    }
    ::close(fd);
  }
  ::unlinkat(folder_fd, name, AT_REMOVEDIR);
}

void wipe_entry(int folder_fd, const char* name, int depth) noexcept {
  int fd = ::openat(folder_fd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0 && errno == EACCES) {
    // A file the editor made read-only: it is the caller's own, so it can be made writable.
    ::fchmodat(folder_fd, name, kPrivateFile, 0);
    fd = ::openat(folder_fd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  }
  if (fd >= 0) {
    overwrite_with_zeros(fd);
    ::close(fd);
  }
  if (::unlinkat(folder_fd, name, 0) != 0 && (errno == EISDIR || errno == EPERM)) {
    wipe_subfolder(folder_fd, name, depth);
  }
}

bool is_dot_entry(const char* name) noexcept {
  return std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0;
}

// Wipes every entry once; returns how many it found.
int wipe_pass(int folder_fd, int depth) noexcept {
  int found = 0;
  alignas(LinuxDirent64) char buffer[kListingBuffer];
  ::lseek(folder_fd, 0, SEEK_SET);
  for (;;) {
    const long got = ::syscall(SYS_getdents64, folder_fd, buffer, sizeof buffer);
    if (got <= 0) {
      return found;
    }
    for (long offset = 0; offset < got;) {
      const auto* entry = reinterpret_cast<const LinuxDirent64*>(buffer + offset);
      if (!is_dot_entry(entry->name)) {
        wipe_entry(folder_fd, entry->name, depth);
        ++found;
      }
      offset += entry->length;
    }
  }
}

void wipe_folder(const char* folder) noexcept {
  const int fd = ::open(folder, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    return;
  }
  ::fchmod(fd, kPrivateFolder);
  for (int pass = 0; pass < kWipePasses && wipe_pass(fd, 0) > 0; ++pass) {
  }
  ::close(fd);
  ::rmdir(folder);
}

// Stops the editor for good first (SIGKILL: an editor that catches the signal could write a
// recovery copy of the plaintext while it exits), then wipes, then dies of the same signal. The
// whole process group is killed, because the shell that starts the editor may not exec it.
void wipe_on_signal(int signal) {
  if (g_armed) {
    if (g_editor > 0) {
      ::kill(-g_editor, SIGKILL);
      ::waitpid(g_editor, nullptr, 0);
    }
    wipe_folder(g_folder);
  }
  ::signal(signal, SIG_DFL);
  ::raise(signal);
}

void install_handlers() {
  struct sigaction action {};
  action.sa_handler = wipe_on_signal;
  sigfillset(&action.sa_mask);
  for (std::size_t i = 0; i < kWipeSignals.size(); ++i) {
    ::sigaction(kWipeSignals[i], nullptr, &g_previous[i]);
    // A signal the caller chose to ignore (nohup) stays ignored.
    if (g_previous[i].sa_handler != SIG_IGN) {
      ::sigaction(kWipeSignals[i], &action, nullptr);
    }
  }
  g_armed = 1;
}

void restore_handlers() {
  for (std::size_t i = 0; i < kWipeSignals.size(); ++i) {
    ::sigaction(kWipeSignals[i], &g_previous[i], nullptr);
  }
  g_armed = 0;
}

bool is_memory_backed(const std::filesystem::path& folder) {
  struct statfs status {};
  if (::statfs(folder.c_str(), &status) != 0) {
    return false;
  }
  const auto type = static_cast<unsigned long>(status.f_type);
  return type == TMPFS_MAGIC || type == RAMFS_MAGIC;
}

[[noreturn]] void fail_runtime_folder(const std::filesystem::path& base, const std::string& why) {
  throw Failure(base.string() + ": " + why +
                "; the plaintext needs a folder on a memory-backed file system (tmpfs or "
                "ramfs): point XDG_RUNTIME_DIR at one");
}

std::filesystem::path runtime_base() {
  const char* runtime = std::getenv(kRuntimeVariable);
  const bool from_variable = runtime != nullptr && *runtime;
  const std::filesystem::path base = from_variable ? runtime : kSharedMemory;
  const std::string origin = from_variable ? " (XDG_RUNTIME_DIR names it)" : "";
  struct stat status {};
  if (::stat(base.c_str(), &status) != 0) {
    fail_runtime_folder(base, (errno == ENOENT ? "does not exist" : std::strerror(errno)) + origin);
  }
  if (!S_ISDIR(status.st_mode)) {
    fail_runtime_folder(base, "is not a folder" + origin);
  }
  if (!is_memory_backed(base)) {
    throw Failure(base.string() +
                  ": not a memory-backed file system (tmpfs or ramfs); refusing to write "
                  "plaintext there. Point XDG_RUNTIME_DIR at a tmpfs folder");
  }
  return base;
}

// mkdtemp creates the folder with mode 0700: only the caller can list or open what is inside.
std::filesystem::path make_private_folder() {
  std::string pattern = (runtime_base() / kFolderPattern).string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw Failure(pattern + ": cannot create a private folder: " + std::strerror(errno));
  }
  return pattern;
}

void write_content(const std::filesystem::path& file, std::span<const std::uint8_t> content) {
  const int fd =
      ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, kPrivateFile);
  if (fd < 0) {
    throw Failure(file.string() + ": " + std::strerror(errno));
  }
  while (!content.empty()) {
    const ssize_t wrote = ::write(fd, content.data(), content.size());
    if (wrote < 0 && errno == EINTR) {
      continue;
    }
    if (wrote < 0) {
      const int error = errno;
      ::close(fd);
      throw Failure(file.string() + ": write: " + std::strerror(error));
    }
    content = content.subspan(static_cast<std::size_t>(wrote));
  }
  ::close(fd);
}

// The editor runs in a process group of its own, which a signal handler can kill as a whole.
// On a terminal that group also gets the terminal's foreground: a Ctrl-C typed in the editor
// (vi users press it often) then reaches the editor only, while a SIGINT sent to secretfs
// itself still ends the edit and wipes the file.
class TerminalHandover {
 public:
  explicit TerminalHandover(pid_t editor) : active_(::isatty(STDIN_FILENO) == 1) {
    if (active_) {
      give_terminal_to(editor);
    }
  }
  ~TerminalHandover() {
    if (active_) {
      give_terminal_to(::getpgrp());
    }
  }
  TerminalHandover(const TerminalHandover&) = delete;
  TerminalHandover& operator=(const TerminalHandover&) = delete;

 private:
  // A background process that changes the terminal's foreground group gets SIGTTOU.
  static void give_terminal_to(pid_t group) {
    sigset_t block, previous;
    sigemptyset(&block);
    sigaddset(&block, SIGTTOU);
    ::sigprocmask(SIG_BLOCK, &block, &previous);
    ::tcsetpgrp(STDIN_FILENO, group);
    ::sigprocmask(SIG_SETMASK, &previous, nullptr);
  }

  bool active_;
};

int wait_for(pid_t editor) {
  for (;;) {
    int status = 0;
    const pid_t got = ::waitpid(editor, &status, WUNTRACED);
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got < 0) {
      throw Failure(std::string("waiting for the editor: ") + std::strerror(errno));
    }
    // Stopping the editor (Ctrl-Z) would leave secretfs waiting with no way back to the
    // shell; the edit carries on instead.
    if (WIFSTOPPED(status)) {
      ::kill(editor, SIGCONT);
      continue;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : kSignalExitBase + WTERMSIG(status);
  }
}

SecretBytes read_regular(int fd) {
  struct stat status {};
  if (::fstat(fd, &status) != 0 || !S_ISREG(status.st_mode) || status.st_uid != ::geteuid()) {
    throw Failure(
        "the editor replaced the file with something other than a regular file of "
        "your own; refusing to read it");
  }
  SecretBytes content(static_cast<std::size_t>(status.st_size));
  std::size_t got = 0;
  while (got < content.size()) {
    const ssize_t n = ::read(fd, content.data() + got, content.size() - got);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      throw Failure(std::string("reading the edited file: ") + std::strerror(errno));
    }
    if (n == 0) {
      break;
    }
    got += static_cast<std::size_t>(n);
  }
  content.shrink(got);
  return content;
}

}  // namespace

ScratchFile::ScratchFile(const std::string& name, std::span<const std::uint8_t> content)
    : folder_(make_private_folder()), file_(folder_ / name) {
  std::strncpy(g_folder, folder_.c_str(), sizeof g_folder - 1);
  install_handlers();
  try {
    write_content(file_, content);
  } catch (...) {
    wipe_folder(folder_.c_str());
    restore_handlers();
    throw;
  }
}

ScratchFile::~ScratchFile() {
  wipe_folder(folder_.c_str());
  restore_handlers();
}

// The editor could have put anything at the file's path: a link to /etc/shadow, a folder, a
// named pipe. Only a regular file of the caller's own is read back, through a descriptor
// opened without following links, so what is encrypted is what the editor wrote.
SecretBytes ScratchFile::read() const {
  const int fd = ::open(file_.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    throw Failure(file_.filename().string() + ": the editor left no file to read back (" +
                  std::strerror(errno) + ")");
  }
  try {
    SecretBytes content = read_regular(fd);
    ::close(fd);
    return content;
  } catch (...) {
    ::close(fd);
    throw;
  }
}

int ScratchFile::edit(const std::string& editor) const {
  // The editor text goes to the shell as it is, like git does, so that EDITOR="code --wait"
  // works; the file name is passed as an argument and never parsed by the shell.
  const std::string command = editor + " \"$@\"";
  const pid_t pid = ::fork();
  if (pid < 0) {
    throw Failure(std::string("cannot start the editor: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    ::execl("/bin/sh", "sh", "-c", command.c_str(), "sh", file_.c_str(), nullptr);
    ::_exit(kSignalExitBase - 1);
  }
  // Both sides set the group, so that it exists whichever runs first.
  ::setpgid(pid, pid);
  g_editor = pid;
  int status = 0;
  {
    const TerminalHandover handover(pid);
    status = wait_for(pid);
  }
  g_editor = 0;
  return status;
}

}  // namespace secretfs::cli
