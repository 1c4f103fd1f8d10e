// Plaintext lives in the daemon only while a reader holds the secret open: never afterwards,
// never in the page cache, and the daemon can leave no core dump.
#include <fcntl.h>
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
