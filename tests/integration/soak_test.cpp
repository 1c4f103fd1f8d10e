// Load: reader processes read many secrets while `secretfs activate` switches between two
// generations every second. Every read must return exactly one generation's bytes for the
// secret it opened, no read may fail, and the daemon's open file descriptors and resident
// memory must end where they started.
//
// CI runs a short soak; scripts/soak.sh runs the long one through this same test by setting
// SECRETFS_SOAK_SECONDS, SECRETFS_SOAK_READERS and SECRETFS_SOAK_SECRETS, and reads the JSON
// summary that the test writes to SECRETFS_SOAK_JSON.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>
#include <vector>

#include "fs/process_names.hpp"
#include "scenario.hpp"

using namespace secretfs::test;

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr int kGenerations = 2;
constexpr auto kSwitchEvery = 1s;
// Both generations served and every secret read under load before the first sample: the
// daemon's caches of file keys and small ciphertexts are full then, so growth after it is a
// leak, not a cache warming up.
constexpr auto kWarmUp = 2s;
// The request loop is one thread and keeps no descriptor per open file once it is closed, so
// at rest the count must match exactly, apart from the few callers' names the audit trail
// keeps open (at most ProcessNames::kKept). Memory gets a margin: the allocator keeps freed pages
// of the last burst, and secure buffers come in locked pages, so a few MiB move either way
// without anything leaking; a leak of one buffer per read would be far over it (a CI run
// alone makes tens of thousands of reads).
// Under AddressSanitizer freed memory waits in a quarantine before it is reused (16 MiB, as
// scripts/test.sh sets it), so RSS may grow by that much more; leaks are LeakSanitizer's to find.
#if defined(__SANITIZE_ADDRESS__)
constexpr std::size_t kRssToleranceKib = (4 + 16) * 1024;
#else
constexpr std::size_t kRssToleranceKib = 4 * 1024;
#endif
// Every this many secrets, one is large enough to be read in several chunks of 64 KiB.
constexpr int kLargeEvery = 97;
constexpr std::size_t kLargeSize = 70000;

struct SoakSize {
  int seconds = 8;
  int readers = 4;
  int secrets = 100;
};

int from_environment(const char* name, int fallback) {
  const char* value = std::getenv(name);
  return value == nullptr ? fallback : std::stoi(value);
}

SoakSize soak_size() {
  SoakSize size;
  size.seconds = from_environment("SECRETFS_SOAK_SECONDS", size.seconds);
  size.readers = from_environment("SECRETFS_SOAK_READERS", size.readers);
  size.secrets = from_environment("SECRETFS_SOAK_SECRETS", size.secrets);
  return size;
}

std::string secret_name(int secret) {
  std::string digits = std::to_string(secret);
  return "soak/s" + std::string(6 - digits.size(), '0') + digits;
}

// Distinct for every secret and generation, in length and in every byte after the first line,
// so that a mix of two generations or of two secrets never equals either.
std::string content(int secret, int generation) {
  const std::size_t size =
      secret % kLargeEvery == 0 ? kLargeSize + generation : 40 + (secret % 13) * 37 + generation;
  std::string bytes = pattern(size);
  for (char& byte : bytes) {
    byte = static_cast<char>(byte ^ (generation == 0 ? 0x00 : 0xa5));
  }
  return secret_name(secret) + " generation " + std::to_string(generation) + "\n" + bytes;
}

// Writes each generation's age files and manifest; returns the manifests.
std::vector<std::filesystem::path> write_generations(Scenario& scenario, int secrets) {
  std::vector<std::filesystem::path> manifests;
  for (int generation = 0; generation < kGenerations; ++generation) {
    std::string tables;
    for (int secret = 0; secret < secrets; ++secret) {
      const std::string file =
          "g" + std::to_string(generation) + "-" + std::to_string(secret) + ".age";
      encrypt_file(scenario.recipient(), content(secret, generation), scenario.dir() / file);
      tables += "[secrets.\"" + secret_name(secret) + "\"]\nfile = \"" + file +
                "\"\nowner = " + std::to_string(kOwner) + "\n";
    }
    const auto manifest = scenario.dir() / ("generation-" + std::to_string(generation) + ".toml");
    std::filesystem::rename(scenario.manifest(tables), manifest);
    manifests.push_back(manifest);
  }
  return manifests;
}

// What one reader process saw, sent to the test through a pipe.
struct Tally {
  long reads = 0;
  long errors = 0;  // open or read failed
  long wrong = 0;   // bytes that are neither generation's content of that secret
  int first_errno = 0;
  int first_bad_secret = -1;
};

// A child's loop: reads secrets in turn, starting where the others do not, until `until`.
Tally read_until(const Mount& mount, int first, int secrets, Clock::time_point until) {
  Tally tally;
  for (int secret = first; Clock::now() < until; secret = (secret + 1) % secrets) {
    const auto [error, bytes] = read_here(mount / secret_name(secret));
    ++tally.reads;
    const bool one_generation = bytes == content(secret, 0) || bytes == content(secret, 1);
    if (error == 0 && one_generation) {
      continue;
    }
    ++(error != 0 ? tally.errors : tally.wrong);
    if (tally.first_bad_secret < 0) {
      tally.first_bad_secret = secret;
      tally.first_errno = error;
    }
  }
  return tally;
}

class ReaderProcesses {
 public:
  ReaderProcesses(const Mount& mount, const SoakSize& size, Clock::duration length) {
    const auto until = Clock::now() + length;
    for (int reader = 0; reader < size.readers; ++reader) {
      int channel[2];
      REQUIRE(::pipe(channel) == 0);
      const pid_t child = ::fork();
      REQUIRE(child >= 0);
      if (child == 0) {
        ::close(channel[0]);
        Tally tally;
        if (become(kOwnerReader)) {
          tally = read_until(mount, reader * size.secrets / size.readers, size.secrets, until);
        } else {
          tally.errors = 1;
          tally.first_errno = EPERM;
        }
        [[maybe_unused]] const auto sent = ::write(channel[1], &tally, sizeof tally);
        ::_exit(0);
      }
      ::close(channel[1]);
      children_.push_back({child, channel[0]});
    }
  }

  ~ReaderProcesses() { wait(); }
  ReaderProcesses(const ReaderProcesses&) = delete;
  ReaderProcesses& operator=(const ReaderProcesses&) = delete;

  // Waits for every reader and sums what they saw; a reader that died counts as one error.
  Tally wait() {
    Tally total;
    for (const auto& [pid, channel] : children_) {
      Tally tally;
      if (::read(channel, &tally, sizeof tally) != static_cast<ssize_t>(sizeof tally)) {
        tally.errors = 1;
      }
      ::close(channel);
      ::waitpid(pid, nullptr, 0);
      total.reads += tally.reads;
      total.errors += tally.errors;
      total.wrong += tally.wrong;
      if (total.first_bad_secret < 0) {
        total.first_bad_secret = tally.first_bad_secret;
        total.first_errno = tally.first_errno;
      }
    }
    children_.clear();
    return total;
  }

 private:
  struct Child {
    pid_t pid;
    int channel;
  };
  std::vector<Child> children_;
};

struct Switches {
  int done = 0;
  int failed = 0;
  double longest_seconds = 0;
};

// Switches to the other generation every kSwitchEvery (back to back when an activation takes
// longer) until `until`; starts with generation 1, since generation 0 is served first.
Switches switch_until(const std::vector<std::filesystem::path>& manifests,
                      Clock::time_point until) {
  Switches switches;
  auto next = Clock::now();
  while (Clock::now() < until) {
    std::this_thread::sleep_until(next);
    next += kSwitchEvery;
    const auto& manifest = manifests[static_cast<std::size_t>((switches.done + 1) % kGenerations)];
    const auto started = Clock::now();
    const int status = run(shell_quoted(binary()) + " activate --manifest " +
                           shell_quoted(manifest) + " >/dev/null 2>&1");
    const std::chrono::duration<double> took = Clock::now() - started;
    switches.longest_seconds = std::max(switches.longest_seconds, took.count());
    ++switches.done;
    switches.failed += status == 0 ? 0 : 1;
  }
  return switches;
}

struct Sample {
  OpenFds fds;
  std::size_t rss_kib;
};

Sample sample(pid_t daemon) {
  return {open_fds(daemon), resident_kib(daemon)};
}

void write_summary(const SoakSize& size, const Tally& tally, const Switches& switches,
                   const Sample& start, const Sample& end) {
  const char* path = std::getenv("SECRETFS_SOAK_JSON");
  if (path == nullptr) {
    return;
  }
  std::ofstream out(path, std::ios::trunc);
  out << "{\"seconds\": " << size.seconds << ", \"readers\": " << size.readers
      << ", \"secrets\": " << size.secrets << ", \"reads\": " << tally.reads
      << ", \"errors\": " << tally.errors << ", \"wrong_bytes\": " << tally.wrong
      << ", \"first_errno\": " << tally.first_errno << ", \"switches\": " << switches.done
      << ", \"failed_switches\": " << switches.failed
      << ", \"longest_switch_seconds\": " << switches.longest_seconds
      << ", \"fds_start\": " << start.fds.others << ", \"fds_end\": " << end.fds.others
      << ", \"caller_name_fds_end\": " << end.fds.caller_names
      << ", \"rss_kib_start\": " << start.rss_kib << ", \"rss_kib_end\": " << end.rss_kib
      << ", \"rss_tolerance_kib\": " << kRssToleranceKib << "}\n";
}

}  // namespace

TEST_CASE("readers get one generation's exact bytes while generations switch every second",
          "[soak]") {
  const SoakSize size = soak_size();
  Scenario scenario;
  const auto manifests = write_generations(scenario, size.secrets);
  REQUIRE(run(shell_quoted(binary()) + " activate --manifest " + shell_quoted(manifests[0]) +
              " >/dev/null") == 0);
  Mount mount(scenario.state_dir(), scenario.mount_point(), MountSource::state_dir);

  {
    ReaderProcesses warm_up(mount, size, kWarmUp);
    const Switches switched = switch_until(manifests, Clock::now() + kWarmUp);
    const Tally tally = warm_up.wait();
    REQUIRE(switched.failed == 0);
    REQUIRE(tally.errors + tally.wrong == 0);
  }
  const Sample start = sample(mount.pid());

  ReaderProcesses readers(mount, size, std::chrono::seconds(size.seconds));
  const Switches switches =
      switch_until(manifests, Clock::now() + std::chrono::seconds(size.seconds));
  const Tally tally = readers.wait();
  const Sample end = sample(mount.pid());
  write_summary(size, tally, switches, start, end);

  INFO("reads " << tally.reads << ", first bad secret " << tally.first_bad_secret << " (errno "
                << tally.first_errno << "), switches " << switches.done << ", longest "
                << switches.longest_seconds << " s");
  CHECK(tally.reads > size.secrets);
  CHECK(switches.done >= size.seconds / 2);
  CHECK(switches.failed == 0);
  CHECK(tally.errors == 0);
  CHECK(tally.wrong == 0);
  CHECK(end.fds.others == start.fds.others);
  CHECK(end.fds.caller_names <= secretfs::fs::ProcessNames::kKept);
  CHECK(end.rss_kib <= start.rss_kib + kRssToleranceKib);
}
