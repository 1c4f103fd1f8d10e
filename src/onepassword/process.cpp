// `op` runs with posix_spawn rather than fork: it is safe in a daemon with many threads, and
// every step of the child's set-up (descriptors, process group, signals) is declared before it
// starts, so no code of ours runs between fork and exec.
#include "process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <system_error>
#include <thread>

#include "error_lines.hpp"
#include "secretfs/unique_fd.hpp"

namespace secretfs::onepassword {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kTokenVariable = "OP_SERVICE_ACCOUNT_TOKEN=";
// Only the system folders: `op` is one static binary and needs no other program; the daemon's
// own PATH may hold folders writable by others.
constexpr std::string_view kChildPath = "PATH=/usr/bin:/bin";
constexpr std::size_t kMaxDiagnostics =
    std::size_t{64} * 1024;  // `op` writes one line; more is noise
constexpr std::size_t kReadSize = std::size_t{16} * 1024;
constexpr mode_t kPrivateFolder = 0700;
constexpr mode_t kGroupOrOtherAccess = 077;
constexpr mode_t kPermissionBits = 07777;
constexpr auto kExitPollInterval = std::chrono::milliseconds(5);
// How often a wait looks at the stop token.
constexpr auto kStopPollInterval = std::chrono::milliseconds(100);
// An item holds a few values and their labels: its JSON may be this many times one value.
constexpr std::uint64_t kItemSizeFactor = 4;
constexpr std::uint64_t kItemSizeSlack = std::uint64_t{1} << 20;

// The process group of the `op` that runs now (0: none), for kill_op_on_interrupt's handler.
std::atomic<pid_t> running_group{0};
static_assert(std::atomic<pid_t>::is_always_lock_free, "read in a signal handler");

// Async-signal-safe: kill and raise only. SA_RESETHAND has put the default action back, and
// the signal, blocked while this runs, ends the process once the handler returns.
extern "C" void kill_op_and_die(int signal) {
  if (const pid_t group = running_group.load(); group > 0) {
    ::kill(-group, SIGKILL);
  }
  ::raise(signal);
}

std::string octal_mode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & kPermissionBits));
  return text;
}

std::string describe(std::chrono::milliseconds duration) {
  const auto count = duration.count();
  return count % 1000 == 0 ? std::to_string(count / 1000) + " s" : std::to_string(count) + " ms";
}

// `op` keeps its session files in this folder and refuses one others can read; a folder
// someone else owns or can change could hand `op` a planted configuration.
std::string config_dir_problem(const std::filesystem::path& folder) {
  const std::string name = "`op`'s configuration folder " + folder.string();
  if (folder.empty()) {
    return "no configuration folder for `op` was given";
  }
  std::error_code ignored;
  std::filesystem::create_directories(folder.parent_path(), ignored);
  if (::mkdir(folder.c_str(), kPrivateFolder) == 0) {
    ::chmod(folder.c_str(), kPrivateFolder);  // exactly 0700 whatever the umask
  } else if (errno != EEXIST) {
    return name + ": cannot create it: " + std::strerror(errno);
  }
  struct stat status {};
  if (::lstat(folder.c_str(), &status) != 0) {
    return name + ": " + std::strerror(errno);
  }
  if (!S_ISDIR(status.st_mode)) {
    return name + ": not a folder (a symbolic link is refused too)";
  }
  if (status.st_uid != ::geteuid()) {
    return name + ": owned by uid " + std::to_string(status.st_uid) + ", want uid " +
           std::to_string(::geteuid()) + "; chown it or name another folder";
  }
  if ((status.st_mode & kGroupOrOtherAccess) != 0) {
    return name + ": mode " + octal_mode(status.st_mode) +
           " gives access to group or others; chmod 700 it";
  }
  return {};
}

// Everything `op` sees of its environment. HOME points into the private folder so that `op`
// finds no user's ~/.config/op; OP_CACHE=false because the cache is a background process that
// would keep values in memory we do not control and outlive the run. OP_FORMAT is not set: the
// one command whose format matters gets --format json. OP_CONNECT_* are absent because they
// would take precedence over the token.
class ChildEnvironment {
 public:
  ChildEnvironment(const SecretBytes& token, const std::filesystem::path& config_dir)
      : token_entry_(kTokenVariable.size() + token.size() + 1),
        plain_{std::string(kChildPath), "HOME=" + config_dir.string(), "OP_CACHE=false",
               "OP_CONFIG_DIR=" + config_dir.string()} {
    std::memcpy(token_entry_.data(), kTokenVariable.data(), kTokenVariable.size());
    std::copy(token.span().begin(), token.span().end(),
              token_entry_.data() + kTokenVariable.size());
    token_entry_.data()[token_entry_.size() - 1] = '\0';

    for (std::string& entry : plain_) {
      pointers_.push_back(entry.data());
    }
    pointers_.push_back(reinterpret_cast<char*>(token_entry_.data()));
    pointers_.push_back(nullptr);
  }

  char* const* get() { return pointers_.data(); }

 private:
  SecretBytes token_entry_;  // "OP_SERVICE_ACCOUNT_TOKEN=<token>\0"
  std::vector<std::string> plain_;
  std::vector<char*> pointers_;
};

struct Pipe {
  UniqueFd read{-1};
  UniqueFd write{-1};
};

Pipe make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    throw std::system_error(errno, std::generic_category(), "pipe2");
  }
  Pipe pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
  // Only our end: a read must never block past the deadline, while `op` keeps blocking writes.
  if (::fcntl(pipe.read.get(), F_SETFL, O_NONBLOCK) != 0) {
    throw std::system_error(errno, std::generic_category(), "fcntl");
  }
  return pipe;
}

// The child's descriptors: stdin from /dev/null (`op` must never wait for an answer),
// stdout and stderr into our pipes, nothing else inherited.
class SpawnActions {
 public:
  SpawnActions(const Pipe& output, const Pipe& diagnostics) {
    ::posix_spawn_file_actions_init(&actions_);
    ::posix_spawn_file_actions_addopen(&actions_, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    ::posix_spawn_file_actions_adddup2(&actions_, output.write.get(), STDOUT_FILENO);
    ::posix_spawn_file_actions_adddup2(&actions_, diagnostics.write.get(), STDERR_FILENO);
    ::posix_spawn_file_actions_addclosefrom_np(&actions_, STDERR_FILENO + 1);
    // Not in the caller's folder, which may be anyone's (/tmp): nothing there is `op`'s.
    ::posix_spawn_file_actions_addchdir_np(&actions_, "/");
  }
  ~SpawnActions() { ::posix_spawn_file_actions_destroy(&actions_); }
  SpawnActions(const SpawnActions&) = delete;
  SpawnActions& operator=(const SpawnActions&) = delete;

  const posix_spawn_file_actions_t* get() const { return &actions_; }

 private:
  posix_spawn_file_actions_t actions_;
};

// Its own process group, so that a timeout kills whatever `op` started too; no blocked or
// ignored signals inherited from the daemon, so that `op` dies of SIGPIPE or SIGTERM as usual.
class SpawnAttributes {
 public:
  SpawnAttributes() {
    ::posix_spawnattr_init(&attributes_);
    sigset_t none;
    sigset_t all;
    ::sigemptyset(&none);
    ::sigfillset(&all);
    ::posix_spawnattr_setsigmask(&attributes_, &none);
    ::posix_spawnattr_setsigdefault(&attributes_, &all);
    ::posix_spawnattr_setpgroup(&attributes_, 0);
    ::posix_spawnattr_setflags(
        &attributes_, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  }
  ~SpawnAttributes() { ::posix_spawnattr_destroy(&attributes_); }
  SpawnAttributes(const SpawnAttributes&) = delete;
  SpawnAttributes& operator=(const SpawnAttributes&) = delete;

  const posix_spawnattr_t* get() const { return &attributes_; }

 private:
  posix_spawnattr_t attributes_;
};

// What the child wrote, read until both pipes close, the output grows too large or time runs out.
struct Collected {
  SecretBytes output{kReadSize};
  std::size_t filled = 0;
  std::string diagnostics;
  bool too_large = false;
  bool timed_out = false;
  bool stopped = false;
};

// Room for more output: a larger locked buffer with the bytes so far copied over, since a
// SecretBytes never grows in place. At most limit + 1 bytes, enough to see that it is exceeded.
void make_room(Collected& collected, std::uint64_t limit) {
  if (collected.filled < collected.output.size()) {
    return;
  }
  const std::uint64_t most = limit == UINT64_MAX ? limit : limit + 1;
  const std::size_t size = static_cast<std::size_t>(
      std::min<std::uint64_t>(std::uint64_t{collected.output.size()} * 2, most));
  SecretBytes larger(std::max(size, collected.output.size() + 1));
  std::memcpy(larger.data(), collected.output.data(), collected.filled);
  collected.output = std::move(larger);
}

// Reads what is ready on `fd`; false once it is closed.
bool read_output(int fd, Collected& collected, std::uint64_t limit) {
  make_room(collected, limit);
  const ssize_t count = ::read(fd, collected.output.data() + collected.filled,
                               collected.output.size() - collected.filled);
  if (count > 0) {
    collected.filled += static_cast<std::size_t>(count);
    collected.too_large = collected.filled > limit;
  }
  return count > 0 || (count < 0 && (errno == EINTR || errno == EAGAIN));
}

bool read_diagnostics(int fd, Collected& collected) {
  char buffer[4096];
  const ssize_t count = ::read(fd, buffer, sizeof buffer);
  if (count > 0) {
    const std::size_t room =
        kMaxDiagnostics - std::min(kMaxDiagnostics, collected.diagnostics.size());
    collected.diagnostics.append(buffer, std::min(room, static_cast<std::size_t>(count)));
  }
  return count > 0 || (count < 0 && (errno == EINTR || errno == EAGAIN));
}

int milliseconds_until(Clock::time_point deadline) {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::max<std::int64_t>(0, left.count()));
}

Collected collect(Pipe& output, Pipe& diagnostics, Clock::time_point deadline,
                  std::uint64_t limit, const std::stop_token& stop) {
  Collected collected;
  pollfd fds[2] = {{output.read.get(), POLLIN, 0}, {diagnostics.read.get(), POLLIN, 0}};
  while ((fds[0].fd >= 0 || fds[1].fd >= 0) && !collected.too_large) {
    if (stop.stop_requested()) {
      collected.stopped = true;
      break;
    }
    const int wait = std::min(milliseconds_until(deadline),
                              static_cast<int>(kStopPollInterval.count()));
    if (wait == 0) {
      collected.timed_out = true;
      break;
    }
    if (::poll(fds, 2, wait) < 0) {
      if (errno == EINTR) {
        continue;  // revents are stale; poll again
      }
      collected.timed_out = true;  // poll fails only without memory; kill `op` as on a timeout
      break;
    }
    if (fds[0].revents != 0 && !read_output(fds[0].fd, collected, limit)) {
      fds[0].fd = -1;
    }
    if (fds[1].revents != 0 && !read_diagnostics(fds[1].fd, collected)) {
      fds[1].fd = -1;
    }
  }
  return collected;
}

// Waits for `pid` to exit until the deadline without reaping it, so that its process group
// cannot have been reused when it is killed. True when it exited in time.
bool exited_by(pid_t pid, Clock::time_point deadline, const std::stop_token& stop) {
  while (true) {
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT | WNOHANG) == 0 &&
        info.si_pid == pid) {
      return true;
    }
    if (Clock::now() >= deadline || stop.stop_requested()) {
      return false;
    }
    std::this_thread::sleep_for(kExitPollInterval);
  }
}

// Kills what is left of the process group (anything `op` started and left behind), then reaps.
int reap(pid_t pid) {
  ::kill(-pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

// `program` itself when it names a path; else the first executable file of that name in the
// caller's PATH, as a shell finds it.
std::variant<std::filesystem::path, Error> find_program(const std::filesystem::path& program) {
  if (program.string().find('/') != std::string::npos) {
    return std::filesystem::absolute(program);
  }
  const char* path = std::getenv("PATH");
  std::string_view folders = path != nullptr ? path : "/usr/bin:/bin";
  while (true) {
    const auto end = folders.find(':');
    const std::string_view folder = folders.substr(0, end);
    const auto candidate = std::filesystem::path(folder.empty() ? "." : folder) / program;
    if (::access(candidate.c_str(), X_OK) == 0 && std::filesystem::is_regular_file(candidate)) {
      return std::filesystem::absolute(candidate);
    }
    if (end == std::string_view::npos) {
      break;
    }
    folders.remove_prefix(end + 1);
  }
  return Error{Failure::unusable, "cannot run `" + program.string() +
                                      "`: not found in PATH; give its full path as op"};
}

// Why another user could change `entry` (the program, or a folder above it), or "".
std::string changeable_by_others(const std::filesystem::path& entry, bool is_program) {
  struct stat status {};
  if (::stat(entry.c_str(), &status) != 0) {
    return entry.string() + ": " + std::strerror(errno);
  }
  if (status.st_uid != 0 && status.st_uid != ::geteuid()) {
    return entry.string() + " belongs to uid " + std::to_string(status.st_uid) +
           "; it must belong to root (or to uid " + std::to_string(::geteuid()) + ")";
  }
  const bool sticky_folder = !is_program && (status.st_mode & S_ISVTX) != 0;
  if ((status.st_mode & (S_IWGRP | S_IWOTH)) != 0 && !sticky_folder) {
    return entry.string() + " (mode " + octal_mode(status.st_mode) +
           ") may be changed by group or others; chmod go-w it";
  }
  return {};
}

std::string program_name(const Settings& settings) {
  return "`" + settings.op.string() + "`";
}

Output outcome(const Settings& settings, Collected& collected, bool timed_out, int status,
               Printed printed, std::uint64_t limit) {
  if (collected.stopped) {
    return Error{Failure::failed, program_name(settings) + " was stopped: secretfs is stopping"};
  }
  if (timed_out) {
    return Error{Failure::timeout, program_name(settings) + " did not finish within " +
                                       describe(settings.timeout) + " and was killed"};
  }
  if (collected.too_large) {
    if (printed == Printed::value) {
      return Error{Failure::too_large, "the value is larger than " + std::to_string(limit) +
                                           " bytes (max_secret_size)"};
    }
    return Error{Failure::failed, program_name(settings) + " printed more than " +
                                      std::to_string(limit) + " bytes"};
  }
  if (WIFSIGNALED(status)) {
    const char* signal = ::sigabbrev_np(WTERMSIG(status));
    return Error{Failure::failed, program_name(settings) + " was killed by signal " +
                                      (signal != nullptr ? "SIG" + std::string(signal)
                                                         : std::to_string(WTERMSIG(status)))};
  }
  if (WEXITSTATUS(status) != 0) {
    return error_from_diagnostics(collected.diagnostics, WEXITSTATUS(status));
  }
  collected.output.shrink(collected.filled);
  return std::move(collected.output);
}

}  // namespace

std::variant<std::filesystem::path, Error> trusted_program(const std::filesystem::path& program) {
  const auto found = find_program(program);
  if (const auto* error = std::get_if<Error>(&found)) {
    return *error;
  }
  const auto& path = std::get<std::filesystem::path>(found);
  std::error_code error;
  const auto real = std::filesystem::canonical(path, error);
  if (error) {
    return Error{Failure::unusable, "cannot run `" + program.string() + "`: " +
                                        std::generic_category().message(error.value())};
  }
  // The program and every folder above it, and also every folder of the path as written: a
  // link on the way (the program itself, or a folder) leads elsewhere only as long as no other
  // user may replace it, which the folder that holds it and the link's owner decide.
  for (auto entry = path; entry != entry.root_path(); entry = entry.parent_path()) {
    struct stat status {};
    if (::lstat(entry.c_str(), &status) == 0 && S_ISLNK(status.st_mode) &&
        status.st_uid != 0 && status.st_uid != ::geteuid()) {
      return Error{Failure::unusable, "refusing to run `" + program.string() + "` with the "
                                      "token: " + entry.string() + " is a link that belongs "
                                      "to uid " + std::to_string(status.st_uid) + ", who may "
                                      "point it elsewhere"};
    }
  }
  for (const auto& start : {real, path.parent_path()}) {
    for (auto entry = start; ; entry = entry.parent_path()) {
      if (std::string problem = changeable_by_others(entry, entry == real); !problem.empty()) {
        return Error{Failure::unusable, "refusing to run `" + program.string() + "` with the "
                                        "token: " + problem};
      }
      if (entry == entry.root_path()) {
        break;
      }
    }
  }
  return real;
}

void kill_op_on_interrupt() {
  struct sigaction action {};
  action.sa_handler = kill_op_and_die;
  action.sa_flags = SA_RESETHAND;
  ::sigemptyset(&action.sa_mask);
  for (const int signal : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) {
    ::sigaction(signal, &action, nullptr);
  }
}

Output run_op(const Settings& settings, const SecretBytes& token,
              const std::vector<std::string>& arguments, Printed printed) {
  if (std::string problem = config_dir_problem(settings.config_dir); !problem.empty()) {
    return Error{Failure::failed, std::move(problem)};
  }
  auto program = trusted_program(settings.op);
  if (auto* error = std::get_if<Error>(&program)) {
    return std::move(*error);
  }
  const std::uint64_t limit = printed == Printed::value
                                  ? settings.max_value_size
                                  : settings.max_value_size * kItemSizeFactor + kItemSizeSlack;
  ChildEnvironment environment(token, settings.config_dir);
  std::vector<std::string> words{std::get<std::filesystem::path>(program).string()};
  words.insert(words.end(), arguments.begin(), arguments.end());
  std::vector<char*> argv;
  for (std::string& word : words) {
    argv.push_back(word.data());
  }
  argv.push_back(nullptr);

  Pipe output;
  Pipe diagnostics;
  try {
    output = make_pipe();
    diagnostics = make_pipe();
  } catch (const std::system_error& error) {
    return Error{Failure::failed, "cannot run " + program_name(settings) + ": " + error.what()};
  }
  const SpawnActions actions(output, diagnostics);
  const SpawnAttributes attributes;
  // The program found and checked above, by its absolute path: a bare name was looked up in
  // the caller's PATH (as a shell would); the child still gets only the environment above.
  pid_t pid = -1;
  const int failed = ::posix_spawn(&pid, words[0].c_str(), actions.get(), attributes.get(),
                                   argv.data(), environment.get());
  if (failed != 0) {
    return Error{Failure::unusable,
                 "cannot run " + program_name(settings) + ": " + std::strerror(failed)};
  }
  running_group.store(pid);
  output.write.close();
  diagnostics.write.close();

  const Clock::time_point deadline = Clock::now() + settings.timeout;
  Collected collected = collect(output, diagnostics, deadline, limit, settings.stop);
  const bool timed_out =
      collected.timed_out ||
      (!collected.too_large && !collected.stopped && !exited_by(pid, deadline, settings.stop));
  collected.stopped = collected.stopped || settings.stop.stop_requested();
  running_group.store(0);  // before the reap, after which the number may be another's
  const int status = reap(pid);
  return outcome(settings, collected, timed_out, status, printed, limit);
}

}  // namespace secretfs::onepassword
