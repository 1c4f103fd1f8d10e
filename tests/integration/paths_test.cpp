// The paths the daemon trusts, end to end: a state directory whose generations another user
// could have written, commands that only read it, a mount point reached through a symbolic
// link, identity files and manifests in folders others may change, and what
// --insecure-identity-permissions lets through.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "scenario.hpp"

using namespace secretfs::test;

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
constexpr auto kGoneWithin = 10s;
constexpr auto kPoll = 20ms;
const Reader kRoot{0, 0, {}};

std::string cli() {
  return shell_quoted(binary());
}

std::string secret_table(const std::string& name, const std::filesystem::path& file) {
  return "[secrets.\"" + name + "\"]\nfile = \"" + file.string() + "\"\n";
}

void change_mode(const std::filesystem::path& path, mode_t mode) {
  REQUIRE(::chmod(path.c_str(), mode) == 0);
}

// "PATH (owner uid 0, mode M)", as messages describe what they refuse.
std::string described(const std::filesystem::path& path, const std::string& mode) {
  return path.string() + " (owner uid " + std::to_string(::geteuid()) + ", mode " + mode + ")";
}

// Waits until `pid`, which is not this process's child, is gone.
bool gone(pid_t pid) {
  const auto deadline = Clock::now() + kGoneWithin;
  while (::kill(pid, 0) == 0) {
    if (Clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(kPoll);
  }
  return true;
}

// What `secretfs status` says once the daemon answers it: `mount` returns when the mount is
// live, a moment before the control socket listens.
std::string daemon_status(const std::filesystem::path& state_dir) {
  const auto deadline = Clock::now() + kGoneWithin;
  std::string status;
  do {
    status = output_of(cli() + " status --state-dir " + shell_quoted(state_dir));
    if (status.find("daemon:      running") != std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(kPoll);
  } while (Clock::now() < deadline);
  return status;
}

// `secretfs mount` started without --foreground, as an admin would: the command returns once
// the mount is live, or with the daemon's status when it fails first. However the test ends,
// the daemon is killed and the mount at `real_point` detached.
class Detached {
 public:
  Detached(const std::filesystem::path& state_dir, const std::filesystem::path& real_point)
      : state_dir_(state_dir), real_point_(real_point) {}
  ~Detached() {
    if (const pid_t running = pid(); running > 0) {
      ::kill(running, SIGKILL);
      gone(running);
    }
    if (is_mounted(real_point_)) {
      run("fusermount3 -uz " + shell_quoted(real_point_) + " 2>/dev/null");
    }
  }
  Detached(const Detached&) = delete;
  Detached& operator=(const Detached&) = delete;

  // Runs `secretfs mount ARGUMENTS` with its standard error in `log`; returns its exit status.
  int start(const std::string& arguments, const std::filesystem::path& log) const {
    return run(cli() + " mount " + arguments + " 2> " + shell_quoted(log));
  }

  // The daemon's pid from `secretfs status`, or -1 when none answers.
  pid_t pid() const {
    const std::string status = output_of(cli() + " status --json --state-dir " +
                                         shell_quoted(state_dir_) + " 2>/dev/null || true");
    const auto json = nlohmann::json::parse(status, nullptr, false);
    return json.is_object() && json.contains("pid") ? json["pid"].get<pid_t>() : -1;
  }

 private:
  std::filesystem::path state_dir_;
  std::filesystem::path real_point_;
};

}  // namespace

TEST_CASE("a generation others may write to is listed as damaged, never rolled back to or served",
          "[paths]") {
  Scenario scenario;
  const auto one = scenario.age_file("one.age", "one\n");
  output_of(cli() + " activate --manifest " +
            shell_quoted(scenario.manifest(secret_table("s", one))));
  const auto two = scenario.age_file("two.age", "two\n");
  output_of(cli() + " activate --manifest " +
            shell_quoted(scenario.manifest(secret_table("s", two))));

  // As the review found it: folders above readable by all, generation 1 writable by all, so
  // that a user could rewrite its manifest and the hash that checks it.
  const auto state = scenario.state_dir();
  const auto generation = state / "generations" / "1";
  change_mode(state, 0755);
  change_mode(state / "generations", 0755);
  change_mode(generation, 0777);
  change_mode(generation / "manifest.toml", 0666);
  change_mode(generation / "generation.json", 0666);
  const std::string refused =
      "generation 1: " + described(generation, "0777") +
      ": group or others may write to it, so it may not be what was activated; remove the "
      "generation (rm -r " +
      generation.string() + "), or check it and chmod go-w " + generation.string();

  const std::string listed = output_of(cli() + " generations --state-dir " + shell_quoted(state));
  INFO(listed);
  CHECK(listed.find("\n1          damaged: " + refused + "\n") != std::string::npos);
  CHECK(listed.find("\n2          ") != std::string::npos);

  const auto log = scenario.dir() / "log";
  CHECK(run(cli() + " rollback --state-dir " + shell_quoted(state) + " 2> " + shell_quoted(log)) ==
        1);
  CHECK(read_file(log) == "secretfs: " + refused + "\n");
  CHECK(read_file(state / "current") == "2\n");

  // A daemon that finds it current (as after a crash between recording and switching) refuses
  // to serve it.
  write_file(state / "current", "1\n");
  const Detached daemon(state, scenario.mount_point());
  CHECK(daemon.start("--state-dir " + shell_quoted(state) + " --mount-point " +
                         shell_quoted(scenario.mount_point()),
                     log) == 1);
  CHECK(read_file(log).find(refused) != std::string::npos);
  CHECK_FALSE(is_mounted(scenario.mount_point()));
}

TEST_CASE("status, generations and list create nothing where there is no state directory",
          "[paths]") {
  TempDir dir;
  const auto empty = dir / "empty";
  std::filesystem::create_directory(empty);
  const auto log = dir / "log";
  for (const char* command : {"status", "generations", "list"}) {
    INFO("secretfs " << command);
    CHECK(run(cli() + " " + command + " --state-dir " + shell_quoted(empty) + " 2> " +
              shell_quoted(log)) == 1);
    CHECK(read_file(log) == "secretfs: " + empty.string() +
                                " is not a state directory (it has no blobs/ folder; see "
                                "--state-dir)\n");
    CHECK(std::filesystem::is_empty(empty));
  }
}

TEST_CASE("a user who may not read the state directory is told to run as root", "[paths]") {
  Scenario scenario;
  const auto file = scenario.age_file("a.age", "a\n");
  output_of(cli() + " activate --manifest " +
            shell_quoted(scenario.manifest(secret_table("a", file))));
  const auto log = scenario.dir() / "log";
  for (const char* command : {"status", "generations", "list"}) {
    INFO("secretfs " << command);
    CHECK(run("setpriv --reuid " + std::to_string(kStranger) + " --regid " +
              std::to_string(kStrangerGroup) + " --clear-groups " + cli() + " " + command +
              " --state-dir " + shell_quoted(scenario.state_dir()) + " 2> " + shell_quoted(log)) ==
          1);
    CHECK(read_file(log) == "secretfs: state directory " + described(scenario.state_dir(), "0700") +
                                ": uid " + std::to_string(kStranger) +
                                " may not read it; run the command as root\n");
  }
}

TEST_CASE(
    "a mount point reached through a link is mounted, reported and unmounted by its real path",
    "[paths]") {
  Scenario scenario;
  const auto file = scenario.age_file("a.age", "a\n");
  const auto real = scenario.dir() / "real";
  const auto elsewhere = scenario.dir() / "elsewhere";
  const auto link = scenario.dir() / "link";
  std::filesystem::create_directory(real);
  std::filesystem::create_directory(elsewhere);
  std::filesystem::create_directory_symlink(real, link);
  const auto manifest = scenario.manifest(secret_table("a", file));
  const auto log = scenario.dir() / "log";

  const Detached daemon(scenario.state_dir(), real);
  REQUIRE(
      daemon.start("--manifest " + shell_quoted(manifest) + " --mount-point " + shell_quoted(link),
                   log) == 0);
  const std::string said = read_file(log);
  INFO(said);
  CHECK(said.find("mount point " + link.string() +
                  " is reached through a symbolic link; mounting on its real path " +
                  real.string() + "\n") != std::string::npos);
  CHECK(said.find("mounted 1 secret (generation 1) at " + real.string() + "\n") !=
        std::string::npos);
  CHECK(is_mounted(real));
  CHECK(daemon_status(scenario.state_dir()).find("mount point: " + real.string() + "\n") !=
        std::string::npos);
  CHECK(read_as(link / "a", kRoot).content == "a\n");

  // The link now leads elsewhere; the daemon still unmounts where it mounted.
  const pid_t pid = daemon.pid();
  REQUIRE(pid > 0);
  std::filesystem::remove(link);
  std::filesystem::create_directory_symlink(elsewhere, link);
  REQUIRE(::kill(pid, SIGTERM) == 0);
  REQUIRE(gone(pid));
  CHECK_FALSE(is_mounted(real));
}

TEST_CASE("a mount point that would hide an identity reached through a link is refused",
          "[paths]") {
  Scenario scenario;
  const auto file = scenario.age_file("a.age", "a\n");
  const auto mount_point = scenario.dir() / "mnt";
  const auto hidden = mount_point / "keys";
  std::filesystem::create_directories(hidden);
  std::filesystem::copy_file(scenario.key(), hidden / "key.txt");
  const auto keys = scenario.dir() / "keys";
  std::filesystem::create_directory_symlink(hidden, keys);
  const auto manifest =
      scenario.manifest(secret_table("a", file), "\"" + (keys / "key.txt").string() + "\"");
  const auto log = scenario.dir() / "log";

  const Detached daemon(scenario.state_dir(), mount_point);
  CHECK(daemon.start("--manifest " + shell_quoted(manifest) + " --mount-point " +
                         shell_quoted(mount_point) + " --allow-non-empty",
                     log) == 1);
  CHECK(read_file(log).find("mount point " + mount_point.string() + " would hide " +
                            (keys / "key.txt").string() + " (really " +
                            (hidden / "key.txt").string() +
                            "), which the daemon reads while serving; choose a mount point "
                            "outside it") != std::string::npos);
  CHECK_FALSE(is_mounted(mount_point));
}

TEST_CASE("an identity file in a folder others may write to is refused unless it is sticky",
          "[paths]") {
  Scenario scenario;
  const auto file = scenario.age_file("a.age", "a\n");
  const auto open = scenario.dir() / "open";
  std::filesystem::create_directory(open);
  const auto key = open / "key.txt";
  std::filesystem::copy_file(scenario.key(), key);
  change_mode(open, 0777);
  const auto manifest = scenario.manifest(secret_table("a", file), "\"" + key.string() + "\"");
  const auto report = scenario.dir() / "report";
  const std::string check =
      cli() + " check --manifest " + shell_quoted(manifest) + " > " + shell_quoted(report);

  CHECK(run(check) == 1);
  CHECK(read_file(report).find(
            "error: identity file " + key.string() + ": its folder " + described(open, "0777") +
            " lets group or others replace the file; chmod go-w " + open.string() +
            ", or keep the file in a folder only root may change\n") != std::string::npos);

  // Sticky, as /tmp: only the key's owner may rename or remove it.
  change_mode(open, 01777);
  CHECK(run(check) == 0);
  CHECK(read_file(report).find("manifest.toml: 1 secret, 0 problems\n") != std::string::npos);
}

TEST_CASE("a manifest in a folder others may write to is refused unless it is sticky", "[paths]") {
  Scenario scenario;
  const auto file = scenario.age_file("a.age", "a\n");
  const auto open = scenario.dir() / "open";
  std::filesystem::create_directory(open);
  const auto manifest = open / "manifest.toml";
  write_file(manifest,
             "state_dir = \"" + scenario.state_dir().string() + "\"\nidentities = [\"" +
                 scenario.key().string() + "\"]\n" + secret_table("a", file),
             0644);
  change_mode(open, 0777);
  const auto report = scenario.dir() / "report";
  const std::string check =
      cli() + " check --manifest " + shell_quoted(manifest) + " > " + shell_quoted(report);

  CHECK(run(check) == 1);
  CHECK(read_file(report) == "error: " + manifest.string() + ": manifest folder " +
                                 described(open, "0777") +
                                 " lets group or others replace the manifest; chmod go-w " +
                                 open.string() + ", or keep the manifest elsewhere\n");
  CHECK(run(cli() + " activate --manifest " + shell_quoted(manifest) + " 2>/dev/null") == 1);
  CHECK_FALSE(std::filesystem::exists(scenario.state_dir()));

  change_mode(open, 01777);
  CHECK(run(check) == 0);
}

TEST_CASE("--insecure-identity-permissions names each key it lets through, in check and mount",
          "[paths]") {
  Scenario scenario;
  const auto file = scenario.age_file("a.age", "a\n");
  change_mode(scenario.key(), 0604);
  const auto manifest = scenario.manifest(secret_table("a", file));
  const std::string waived = "identity file " + scenario.key().string() +
                             ": mode 0604 gives access to group or others; chmod 600 it";
  const auto report = scenario.dir() / "report";
  const std::string check = cli() + " check --manifest " + shell_quoted(manifest);

  CHECK(run(check + " > " + shell_quoted(report)) == 1);
  CHECK(read_file(report).find("error: " + waived + "\n") != std::string::npos);
  CHECK(run(check + " --insecure-identity-permissions > " + shell_quoted(report)) == 0);
  CHECK(read_file(report) == "warning: " + waived +
                                 "; accepted because of --insecure-identity-permissions\n" +
                                 manifest.string() + ": 1 secret, 0 problems\n");

  const auto log = scenario.dir() / "log";
  const Detached daemon(scenario.state_dir(), scenario.mount_point());
  REQUIRE(daemon.start("--manifest " + shell_quoted(manifest) + " --mount-point " +
                           shell_quoted(scenario.mount_point()) +
                           " --insecure-identity-permissions",
                       log) == 0);
  CHECK(
      read_file(log).find(waived + "; used anyway because of --insecure-identity-permissions\n") !=
      std::string::npos);
  CHECK(read_as(scenario.mount_point() / "a", kRoot).content == "a\n");
}
