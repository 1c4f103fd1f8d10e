// `secretfs check` names every problem; `secretfs mount` serves what it can and stops cleanly.
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

#include "scenario.hpp"

using namespace secretfs::test;

namespace {

const char* kMixed = R"(
[secrets."good"]
file = "good.age"
[secrets."unknown-user"]
file = "good.age"
owner = "no-such-user-here"
[secrets."../escape"]
file = "good.age"
[secrets."writable"]
file = "good.age"
mode = "0600"
[secrets."gone"]
file = "gone.age"
[secrets."stranger"]
file = "stranger.age"
)";

// Unmounts a daemon started in the background and waits until it has let go of its state
// directory, so that the next daemon may take it.
void unmount_background(const Scenario& scenario) {
  CHECK(run("fusermount3 -u " + shell_quoted(scenario.mount_point())) == 0);
  const std::string lock = shell_quoted(scenario.state_dir() / "daemon.lock");
  CHECK(run("for i in $(seq 500); do flock -n " + lock + " true && exit 0; sleep 0.01; done; "
            "exit 1") == 0);
}

}  // namespace

TEST_CASE("check passes a good manifest and names each secret with a problem", "[commands]") {
  Scenario scenario;
  scenario.age_file("good.age", "good\n");
  const std::string check = shell_quoted(binary()) + " check --manifest ";

  SECTION("a good manifest passes") {
    const auto manifest = scenario.manifest("[secrets.\"good\"]\nfile = \"good.age\"\n");
    const std::string report = output_of(check + shell_quoted(manifest));
    CHECK(report.find("manifest.toml: 1 secret, 0 problems\n") != std::string::npos);
  }

  SECTION("every problem is one line naming its secret, and the exit status is 1") {
    scenario.foreign_age_file("stranger.age", "x");
    const auto manifest = scenario.manifest(kMixed);
    const std::string report_file = (scenario.dir() / "report").string();
    CHECK(run(check + shell_quoted(manifest) + " > " + shell_quoted(report_file)) == 1);
    const std::string report = read_file(report_file);
    for (const char* name : {"unknown-user", "../escape", "writable", "gone", "stranger"}) {
      INFO("secret " << name << " in:\n" << report);
      CHECK(report.find(std::string("secret `") + name + "`") != std::string::npos);
    }
    CHECK(report.find("secret `good`") == std::string::npos);
    CHECK(report.find("manifest.toml: 6 secrets, 5 problems\n") != std::string::npos);
  }

  SECTION("an identity file readable by others is refused, naming the file") {
    REQUIRE(::chmod(scenario.key().c_str(), 0644) == 0);
    const auto manifest = scenario.manifest("[secrets.\"good\"]\nfile = \"good.age\"\n");
    const std::string report_file = (scenario.dir() / "report").string();
    CHECK(run(check + shell_quoted(manifest) + " > " + shell_quoted(report_file)) == 1);
    CHECK(read_file(report_file).find(scenario.key().string()) != std::string::npos);
  }
}

TEST_CASE("mount serves the good secrets of a manifest with problems", "[commands]") {
  Scenario scenario;
  scenario.age_file("good.age", "good\n");
  Mount mount(scenario.manifest(kMixed), scenario.mount_point());

  const auto good = read_as(mount / "good", Reader{0, 0, {}});
  CHECK(good.error == 0);
  CHECK(good.content == "good\n");
  CHECK(read_as(mount / "unknown-user", Reader{0, 0, {}}).error == ENOENT);
  CHECK(read_as(mount / "writable", Reader{0, 0, {}}).error == ENOENT);
  CHECK(read_as(mount / "gone", Reader{0, 0, {}}).error == EIO);
  CHECK(mount.log().find("secret `unknown-user`") != std::string::npos);

  const std::string status = output_of(shell_quoted(binary()) + " status --state-dir " +
                                       shell_quoted(scenario.state_dir()));
  CHECK(status.find("daemon:      running, pid " + std::to_string(mount.pid())) !=
        std::string::npos);
  CHECK(status.find("generation:  none (a manifest served as it is, not stored)") !=
        std::string::npos);
  for (const char* name : {"unknown-user", "../escape", "writable", "gone", "stranger"}) {
    INFO("secret " << name << " in:\n" << status);
    CHECK(status.find(std::string("secret `") + name + "`") != std::string::npos);
  }
  CHECK(status.find("identity:    X25519 age1") != std::string::npos);
}

TEST_CASE("list shows every served secret with owner, mode, size and problems", "[commands]") {
  Scenario scenario;
  scenario.age_file("good.age", "good\n");
  scenario.foreign_age_file("stranger.age", "stranger\n");
  Mount mount(scenario.manifest(R"(
[secrets."app/token"]
file = "good.age"
owner = 4001
group = 4100
mode = "0440"
[secrets."stranger"]
file = "stranger.age"
[secrets."writable"]
file = "good.age"
mode = "0600"
)"),
              scenario.mount_point());
  const std::string list =
      output_of(shell_quoted(binary()) + " list --state-dir " + shell_quoted(scenario.state_dir()));
  INFO(list);
  const std::string point = scenario.mount_point().string();
  CHECK(list.find(point + "/app/token") != std::string::npos);
  CHECK(list.find(" 4001         4100         0440          5 -          none\n") !=
        std::string::npos);
  CHECK(list.find(point + "/stranger") != std::string::npos);
  CHECK(list.find("secret `stranger`: file " + (scenario.dir() / "stranger.age").string() +
                  ": no match:") != std::string::npos);
  // A refused secret is not served, so it is not listed, only named among the problems.
  CHECK(list.find(point + "/writable") == std::string::npos);
  CHECK(list.find(": secret `writable`: mode `0600` has write bits") != std::string::npos);

  const std::string json = output_of(shell_quoted(binary()) + " list --json --state-dir " +
                                     shell_quoted(scenario.state_dir()));
  CHECK(json.find("\"name\": \"app/token\"") != std::string::npos);
  CHECK(json.find("\"mode\": \"0440\"") != std::string::npos);
  CHECK(json.find("\"size\": 5") != std::string::npos);
  CHECK(json.find("\"generation\": null") != std::string::npos);
}

TEST_CASE("SIGTERM unmounts cleanly", "[commands]") {
  Scenario scenario;
  scenario.age_file("good.age", "good\n");
  Mount mount(scenario.manifest("[secrets.\"good\"]\nfile = \"good.age\"\n"),
              scenario.mount_point());
  REQUIRE(is_mounted(mount.point()));
  CHECK(mount.stop() == 0);
  CHECK_FALSE(is_mounted(mount.point()));
}

TEST_CASE("a manifest that does not parse stops mount and check with its line", "[commands]") {
  Scenario scenario;
  const auto manifest = scenario.manifest("[secrets.\"a\"]\nfile = \"a.age\"\nbogus_key\n");
  const std::string report_file = (scenario.dir() / "report").string();
  CHECK(run(shell_quoted(binary()) + " check --manifest " + shell_quoted(manifest) + " > " +
            shell_quoted(report_file)) == 1);
  // Line 6: the scenario writes state_dir and identities, then a blank line, before the tables.
  CHECK(read_file(report_file).find("manifest.toml:6:") != std::string::npos);
  CHECK(run(shell_quoted(binary()) + " mount --foreground --manifest " + shell_quoted(manifest) +
            " --mount-point " + shell_quoted(scenario.mount_point()) + " 2>/dev/null") == 1);
  CHECK_FALSE(is_mounted(scenario.mount_point()));
}

TEST_CASE("a second mount on a live mount point is refused", "[commands]") {
  Scenario scenario;
  scenario.age_file("a.age", "a\n");
  const auto manifest = scenario.manifest("[secrets.\"a\"]\nfile = \"a.age\"\n");
  Mount mount(manifest, scenario.mount_point());
  const std::string log = (scenario.dir() / "second.log").string();
  CHECK(run(shell_quoted(binary()) + " mount --foreground --manifest " + shell_quoted(manifest) +
            " --state-dir " + shell_quoted(scenario.dir() / "other-state") + " --mount-point " +
            shell_quoted(mount.point()) + " 2> " + shell_quoted(log)) == 1);
  CHECK(read_file(log).find("already holds a FUSE mount") != std::string::npos);
  CHECK(read_as(mount / "a", Reader{0, 0, {}}).content == "a\n");
}

TEST_CASE("a mount point that would hide what the daemon reads is refused", "[commands]") {
  Scenario scenario;
  scenario.age_file("a.age", "a\n");
  const auto manifest = scenario.manifest("[secrets.\"a\"]\nfile = \"a.age\"\n");
  const std::string log = (scenario.dir() / "mount.log").string();
  CHECK(run(shell_quoted(binary()) + " mount --foreground --manifest " + shell_quoted(manifest) +
            " --mount-point " + shell_quoted(scenario.dir().path()) + " 2> " + shell_quoted(log)) ==
        1);
  CHECK(read_file(log).find("would hide") != std::string::npos);
  CHECK_FALSE(is_mounted(scenario.dir().path()));
}

TEST_CASE("a mount point with files in it is refused unless --allow-non-empty", "[commands]") {
  Scenario scenario;
  scenario.age_file("a.age", "a\n");
  const auto manifest = scenario.manifest("[secrets.\"a\"]\nfile = \"a.age\"\n");
  std::filesystem::create_directories(scenario.mount_point());
  write_file(scenario.mount_point() / "left-over", "x");
  const std::string log = (scenario.dir() / "mount.log").string();
  const std::string mount = shell_quoted(binary()) + " mount --manifest " + shell_quoted(manifest) +
                            " --mount-point " + shell_quoted(scenario.mount_point());
  CHECK(run(mount + " --foreground 2> " + shell_quoted(log)) == 1);
  CHECK(read_file(log).find("mount point " + scenario.mount_point().string() +
                            " is not empty; the mount would hide what is in it. Empty it, or "
                            "pass --allow-non-empty") != std::string::npos);
  CHECK_FALSE(is_mounted(scenario.mount_point()));

  // Without --foreground the command returns once the mount is live.
  REQUIRE(run(mount + " --allow-non-empty 2>/dev/null") == 0);
  CHECK(read_as(scenario.mount_point() / "a", Reader{0, 0, {}}).content == "a\n");
  unmount_background(scenario);
  CHECK(read_file(scenario.mount_point() / "left-over") == "x");
}

// Locked memory is not inherited across fork(): a daemon that detached after reading its
// identities would hold them in memory that may be swapped out. AddressSanitizer turns mlock
// into a no-op, so a sanitized daemon has nothing locked to compare.
TEST_CASE("a daemon started in the background keeps its memory locked", "[commands]") {
#if defined(__SANITIZE_ADDRESS__)
  WARN("not checked under AddressSanitizer, which ignores mlock");
  return;
#endif
  Scenario scenario;
  scenario.age_file("a.age", "a\n");
  const auto manifest = scenario.manifest("[secrets.\"a\"]\nfile = \"a.age\"\n");
  const auto locked_kib = [](pid_t pid) {
    return std::stoul(output_of("awk '/^VmLck:/ { print $2 }' /proc/" + std::to_string(pid) +
                                "/status"));
  };

  unsigned long foreground = 0;
  {
    Mount mount(manifest, scenario.mount_point());
    REQUIRE(read_as(mount / "a", Reader{0, 0, {}}).content == "a\n");
    foreground = locked_kib(mount.pid());
  }
  CHECK(foreground > 0);

  REQUIRE(run(shell_quoted(binary()) + " mount --manifest " + shell_quoted(manifest) +
              " --mount-point " + shell_quoted(scenario.mount_point()) + " 2>/dev/null") == 0);
  REQUIRE(read_as(scenario.mount_point() / "a", Reader{0, 0, {}}).content == "a\n");
  const std::string pid = output_of(shell_quoted(binary()) + " status --state-dir " +
                                    shell_quoted(scenario.state_dir()) +
                                    " | sed -n 's/^daemon: *running, pid //p'");
  INFO("status says the daemon's pid is: " << pid);
  REQUIRE_FALSE(pid.empty());
  CHECK(locked_kib(std::stoi(pid)) >= foreground);
  unmount_background(scenario);
}

TEST_CASE("identity files others may read are refused unless told it is development",
          "[commands]") {
  Scenario scenario;
  scenario.age_file("a.age", "a\n");
  const auto manifest = scenario.manifest("[secrets.\"a\"]\nfile = \"a.age\"\n");
  REQUIRE(::chmod(scenario.key().c_str(), 0644) == 0);
  const std::string log = (scenario.dir() / "mount.log").string();
  const std::string mount = shell_quoted(binary()) + " mount --manifest " + shell_quoted(manifest) +
                            " --mount-point " + shell_quoted(scenario.mount_point());

  // The strict daemon serves nothing it can open: the one secret gives EIO, naming the key.
  REQUIRE(run(mount + " 2> " + shell_quoted(log)) == 0);
  CHECK(read_as(scenario.mount_point() / "a", Reader{0, 0, {}}).error == EIO);
  unmount_background(scenario);
  CHECK(read_file(log).find(scenario.key().string()) != std::string::npos);

  REQUIRE(run(mount + " --insecure-identity-permissions 2>/dev/null") == 0);
  CHECK(read_as(scenario.mount_point() / "a", Reader{0, 0, {}}).content == "a\n");
  unmount_background(scenario);
}

TEST_CASE("a manifest others may change is refused, naming it", "[commands]") {
  Scenario scenario;
  scenario.age_file("a.age", "a\n");
  const auto manifest = scenario.manifest("[secrets.\"a\"]\nfile = \"a.age\"\n");
  REQUIRE(::chmod(manifest.c_str(), 0666) == 0);
  const std::string report = (scenario.dir() / "report").string();
  CHECK(run(shell_quoted(binary()) + " check --manifest " + shell_quoted(manifest) + " > " +
            shell_quoted(report)) == 1);
  CHECK(read_file(report).find(manifest.string() + ": manifest mode 0666") != std::string::npos);
  CHECK(run(shell_quoted(binary()) + " activate --manifest " + shell_quoted(manifest) +
            " 2>/dev/null") == 1);
}

TEST_CASE("keygen -o - writes only the identity to standard output", "[commands]") {
  TempDir dir;
  const auto key = dir / "key.txt";
  REQUIRE(run(shell_quoted(binary()) + " keygen -o - > " + shell_quoted(key) + " 2>/dev/null") ==
          0);
  REQUIRE(::chmod(key.c_str(), 0600) == 0);
  const std::string recipient = output_of("age-keygen -y " + shell_quoted(key));
  CHECK(recipient.rfind("age1", 0) == 0);
  CHECK(output_of(shell_quoted(binary()) + " keygen -y " + shell_quoted(key)) == recipient);
}

TEST_CASE("decrypt names its input when it fails", "[commands]") {
  Scenario scenario;
  const auto foreign = scenario.foreign_age_file("foreign.age", "x");
  const std::string log = (scenario.dir() / "log").string();
  CHECK(run(shell_quoted(binary()) + " decrypt -i " + shell_quoted(scenario.key()) + " " +
            shell_quoted(foreign) + " 2> " + shell_quoted(log)) == 1);
  CHECK(read_file(log).find(foreign.string() + ": no match: ") != std::string::npos);
}

TEST_CASE("mount tells systemd READY=1 once the mount is live, and STOPPING=1", "[commands]") {
  Scenario scenario;
  scenario.age_file("a.age", "a\n");
  const auto manifest = scenario.manifest("[secrets.\"a\"]\nfile = \"a.age\"\n");

  const auto socket_path = scenario.dir() / "notify.sock";
  const int listener = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(listener >= 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, socket_path.c_str(), sizeof address.sun_path - 1);
  REQUIRE(::bind(listener, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
  const timeval timeout{15, 0};
  REQUIRE(::setsockopt(listener, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) == 0);

  // Each datagram, and whether the mount was live the moment it arrived.
  std::vector<std::pair<std::string, bool>> messages;
  std::thread listen([&] {
    char buffer[1024];
    for (int i = 0; i < 2; ++i) {
      const ssize_t got = ::recv(listener, buffer, sizeof buffer, 0);
      if (got <= 0) {
        return;
      }
      messages.emplace_back(std::string(buffer, static_cast<std::size_t>(got)),
                            is_mounted(scenario.mount_point()));
    }
  });

  ::setenv("NOTIFY_SOCKET", socket_path.c_str(), 1);
  {
    Mount mount(manifest, scenario.mount_point());
    ::unsetenv("NOTIFY_SOCKET");
    mount.stop();
  }
  ::unsetenv("NOTIFY_SOCKET");
  listen.join();
  ::close(listener);

  REQUIRE(messages.size() == 2);
  CHECK(messages[0].first ==
        "READY=1\nSTATUS=serving generation 1 at " + scenario.mount_point().string());
  CHECK(messages[0].second);
  CHECK(messages[1].first == "STOPPING=1");
}
