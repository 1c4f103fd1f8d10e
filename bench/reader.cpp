// bench_reader: the readers behind bench/run. Each mode prints one JSON object on standard
// output and exits 1, naming the path and the error, when anything fails.
//
//   bench_reader loop --seconds S --processes N PATH...
//       N processes, released together, each opening, reading to EOF and closing PATH...
//       in turn for S seconds: total ops/s and p50/p99 of one open + read + close.
//   bench_reader readable --list FILE --log FILE -- COMMAND...
//       starts COMMAND (a daemon that mounts), then reads every path listed in FILE once:
//       the seconds from start to the last byte, then stops COMMAND with SIGTERM.
//   bench_reader stream PATH
//       reads PATH once to EOF: bytes and seconds.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using Nanoseconds = std::uint64_t;

// Secrets are small: one read fills the buffer, the second returns EOF, as in most services.
constexpr std::size_t kSmallReadBuffer = 4096;
// Large reads: the kernel splits them into FUSE requests of its own maximum size anyway.
constexpr std::size_t kStreamBuffer = 1 << 20;
// Cycles each process runs before it starts recording, so that first-open costs (dentry
// creation, file key unwrap) do not land in the percentiles.
constexpr int kWarmupCycles = 200;
// How often `readable` retries a path that is not there yet: short next to the ~ms it
// measures, long enough not to steal the CPU from the daemon that is starting.
constexpr auto kRetryInterval = std::chrono::microseconds(100);
constexpr auto kReadableDeadline = std::chrono::seconds(600);
constexpr auto kStopGrace = std::chrono::seconds(10);
constexpr double kNanosecondsPerSecond = 1e9;
constexpr double kNanosecondsPerMicrosecond = 1e3;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "bench_reader: %s\n", message.c_str());
  std::exit(kExitFailure);
}

[[noreturn]] void fail_errno(const std::string& what) {
  fail(what + ": " + std::strerror(errno));
}

Nanoseconds since(Clock::time_point start) {
  return static_cast<Nanoseconds>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count());
}

double seconds(Nanoseconds elapsed) {
  return static_cast<double>(elapsed) / kNanosecondsPerSecond;
}

// Opens, reads to EOF and closes; returns the bytes read, or -1 with errno set by the open.
long read_whole(const std::string& path, std::vector<char>& buffer) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return -1;
  }
  long total = 0;
  for (;;) {
    const ssize_t got = ::read(fd, buffer.data(), buffer.size());
    if (got < 0) {
      fail_errno("read " + path);
    }
    if (got == 0) {
      break;
    }
    total += got;
  }
  if (::close(fd) != 0) {
    fail_errno("close " + path);
  }
  return total;
}

void read_or_fail(const std::string& path, std::vector<char>& buffer) {
  if (read_whole(path, buffer) < 0) {
    fail_errno("open " + path);
  }
}

void write_all(int fd, const void* bytes, std::size_t size) {
  const char* next = static_cast<const char*>(bytes);
  while (size > 0) {
    const ssize_t written = ::write(fd, next, size);
    if (written < 0) {
      fail_errno("write to the parent");
    }
    next += written;
    size -= static_cast<std::size_t>(written);
  }
}

// ---- loop ---------------------------------------------------------------------------------

struct LoopResult {
  Nanoseconds elapsed = 0;
  std::vector<Nanoseconds> latencies;
};

LoopResult run_loop(const std::vector<std::string>& paths, Nanoseconds duration) {
  std::vector<char> buffer(kSmallReadBuffer);
  for (int cycle = 0; cycle < kWarmupCycles; ++cycle) {
    read_or_fail(paths[static_cast<std::size_t>(cycle) % paths.size()], buffer);
  }
  LoopResult result;
  const auto start = Clock::now();
  for (std::size_t cycle = 0; since(start) < duration; ++cycle) {
    const auto before = Clock::now();
    read_or_fail(paths[cycle % paths.size()], buffer);
    result.latencies.push_back(since(before));
  }
  result.elapsed = since(start);
  return result;
}

// A child waits until the parent closes `start_fd`'s other end, so that all readers begin
// together, then sends its elapsed time, its count and its latencies through `result_fd`.
[[noreturn]] void loop_child(const std::vector<std::string>& paths, Nanoseconds duration,
                             int start_fd, int result_fd) {
  char ignored;
  if (::read(start_fd, &ignored, 1) < 0) {
    fail_errno("wait for the start");
  }
  const LoopResult result = run_loop(paths, duration);
  const std::uint64_t header[] = {result.elapsed, result.latencies.size()};
  write_all(result_fd, header, sizeof header);
  write_all(result_fd, result.latencies.data(), result.latencies.size() * sizeof(Nanoseconds));
  std::_Exit(0);
}

void read_all(int fd, void* bytes, std::size_t size) {
  char* next = static_cast<char*>(bytes);
  while (size > 0) {
    const ssize_t got = ::read(fd, next, size);
    if (got <= 0) {
      fail("a reader process stopped before sending its results");
    }
    next += got;
    size -= static_cast<std::size_t>(got);
  }
}

LoopResult receive(int fd) {
  std::uint64_t header[2];
  read_all(fd, header, sizeof header);
  LoopResult result{header[0], std::vector<Nanoseconds>(header[1])};
  read_all(fd, result.latencies.data(), result.latencies.size() * sizeof(Nanoseconds));
  ::close(fd);
  return result;
}

void wait_for(pid_t pid, const std::string& what) {
  int status = 0;
  if (::waitpid(pid, &status, 0) < 0) {
    fail_errno("wait for " + what);
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fail(what + " failed");
  }
}

double percentile_us(const std::vector<Nanoseconds>& sorted, double fraction) {
  const auto rank = static_cast<std::size_t>(fraction * static_cast<double>(sorted.size() - 1));
  return static_cast<double>(sorted[rank]) / kNanosecondsPerMicrosecond;
}

int loop_mode(double duration_seconds, int processes, const std::vector<std::string>& paths) {
  int start[2];
  if (::pipe(start) != 0) {
    fail_errno("pipe");
  }
  const auto duration = static_cast<Nanoseconds>(duration_seconds * kNanosecondsPerSecond);
  std::vector<pid_t> children;
  std::vector<int> results;
  for (int child = 0; child < processes; ++child) {
    int result[2];
    if (::pipe(result) != 0) {
      fail_errno("pipe");
    }
    const pid_t pid = ::fork();
    if (pid < 0) {
      fail_errno("fork");
    }
    if (pid == 0) {
      ::close(start[1]);
      ::close(result[0]);
      loop_child(paths, duration, start[0], result[1]);
    }
    ::close(result[1]);
    children.push_back(pid);
    results.push_back(result[0]);
  }
  ::close(start[0]);
  ::close(start[1]);

  double ops_per_second = 0;
  std::vector<Nanoseconds> latencies;
  for (std::size_t child = 0; child < children.size(); ++child) {
    const LoopResult result = receive(results[child]);
    wait_for(children[child], "reader process " + std::to_string(child + 1));
    ops_per_second += static_cast<double>(result.latencies.size()) / seconds(result.elapsed);
    latencies.insert(latencies.end(), result.latencies.begin(), result.latencies.end());
  }
  if (latencies.empty()) {
    fail("no open + read + close finished in the time given");
  }
  std::sort(latencies.begin(), latencies.end());
  std::printf(
      "{\"processes\": %d, \"ops\": %zu, \"ops_per_s\": %.1f, \"p50_us\": %.2f, "
      "\"p99_us\": %.2f}\n",
      processes, latencies.size(), ops_per_second, percentile_us(latencies, 0.50),
      percentile_us(latencies, 0.99));
  return 0;
}

// ---- readable -----------------------------------------------------------------------------

std::vector<std::string> read_list(const std::string& list) {
  std::ifstream in(list);
  if (!in) {
    fail("cannot read the list " + list);
  }
  std::vector<std::string> paths;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) {
      paths.push_back(line);
    }
  }
  return paths;
}

// The daemon gets SIGTERM if this process dies first, so an interrupted run leaves no daemon.
pid_t start_command(char** command, const std::string& log) {
  const pid_t pid = ::fork();
  if (pid < 0) {
    fail_errno("fork");
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ::dup2(fd, STDOUT_FILENO) < 0 || ::dup2(fd, STDERR_FILENO) < 0) {
      fail_errno("open the log " + log);
    }
    ::execvp(command[0], command);
    fail_errno(std::string("start ") + command[0]);
  }
  return pid;
}

bool still_running(pid_t pid) {
  int status = 0;
  return ::waitpid(pid, &status, WNOHANG) == 0;
}

// Paths appear only once the daemon has mounted: until then open fails with ENOENT (the empty
// mount point) or ENOTCONN (a mount whose daemon is not answering yet).
void read_when_there(const std::string& path, pid_t daemon, const std::string& log,
                     Clock::time_point start, std::vector<char>& buffer) {
  while (read_whole(path, buffer) < 0) {
    if (errno != ENOENT && errno != ENOTCONN) {
      fail_errno("open " + path);
    }
    if (!still_running(daemon)) {
      fail("the daemon exited before " + path + " was readable; see " + log);
    }
    if (Clock::now() - start > kReadableDeadline) {
      fail(path + " still not readable after " + std::to_string(kReadableDeadline.count()) + " s");
    }
    std::this_thread::sleep_for(kRetryInterval);
  }
}

void stop(pid_t pid) {
  ::kill(pid, SIGTERM);
  const auto start = Clock::now();
  while (still_running(pid)) {
    if (Clock::now() - start > kStopGrace) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      fail("the daemon ignored SIGTERM for " + std::to_string(kStopGrace.count()) + " s");
    }
    std::this_thread::sleep_for(kRetryInterval);
  }
}

int readable_mode(const std::string& list, const std::string& log, char** command) {
  const std::vector<std::string> paths = read_list(list);
  std::vector<char> buffer(kSmallReadBuffer);
  const auto start = Clock::now();
  const pid_t daemon = start_command(command, log);
  for (const auto& path : paths) {
    read_when_there(path, daemon, log, start, buffer);
  }
  const Nanoseconds elapsed = since(start);
  stop(daemon);
  std::printf("{\"secrets\": %zu, \"seconds\": %.6f}\n", paths.size(), seconds(elapsed));
  return 0;
}

// ---- stream -------------------------------------------------------------------------------

int stream_mode(const std::string& path) {
  std::vector<char> buffer(kStreamBuffer);
  const auto start = Clock::now();
  const long bytes = read_whole(path, buffer);
  if (bytes < 0) {
    fail_errno("open " + path);
  }
  const Nanoseconds elapsed = since(start);
  std::printf("{\"bytes\": %ld, \"seconds\": %.6f}\n", bytes, seconds(elapsed));
  return 0;
}

// ---- command line -------------------------------------------------------------------------

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: bench_reader loop --seconds S --processes N PATH...\n"
               "       bench_reader readable --list FILE --log FILE -- COMMAND...\n"
               "       bench_reader stream PATH\n");
  std::exit(kExitUsage);
}

int loop_command(int argc, char** argv) {
  if (argc < 7 || std::string_view(argv[2]) != "--seconds" ||
      std::string_view(argv[4]) != "--processes") {
    usage();
  }
  const double duration = std::atof(argv[3]);
  const int processes = std::atoi(argv[5]);
  if (duration <= 0 || processes <= 0) {
    usage();
  }
  return loop_mode(duration, processes, std::vector<std::string>(argv + 6, argv + argc));
}

int readable_command(int argc, char** argv) {
  if (argc < 8 || std::string_view(argv[2]) != "--list" || std::string_view(argv[4]) != "--log" ||
      std::string_view(argv[6]) != "--") {
    usage();
  }
  return readable_mode(argv[3], argv[5], argv + 7);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage();
  }
  const std::string_view mode = argv[1];
  if (mode == "loop") {
    return loop_command(argc, argv);
  }
  if (mode == "readable") {
    return readable_command(argc, argv);
  }
  if (mode == "stream" && argc == 3) {
    return stream_mode(argv[2]);
  }
  usage();
}
