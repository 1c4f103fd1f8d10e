// Plaintext lives in the daemon only while a reader holds the secret open: never afterwards,
// never in the page cache, and the daemon can leave no core dump.
#include <fcntl.h>
#include <sodium.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "scenario.hpp"

using namespace secretfs::test;

namespace {

constexpr std::size_t kMarkerBytes = 16;
constexpr std::size_t kScanBlock = 1 << 20;
// Regions larger than this are not scanned: under AddressSanitizer the daemon maps terabytes of
// shadow memory, which would take hours to read, and no secret is ever held in one that large.
constexpr unsigned long kLargestScannedRegion = 1UL << 32;

// A marker no other memory can hold by chance: "secretfs-marker-" and 32 random hex digits.
std::string unique_marker() {
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

// Pages of the file open at `fd` in the page cache, from cachestat(2) (Linux 6.5).
struct CacheStatRange {
  std::uint64_t offset;
  std::uint64_t length;
};
struct CacheStat {
  std::uint64_t cached, dirty, writeback, evicted, recently_evicted;
};
constexpr long kCachestat = 451;

long cached_pages(int fd) {
  CacheStatRange range{0, 0};  // length 0: to the end of the file
  CacheStat stat{};
  if (::syscall(kCachestat, fd, &range, &stat, 0) != 0) {
    return -errno;
  }
  return static_cast<long>(stat.cached);
}

// The line of /proc/self/mountinfo for `point`, split into the mount's own options, its type,
// its source and the file system's options; empty fields when it is not mounted.
struct MountLine {
  std::string options, type, source, super_options;
};

MountLine mount_line(const std::filesystem::path& point) {
  std::ifstream mountinfo("/proc/self/mountinfo");
  for (std::string line; std::getline(mountinfo, line);) {
    std::istringstream fields(line);
    std::string id, parent, device, root, mount_point, options;
    fields >> id >> parent >> device >> root >> mount_point >> options;
    const auto separator = line.find(" - ");
    if (mount_point != point.string() || separator == std::string::npos) {
      continue;
    }
    MountLine found{options, "", "", ""};
    std::istringstream tail(line.substr(separator + 3));
    tail >> found.type >> found.source >> found.super_options;
    return found;
  }
  return {};
}

// True when the comma-separated `options` hold `option` as one of them.
bool has_option(const std::string& options, const std::string& option) {
  return ("," + options + ",").find("," + option + ",") != std::string::npos;
}

}  // namespace

TEST_CASE("the mount is read-only, nosuid, nodev and noexec, and says what it is", "[hygiene]") {
  Scenario scenario;
  scenario.age_file("s.age", "s\n");
  Mount mount(scenario.manifest("[secrets.\"s\"]\nfile = \"s.age\"\n"), scenario.mount_point());
  const MountLine line = mount_line(mount.point());
  INFO("options " << line.options << ", super options " << line.super_options);
  for (const char* option : {"ro", "nosuid", "nodev", "noexec"}) {
    CHECK(has_option(line.options, option));
  }
  CHECK(line.type == "fuse.secretfs");
  CHECK(line.source == "secretfs");
  CHECK(has_option(line.super_options, "allow_other"));
  // The daemon decides every access itself (and records it), so the kernel must not.
  CHECK_FALSE(has_option(line.super_options, "default_permissions"));
}

TEST_CASE("plaintext leaves the daemon's memory when the reader closes the secret", "[hygiene]") {
  REQUIRE(sodium_init() >= 0);
  const std::string marker = unique_marker();
  Scenario scenario;
  scenario.age_file("s.age", marker + "\n");
  Mount mount(scenario.manifest("[secrets.\"s\"]\nfile = \"s.age\"\n"), scenario.mount_point());

  // While a reader holds it open, the plaintext is in the daemon: the scan finds it.
  const int fd = ::open((mount / "s").c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  char first{};
  REQUIRE(::read(fd, &first, 1) == 1);
  CHECK(occurrences_in_memory(mount.pid(), marker) == 1);

  ::close(fd);
  // RELEASE reaches the daemon after close() returns; it is answered within milliseconds.
  std::size_t hits = 1;
  for (int i = 0; i < 100 && hits != 0; ++i) {
    ::usleep(10000);
    hits = occurrences_in_memory(mount.pid(), marker);
  }
  CHECK(hits == 0);

  // Reads that open and close leave nothing either.
  for (int i = 0; i < 10; ++i) {
    CHECK(read_as(mount / "s", Reader{0, 0, {}}).content == marker + "\n");
  }
  ::usleep(100000);
  CHECK(occurrences_in_memory(mount.pid(), marker) == 0);
}

TEST_CASE("reading a secret puts no page of it in the page cache", "[hygiene]") {
  Scenario scenario;
  scenario.age_file("s.age", pattern(3 * 4096 + 5));
  Mount mount(scenario.manifest("[secrets.\"s\"]\nfile = \"s.age\"\n"), scenario.mount_point());
  const int fd = ::open((mount / "s").c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  std::vector<char> buffer(4 * 4096);
  std::size_t total = 0;
  for (ssize_t got; (got = ::read(fd, buffer.data(), buffer.size())) > 0;) {
    total += static_cast<std::size_t>(got);
  }
  CHECK(total == 3 * 4096 + 5);
  CHECK(cached_pages(fd) == 0);
  ::close(fd);
}

TEST_CASE("the daemon can leave no core dump", "[hygiene]") {
  Scenario scenario;
  scenario.age_file("s.age", "s\n");
  Mount mount(scenario.manifest("[secrets.\"s\"]\nfile = \"s.age\"\n"), scenario.mount_point());
  const std::string limits = read_file("/proc/" + std::to_string(mount.pid()) + "/limits");
  INFO(limits);
  CHECK(limits.find("Max core file size        0                    0                    bytes") !=
        std::string::npos);
}
