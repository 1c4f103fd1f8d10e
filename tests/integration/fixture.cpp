#include "fixture.hpp"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sodium.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "secretfs/age/age.hpp"
#include "secretfs/age/x25519.hpp"

namespace secretfs::test {

namespace {

using namespace std::chrono_literals;
constexpr auto kMountWait = 15s;
constexpr auto kStopWait = 10s;
constexpr auto kPoll = 20ms;

constexpr std::size_t kMarkerBytes = 16;
constexpr std::size_t kScanBlock = 1 << 20;
// Regions larger than this are not scanned: under AddressSanitizer the daemon maps terabytes of
// shadow memory, which would take hours to read, and no secret is ever held in one that large.
constexpr unsigned long kLargestScannedRegion = 1UL << 32;

bool exited(pid_t pid, int& status) {
  return ::waitpid(pid, &status, WNOHANG) == pid;
}

// Unescapes the octal escapes (\040 for space) of /proc/self/mountinfo.
std::string unescape(const std::string& field) {
  std::string out;
  for (std::size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size()) {
      out += static_cast<char>(std::stoi(field.substr(i + 1, 3), nullptr, 8));
      i += 3;
    } else {
      out += field[i];
    }
  }
  return out;
}

}  // namespace

std::filesystem::path binary() {
  const char* path = std::getenv("SECRETFS_BINARY");
  REQUIRE(path != nullptr);
  return path;
}

std::string shell_quoted(const std::filesystem::path& path) {
  return "'" + path.string() + "'";
}

int run(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string output_of(const std::string& command) {
  std::string output;
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::array<char, 4096> buffer{};
  std::size_t got = 0;
  while ((got = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
    output.append(buffer.data(), got);
  }
  const int status = ::pclose(pipe);
  INFO("command: " << command);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  return output;
}

// A marker no other memory can hold by chance: "secretfs-marker-" and 32 random hex digits.
std::string unique_marker() {
  REQUIRE(sodium_init() >= 0);
  unsigned char random[kMarkerBytes];
  randombytes_buf(random, sizeof random);
  char hex[2 * kMarkerBytes + 1];
  sodium_bin2hex(hex, sizeof hex, random, sizeof random);
  return std::string("secretfs-marker-") + hex;
}

// How many times `needle` occurs in the readable memory of process `pid` (as root).
std::size_t occurrences_in_memory(pid_t pid, const std::string& needle) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  const int mem = ::open(("/proc/" + std::to_string(pid) + "/mem").c_str(), O_RDONLY);
  REQUIRE(mem >= 0);
  std::size_t hits = 0;
  std::vector<char> block(kScanBlock + needle.size());
  for (std::string line; std::getline(maps, line);) {
    std::istringstream fields(line);
    std::string range, permissions;
    fields >> range >> permissions;
    if (permissions[0] != 'r') {
      continue;
    }
    const auto dash = range.find('-');
    const unsigned long start = std::stoul(range.substr(0, dash), nullptr, 16);
    const unsigned long end = std::stoul(range.substr(dash + 1), nullptr, 16);
    if (end - start > kLargestScannedRegion) {
      continue;
    }
    for (unsigned long at = start; at < end; at += kScanBlock) {
      const std::size_t want = std::min<unsigned long>(block.size(), end - at);
      const ssize_t got = ::pread(mem, block.data(), want, static_cast<off_t>(at));
      if (got <= 0) {
        break;  // [vvar] and guard pages cannot be read
      }
      const std::string_view text(block.data(), static_cast<std::size_t>(got));
      for (auto found = text.find(needle); found != std::string_view::npos;
           found = text.find(needle, found + 1)) {
        // A match that starts in the overlap is counted by the next block.
        hits += found < kScanBlock ? 1 : 0;
      }
    }
  }
  ::close(mem);
  return hits;
}

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "secretfs-test.XXXXXX").string();
  REQUIRE(::mkdtemp(pattern.data()) != nullptr);
  path_ = pattern;
  // Readers running as other users must be able to reach a mount point inside.
  REQUIRE(::chmod(path_.c_str(), 0711) == 0);
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

void write_file(const std::filesystem::path& path, const std::string& content, mode_t mode) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
    REQUIRE(out.good());
  }
  REQUIRE(::chmod(path.c_str(), mode) == 0);
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

bool is_mounted(const std::filesystem::path& point) {
  std::ifstream mountinfo("/proc/self/mountinfo");
  std::string line;
  while (std::getline(mountinfo, line)) {
    // Fields: id parent major:minor root mount-point options ... - fstype source super-options
    std::istringstream fields(line);
    std::string id, parent, device, root, mount_point;
    fields >> id >> parent >> device >> root >> mount_point;
    const auto separator = line.find(" - ");
    if (separator == std::string::npos) {
      continue;
    }
    std::istringstream tail(line.substr(separator + 3));
    std::string type;
    tail >> type;
    if (unescape(mount_point) == point.string() && type == "fuse.secretfs") {
      return true;
    }
  }
  return false;
}

namespace {

// Listed as mounted, and answering: a dead mount left by a killed daemon is listed too, but
// answers ENOTCONN.
bool is_live(const std::filesystem::path& point) {
  constexpr long kFuseSuperMagic = 0x65735546;
  struct statfs filesystem {};
  return is_mounted(point) && ::statfs(point.c_str(), &filesystem) == 0 &&
         filesystem.f_type == kFuseSuperMagic;
}

}  // namespace

Mount::Mount(const std::filesystem::path& source, const std::filesystem::path& mount_point,
             MountSource kind)
    : point_(mount_point), log_path_(mount_point.string() + ".log") {
  // A dead mount left there answers ENOTCONN; the daemon under test must deal with it.
  std::error_code ignored;
  std::filesystem::create_directories(point_, ignored);
  pid_ = ::fork();
  REQUIRE(pid_ >= 0);
  if (pid_ == 0) {
    const int log = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ::dup2(log, STDERR_FILENO);
    ::dup2(log, STDOUT_FILENO);
    const std::string program = binary().string();
    const char* flag = kind == MountSource::manifest ? "--manifest" : "--state-dir";
    ::execl(program.c_str(), program.c_str(), "mount", "--foreground", flag, source.c_str(),
            "--mount-point", point_.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }

  const auto deadline = std::chrono::steady_clock::now() + kMountWait;
  int status = 0;
  while (!is_live(point_)) {
    if (exited(pid_, status)) {
      pid_ = -1;
      FAIL("secretfs mount exited before mounting:\n" << log());
    }
    if (std::chrono::steady_clock::now() > deadline) {
      FAIL("secretfs did not mount within the time limit:\n" << log());
    }
    std::this_thread::sleep_for(kPoll);
  }
}

std::string Mount::log() const {
  return read_file(log_path_);
}

int Mount::stop() {
  if (pid_ < 0) {
    return -1;
  }
  ::kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + kStopWait;
  int status = 0;
  while (!exited(pid_, status)) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(kPoll);
  }
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Mount::~Mount() {
  stop();
  if (is_mounted(point_)) {
    run("fusermount3 -uz '" + point_.string() + "' 2>/dev/null");
  }
}

bool become(const Reader& reader) {
  return ::setgroups(reader.groups.size(), reader.groups.data()) == 0 &&
         ::setresgid(reader.gid, reader.gid, reader.gid) == 0 &&
         ::setresuid(reader.uid, reader.uid, reader.uid) == 0;
}

std::string ask_as(const std::filesystem::path& path, const std::string& request,
                   const Reader& reader) {
  int channel[2];
  REQUIRE(::pipe(channel) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(channel[0]);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    // A daemon that refuses a peer answers before reading its request, so the write may meet
    // a closed socket; the answer is still there to read.
    ::signal(SIGPIPE, SIG_IGN);
    if (become(reader) &&
        ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0) {
      [[maybe_unused]] const auto sent = ::write(fd, request.data(), request.size());
      std::array<char, 4096> buffer{};
      ssize_t got = 0;
      while ((got = ::read(fd, buffer.data(), buffer.size())) > 0) {
        [[maybe_unused]] auto wrote = ::write(channel[1], buffer.data(), got);
      }
    }
    ::_exit(0);
  }
  ::close(channel[1]);
  std::string answer;
  std::array<char, 4096> buffer{};
  ssize_t got = 0;
  while ((got = ::read(channel[0], buffer.data(), buffer.size())) > 0) {
    answer.append(buffer.data(), static_cast<std::size_t>(got));
  }
  ::close(channel[0]);
  ::waitpid(child, nullptr, 0);
  return answer.substr(0, answer.find('\n'));
}

ReadResult read_here(const std::filesystem::path& path) {
  ReadResult result;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    result.error = errno;
    return result;
  }
  std::array<char, 65536> buffer{};
  ssize_t got = 0;
  while ((got = ::read(fd, buffer.data(), buffer.size())) > 0) {
    result.content.append(buffer.data(), static_cast<std::size_t>(got));
  }
  result.error = got < 0 ? errno : 0;
  ::close(fd);
  return result;
}

ReadResult read_as(const std::filesystem::path& path, const Reader& reader) {
  int channel[2];
  REQUIRE(::pipe(channel) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(channel[0]);
    ReadResult result{-1, {}};
    if (become(reader)) {
      result = read_here(path);
    }
    const int error = result.error;
    const std::string& content = result.content;
    // The parent learns the outcome: errno first, then the bytes read.
    [[maybe_unused]] auto wrote = ::write(channel[1], &error, sizeof error);
    std::size_t offset = 0;
    while (offset < content.size()) {
      const ssize_t sent = ::write(channel[1], content.data() + offset, content.size() - offset);
      if (sent <= 0) {
        break;
      }
      offset += static_cast<std::size_t>(sent);
    }
    ::_exit(0);
  }

  ::close(channel[1]);
  ReadResult result;
  REQUIRE(::read(channel[0], &result.error, sizeof result.error) ==
          static_cast<ssize_t>(sizeof result.error));
  std::array<char, 65536> buffer{};
  ssize_t got = 0;
  while ((got = ::read(channel[0], buffer.data(), buffer.size())) > 0) {
    result.content.append(buffer.data(), static_cast<std::size_t>(got));
  }
  ::close(channel[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  REQUIRE(result.error != -1);
  return result;
}

void encrypt_file(const std::string& recipient, const std::string& plaintext,
                  const std::filesystem::path& output) {
  secretfs::initialize_sodium();
  const auto parsed = age::X25519Recipient::parse(recipient);
  const age::Recipient* recipients[] = {parsed.get()};
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(plaintext.data());
  const auto file = age::encrypt(std::span(bytes, plaintext.size()), recipients);
  write_file(output, std::string(file.begin(), file.end()), 0644);
}

OpenFds open_fds(pid_t pid) {
  OpenFds fds;
  for (const auto& entry :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    std::error_code error;
    const std::string target = std::filesystem::read_symlink(entry.path(), error).string();
    const bool caller_name = target.starts_with("/proc/") && target.ends_with("/comm");
    ++(caller_name ? fds.caller_names : fds.others);
  }
  return fds;
}

std::size_t resident_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmRSS:")) {
      return std::stoul(line.substr(line.find_first_of("0123456789")));
    }
  }
  FAIL("no VmRSS for pid " << pid);
  return 0;
}

}  // namespace secretfs::test
