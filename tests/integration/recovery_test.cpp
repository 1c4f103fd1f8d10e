// Crash recovery under load: reader processes loop over secrets while the daemon is killed with
// SIGKILL and started again the way its systemd unit does it (`fusermount3 -uz` of the mount
// point, then `secretfs mount --foreground`). The new daemon must serve the current generation
// within two seconds of the restart, and in between readers may see errors only: never wrong
// bytes, and never a listing that succeeds with nothing in it.
//
// "a restart detaches the mount of a daemon killed while readers loop" in generations_test.cpp
// covers the daemon detaching a dead mount by itself; this file covers what readers see.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <new>
#include <thread>
#include <vector>

#include "scenario.hpp"

using namespace secretfs::test;

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr int kSecrets = 20;
constexpr auto kServeWithin = 2s;
// Long enough for every reader to run into the dead mount, and for systemd's RestartSec to be
// no shorter in practice.
constexpr auto kDeadFor = 300ms;
constexpr auto kReadAfterRestart = 1s;
constexpr auto kPoll = 5ms;

std::string secret_name(int secret) {
  return "app/s" + std::to_string(secret);
}

// The current generation's bytes; the first generation's differ, so serving a stale
// generation after the restart counts as wrong bytes.
std::string content(int secret, int generation) {
  return "secret " + std::to_string(secret) + " of generation " + std::to_string(generation) + "\n";
}

// Where a reader stands after the test. Errors while the daemon is dead are expected and
// counted apart; a successful read must return the current bytes, and a listing that succeeds
// must list the secrets.
struct Tally {
  long good = 0;
  long expected_errors = 0;  // ENOTCONN, ENOENT, EIO, ECONNABORTED, EACCES
  long unexpected_errors = 0;
  long wrong_bytes = 0;
  long empty_listings = 0;  // opendir and readdir succeeded with no secret in the folder
  long good_after_restart = 0;
  int first_unexpected_errno = 0;
};

bool expected_while_dead(int error) {
  return error == ENOTCONN || error == ENOENT || error == EIO || error == ECONNABORTED ||
         error == EACCES;
}

// Lists `folder`; returns errno, or 0 with `entries` counting the names besides . and ..
int list(const std::filesystem::path& folder, int& entries) {
  entries = 0;
  DIR* dir = ::opendir(folder.c_str());
  if (dir == nullptr) {
    return errno;
  }
  errno = 0;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    entries += name == "." || name == ".." ? 0 : 1;
  }
  const int error = errno;
  ::closedir(dir);
  return error;
}

void count_error(Tally& tally, int error) {
  if (expected_while_dead(error)) {
    ++tally.expected_errors;
    return;
  }
  ++tally.unexpected_errors;
  if (tally.first_unexpected_errno == 0) {
    tally.first_unexpected_errno = error;
  }
}

// One pass of a reader: a secret, then `folder`, which holds `entries` names when served.
struct Pass {
  std::filesystem::path mount_point;
  std::string folder;
  int entries;
  int generation;
};

void read_once(const Pass& pass, int secret, bool restarted, Tally& tally) {
  const auto [error, bytes] = read_here(pass.mount_point / secret_name(secret));
  if (error != 0) {
    count_error(tally, error);
  } else if (bytes != content(secret, pass.generation)) {
    ++tally.wrong_bytes;
  } else {
    ++tally.good;
    tally.good_after_restart += restarted ? 1 : 0;
  }

  int entries = 0;
  const int listed = list(pass.mount_point / pass.folder, entries);
  if (listed != 0) {
    count_error(tally, listed);
  } else if (entries != pass.entries) {
    ++tally.empty_listings;
  }
}

// What the test tells its readers, in memory they share with it.
enum class Phase : int { before_restart, after_restart, stop };

// Reader processes that loop until told to stop, counting their reads after the restart apart.
class LoopingReaders {
 public:
  LoopingReaders(const Pass& pass, const Reader& reader, int count) {
    void* shared = ::mmap(nullptr, sizeof(std::atomic<Phase>), PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(shared != MAP_FAILED);
    phase_ = new (shared) std::atomic<Phase>(Phase::before_restart);
    for (int index = 0; index < count; ++index) {
      int results[2];
      REQUIRE(::pipe(results) == 0);
      const pid_t child = ::fork();
      REQUIRE(child >= 0);
      if (child == 0) {
        ::close(results[0]);
        const Tally tally = loop(pass, reader, index, *phase_);
        [[maybe_unused]] const auto sent = ::write(results[1], &tally, sizeof tally);
        ::_exit(0);
      }
      ::close(results[1]);
      children_.push_back({child, results[0]});
    }
  }

  ~LoopingReaders() {
    for (const auto& child : children_) {
      ::kill(child.pid, SIGKILL);
      ::waitpid(child.pid, nullptr, 0);
      ::close(child.results);
    }
    ::munmap(phase_, sizeof *phase_);
  }
  LoopingReaders(const LoopingReaders&) = delete;
  LoopingReaders& operator=(const LoopingReaders&) = delete;

  void restarted() { *phase_ = Phase::after_restart; }

  Tally stop() {
    *phase_ = Phase::stop;
    Tally total;
    for (const auto& child : children_) {
      Tally tally;
      const bool answered =
          ::read(child.results, &tally, sizeof tally) == static_cast<ssize_t>(sizeof tally);
      ::close(child.results);
      ::waitpid(child.pid, nullptr, 0);
      total.unexpected_errors += answered ? 0 : 1;
      add(total, tally);
    }
    children_.clear();
    return total;
  }

 private:
  struct Child {
    pid_t pid;
    int results;
  };

  static Tally loop(const Pass& pass, const Reader& reader, int index,
                    const std::atomic<Phase>& phase) {
    Tally tally;
    if (!become(reader)) {
      tally.unexpected_errors = 1;
      return tally;
    }
    for (int secret = index % kSecrets; phase != Phase::stop; secret = (secret + 1) % kSecrets) {
      read_once(pass, secret, phase == Phase::after_restart, tally);
    }
    return tally;
  }

  static void add(Tally& total, const Tally& tally) {
    total.good += tally.good;
    total.expected_errors += tally.expected_errors;
    total.unexpected_errors += tally.unexpected_errors;
    total.wrong_bytes += tally.wrong_bytes;
    total.empty_listings += tally.empty_listings;
    total.good_after_restart += tally.good_after_restart;
    if (total.first_unexpected_errno == 0) {
      total.first_unexpected_errno = tally.first_unexpected_errno;
    }
  }

  std::atomic<Phase>* phase_ = nullptr;
  std::vector<Child> children_;
};

std::string secrets_of_generation(Scenario& scenario, int generation) {
  std::string tables;
  for (int secret = 0; secret < kSecrets; ++secret) {
    const std::string file =
        "g" + std::to_string(generation) + "-" + std::to_string(secret) + ".age";
    encrypt_file(scenario.recipient(), content(secret, generation), scenario.dir() / file);
    tables +=
        "[secrets.\"" + secret_name(secret) + "\"]\nfile = \"" + file + "\"\nmode = \"0444\"\n";
  }
  return tables;
}

void activate(const std::filesystem::path& manifest) {
  REQUIRE(run(shell_quoted(binary()) + " activate --manifest " + shell_quoted(manifest) +
              " >/dev/null") == 0);
}

// True once `path` reads as `expected`; polls until `deadline`.
bool serves_by(const std::filesystem::path& path, const std::string& expected,
               Clock::time_point deadline) {
  while (Clock::now() < deadline) {
    if (const auto read = read_here(path); read.error == 0 && read.content == expected) {
      return true;
    }
    std::this_thread::sleep_for(kPoll);
  }
  return false;
}

// A daemon started in the background by `secretfs mount`, as an admin would, so that it
// creates the mount point itself. However the test ends, it is killed and its mount detached.
class BackgroundDaemon {
 public:
  BackgroundDaemon(const std::filesystem::path& state_dir, const std::filesystem::path& mount_point)
      : mount_point_(mount_point) {
    REQUIRE(run(shell_quoted(binary()) + " mount --state-dir " + shell_quoted(state_dir) +
                " --mount-point " + shell_quoted(mount_point) + " 2>/dev/null") == 0);
    const std::string status =
        output_of(shell_quoted(binary()) + " status --json --state-dir " + shell_quoted(state_dir));
    const auto at = status.find("\"pid\": ");
    REQUIRE(at != std::string::npos);
    pid_ = std::stoi(status.substr(at + std::string("\"pid\": ").size()));
  }

  ~BackgroundDaemon() {
    kill();
    if (is_mounted(mount_point_)) {
      run("fusermount3 -uz " + shell_quoted(mount_point_) + " 2>/dev/null");
    }
  }
  BackgroundDaemon(const BackgroundDaemon&) = delete;
  BackgroundDaemon& operator=(const BackgroundDaemon&) = delete;

  // SIGKILL, then waits until the process is gone (it is not this process's child).
  void kill() {
    constexpr auto kGoneWithin = 5s;
    if (pid_ <= 0) {
      return;
    }
    ::kill(pid_, SIGKILL);
    const auto deadline = Clock::now() + kGoneWithin;
    while (::kill(pid_, 0) == 0 && Clock::now() < deadline) {
      std::this_thread::sleep_for(kPoll);
    }
    pid_ = -1;
  }

 private:
  std::filesystem::path mount_point_;
  pid_t pid_ = -1;
};

constexpr int kCurrent = 2;

struct Crash {
  bool served = false;
  double restart_seconds = 0;
  Tally services;
  Tally root;
};

// Serves two generations, starts readers, kills the daemon with SIGKILL and starts it again as
// its unit does. Services (strangers: the secrets are 0444) list `service_folder`; root lists
// the folder of the secrets, which holds all of them.
Crash crash_and_restart(const std::string& service_folder, int service_entries) {
  Scenario scenario;
  activate(scenario.manifest(secrets_of_generation(scenario, 1)));
  activate(scenario.manifest(secrets_of_generation(scenario, kCurrent)));
  const auto mount_point = scenario.mount_point();
  BackgroundDaemon first(scenario.state_dir(), mount_point);

  LoopingReaders services({mount_point, service_folder, service_entries, kCurrent}, kStrangerReader,
                          3);
  LoopingReaders root({mount_point, "app", kSecrets, kCurrent}, Reader{0, 0, {}}, 2);
  std::this_thread::sleep_for(kDeadFor);

  first.kill();
  std::this_thread::sleep_for(kDeadFor);

  Crash crash;
  const auto restart = Clock::now();
  CHECK(run("fusermount3 -uz " + shell_quoted(mount_point)) == 0);
  Mount second(scenario.state_dir(), mount_point, MountSource::state_dir);
  crash.served =
      serves_by(mount_point / secret_name(0), content(0, kCurrent), restart + kServeWithin);
  crash.restart_seconds = std::chrono::duration<double>(Clock::now() - restart).count();
  services.restarted();
  root.restarted();
  std::this_thread::sleep_for(kReadAfterRestart);
  crash.services = services.stop();
  crash.root = root.stop();
  return crash;
}

}  // namespace

TEST_CASE("after kill -9 under load a unit-style restart serves within 2 s; readers see errors",
          "[recovery]") {
  // A service may not list the folder of the secrets (0751) while it is served, and it is
  // absent while nothing is: errors either way.
  const Crash crash = crash_and_restart("app", kSecrets);
  INFO("served again after " << crash.restart_seconds << " s");
  CHECK(crash.served);
  for (const Tally& tally : {crash.services, crash.root}) {
    INFO("good " << tally.good << ", expected errors " << tally.expected_errors
                 << ", first unexpected errno " << tally.first_unexpected_errno
                 << ", listings that succeeded without the secrets " << tally.empty_listings);
    CHECK(tally.good_after_restart > 0);
    CHECK(tally.expected_errors > 0);
    CHECK(tally.unexpected_errors == 0);
    CHECK(tally.wrong_bytes == 0);
    CHECK(tally.empty_listings == 0);
  }
}

// The daemon makes its (empty) mount point folder 0700, so while no daemon serves it a service
// that lists it is refused, as the served mount (0751) refuses it. Root may list any folder, so
// only services can be spared the empty listing.
TEST_CASE("a service listing the mount point while the daemon is down is refused", "[recovery]") {
  const Crash crash = crash_and_restart("", 1);
  CHECK(crash.served);
  CHECK(crash.services.unexpected_errors == 0);
  CHECK(crash.services.empty_listings == 0);
}
