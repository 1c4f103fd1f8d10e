// Generations through a real mount: activate switches atomically, rollback brings back what
// was stored, restarts serve the current generation, and a bad manifest changes nothing.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <cerrno>
#include <thread>

#include "scenario.hpp"

using namespace secretfs::test;

namespace {

const Reader kRoot{0, 0, {}};

std::string cli() {
  return shell_quoted(binary());
}

std::string activate(const std::filesystem::path& manifest) {
  return output_of(cli() + " activate --manifest " + shell_quoted(manifest) + " 2>&1");
}

std::string read_root(const Mount& mount, const std::string& name) {
  const auto result = read_as(mount / name, kRoot);
  INFO("reading " << name);
  REQUIRE(result.error == 0);
  return result.content;
}

std::string read_root_path(const std::filesystem::path& path) {
  const auto result = read_as(path, kRoot);
  return result.error == 0 ? result.content : "errno " + std::to_string(result.error);
}

std::string secret_table(const std::string& name, const std::string& file,
                         const std::string& extra = "") {
  return "[secrets.\"" + name + "\"]\nfile = \"" + file + "\"\n" + extra + "\n";
}

}  // namespace

TEST_CASE("activate switches to a new generation; open files keep theirs", "[generations]") {
  Scenario scenario;
  scenario.age_file("same.age", "same\n");
  scenario.age_file("changed-v1.age", "version one\n");
  scenario.age_file("removed.age", "removed\n");
  const auto v1 = scenario.manifest(secret_table("same", "same.age") +
                                    secret_table("changed", "changed-v1.age") +
                                    secret_table("removed", "removed.age", "mode = \"0444\""));
  Mount mount(v1, scenario.mount_point());
  CHECK(read_root(mount, "changed") == "version one\n");

  const int held = ::open((mount / "changed").c_str(), O_RDONLY);
  REQUIRE(held >= 0);

  scenario.age_file("changed-v2.age", "version two, longer\n");
  scenario.age_file("added.age", "added\n");
  const auto v2 = scenario.manifest(secret_table("same", "same.age") +
                                    secret_table("changed", "changed-v2.age") +
                                    secret_table("added", "added.age"));
  const std::string said = activate(v2);
  CHECK(said.find("generation 2 is being served (3 secrets)") != std::string::npos);
  CHECK(said.find("changed: added\nchanged: changed\nchanged: removed\n") != std::string::npos);

  CHECK(read_root(mount, "same") == "same\n");
  CHECK(read_root(mount, "changed") == "version two, longer\n");
  CHECK(read_root(mount, "added") == "added\n");
  CHECK(read_as(mount / "removed", kRoot).error == ENOENT);
  CHECK(read_as(mount / "removed", kStrangerReader).error == ENOENT);

  std::string old(64, '\0');
  const ssize_t got = ::read(held, old.data(), old.size());
  ::close(held);
  REQUIRE(got >= 0);
  old.resize(static_cast<std::size_t>(got));
  CHECK(old == "version one\n");

  SECTION("activating the same manifest again changes nothing") {
    const std::string again = activate(v2);
    CHECK(again.find("identical to generation 2") != std::string::npos);
    CHECK(again.find("changed:") == std::string::npos);
    const std::string json = output_of(cli() + " activate --json --manifest " + shell_quoted(v2));
    CHECK(json ==
          "{\"changed\":[],\"created\":false,\"generation\":2,\"pruned\":[],"
          "\"served\":true}\n");
    const std::string listed =
        output_of(cli() + " generations --state-dir " + shell_quoted(scenario.state_dir()));
    CHECK(listed.find("\n1 ") != std::string::npos);
    CHECK(listed.find("\n2 ") != std::string::npos);
    CHECK(listed.find("\n3 ") == std::string::npos);
  }

  SECTION("rollback returns to generation 1 even after its files are deleted") {
    std::filesystem::remove(scenario.dir() / "changed-v1.age");
    std::filesystem::remove(scenario.dir() / "removed.age");
    const std::string said_back =
        output_of(cli() + " rollback --state-dir " + shell_quoted(scenario.state_dir()));
    CHECK(said_back.find("generation 1 is being served") != std::string::npos);
    CHECK(read_root(mount, "changed") == "version one\n");
    CHECK(read_root(mount, "removed") == "removed\n");
    CHECK(read_as(mount / "added", kRoot).error == ENOENT);

    SECTION("and forward again with --to") {
      output_of(cli() + " rollback --to 2 --state-dir " + shell_quoted(scenario.state_dir()));
      CHECK(read_root(mount, "changed") == "version two, longer\n");
    }
  }

  SECTION("a revoked permission is revoked at once") {
    CHECK(read_as(mount / "same", kStrangerReader).error == EACCES);
    const auto open_to_all = scenario.manifest(secret_table("same", "same.age", "mode = \"0444\""));
    activate(open_to_all);
    CHECK(read_as(mount / "same", kStrangerReader).content == "same\n");
    const auto closed = scenario.manifest(secret_table("same", "same.age", "mode = \"0400\""));
    activate(closed);
    CHECK(read_as(mount / "same", kStrangerReader).error == EACCES);
  }
}

TEST_CASE("a manifest that fails validation changes nothing", "[generations]") {
  Scenario scenario;
  scenario.age_file("good.age", "good\n");
  const auto good = scenario.manifest(secret_table("good", "good.age"));
  Mount mount(good, scenario.mount_point());

  scenario.foreign_age_file("stranger.age", "x");

  for (const std::string& bad :
       {secret_table("good", "missing.age"), secret_table("good", "stranger.age"),
        secret_table("../bad", "good.age")}) {
    INFO(bad);
    const auto manifest = scenario.manifest(bad);
    const std::string report = (scenario.dir() / "report").string();
    CHECK(run(cli() + " activate --manifest " + shell_quoted(manifest) + " 2> " +
              shell_quoted(report)) == 1);
    CHECK(read_file(report).find("nothing was activated") != std::string::npos);
    CHECK(read_root(mount, "good") == "good\n");
  }
  const std::string listed =
      output_of(cli() + " generations --json --state-dir " + shell_quoted(scenario.state_dir()));
  CHECK(listed.find("\"number\": 2") == std::string::npos);
}

TEST_CASE("after kill -9 a restart serves the current generation without a manifest",
          "[generations]") {
  Scenario scenario;
  scenario.age_file("a.age", "a\n");
  const auto manifest = scenario.manifest(secret_table("a", "a.age"));
  {
    Mount first(manifest, scenario.mount_point());
    REQUIRE(read_root(first, "a") == "a\n");
    ::kill(first.pid(), SIGKILL);
    first.stop();
    // The dead daemon leaves a mount that answers ENOTCONN until the next start detaches it.
  }
  const std::string offline =
      output_of(cli() + " status --state-dir " + shell_quoted(scenario.state_dir()));
  CHECK(offline.find("daemon:      not running") != std::string::npos);
  CHECK(offline.find("generation:  1") != std::string::npos);
  CHECK(offline.find("secrets:     1") != std::string::npos);

  Mount second(scenario.state_dir(), scenario.mount_point(), MountSource::state_dir);
  CHECK(read_root(second, "a") == "a\n");

  const std::string status =
      output_of(cli() + " status --json --state-dir " + shell_quoted(scenario.state_dir()));
  CHECK(status.find("\"generation\": 1") != std::string::npos);
  CHECK(status.find("\"pid\": " + std::to_string(second.pid())) != std::string::npos);
}

TEST_CASE("pruning keeps keep_generations and drops unreferenced blobs", "[generations]") {
  Scenario scenario;
  for (int version = 1; version <= 5; ++version) {
    scenario.age_file("v.age", "version " + std::to_string(version) + "\n");
    activate(scenario.manifest("keep_generations = 3\n" + secret_table("v", "v.age")));
  }
  const std::string listed =
      output_of(cli() + " generations --state-dir " + shell_quoted(scenario.state_dir()));
  for (const char* gone : {"\n1 ", "\n2 "}) {
    CHECK(listed.find(gone) == std::string::npos);
  }
  for (const char* kept : {"\n3 ", "\n4 ", "\n5 "}) {
    CHECK(listed.find(kept) != std::string::npos);
  }
  std::size_t blobs = 0;
  for ([[maybe_unused]] const auto& blob :
       std::filesystem::directory_iterator(scenario.state_dir() / "blobs")) {
    ++blobs;
  }
  CHECK(blobs == 3);
}

TEST_CASE("readers never see a mix while generations switch", "[generations]") {
  Scenario scenario;
  const std::string one = pattern(70000);
  const std::string two(70000, 'z');
  scenario.age_file("one.age", one);
  scenario.age_file("two.age", two);
  const auto first = scenario.manifest(secret_table("s", "one.age", "mode = \"0444\""));
  std::filesystem::copy_file(first, scenario.dir() / "first.toml");
  const auto second = scenario.manifest(secret_table("s", "two.age", "mode = \"0444\""));
  std::filesystem::copy_file(second, scenario.dir() / "second.toml");

  Mount mount(scenario.dir() / "first.toml", scenario.mount_point());
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::atomic<int> bad{0};
  // Threads read as root without Catch2 macros, which are not thread-safe.
  const std::string path = (mount / "s").string();
  std::vector<std::thread> readers;
  for (int reader = 0; reader < 8; ++reader) {
    readers.emplace_back([&] {
      std::string content;
      std::array<char, 65536> buffer{};
      while (!done) {
        content.clear();
        const int fd = ::open(path.c_str(), O_RDONLY);
        ssize_t got = fd < 0 ? -1 : 0;
        while (fd >= 0 && (got = ::read(fd, buffer.data(), buffer.size())) > 0) {
          content.append(buffer.data(), static_cast<std::size_t>(got));
        }
        if (fd >= 0) {
          ::close(fd);
        }
        if (got < 0 || (content != one && content != two)) {
          ++bad;
        }
        ++reads;
      }
    });
  }
  for (int round = 0; round < 25; ++round) {
    activate(scenario.dir() / "second.toml");
    activate(scenario.dir() / "first.toml");
  }
  done = true;
  for (auto& reader : readers) {
    reader.join();
  }
  CHECK(reads > 0);
  CHECK(bad == 0);
}

TEST_CASE("activate killed at any moment leaves a state the next run reads", "[generations]") {
  Scenario scenario;
  std::string secrets;
  for (int i = 0; i < 60; ++i) {
    scenario.age_file("s" + std::to_string(i) + ".age", "value " + std::to_string(i));
    secrets += secret_table("s/" + std::to_string(i), "s" + std::to_string(i) + ".age");
  }
  const auto manifest = scenario.manifest(secrets);
  for (int delay_ms = 0; delay_ms < 40; delay_ms += 4) {
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      ::execl(
          "/bin/sh", "sh", "-c",
          (cli() + " activate --manifest " + shell_quoted(manifest) + " >/dev/null 2>&1").c_str(),
          static_cast<char*>(nullptr));
      ::_exit(127);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    // Each pass writes a new manifest so that every activation has something to store.
    scenario.manifest(secrets + "# pass " + std::to_string(delay_ms) + "\n");
  }
  activate(scenario.manifest(secrets));
  Mount mount(scenario.state_dir(), scenario.mount_point(), MountSource::state_dir);
  CHECK(read_root(mount, "s/0") == "value 0");
  CHECK(read_root(mount, "s/59") == "value 59");
}

TEST_CASE("the control socket refuses peers other than root", "[generations]") {
  Scenario scenario;
  scenario.age_file("a.age", "a\n");
  Mount mount(scenario.manifest(secret_table("a", "a.age")), scenario.mount_point());
  // Open the way to the socket on purpose: the daemon must still check who is asking.
  REQUIRE(::chmod(scenario.state_dir().c_str(), 0711) == 0);
  REQUIRE(::chmod((scenario.state_dir() / "control.sock").c_str(), 0666) == 0);
  const auto socket = scenario.state_dir() / "control.sock";
  const std::string request = "{\"command\": \"status\"}\n";

  const std::string refused = ask_as(socket, request, kStrangerReader);
  CHECK(refused.find("only root may control secretfs") != std::string::npos);
  CHECK(refused.find("\"pid\"") == std::string::npos);

  const std::string answered = ask_as(socket, request, kRoot);
  CHECK(answered.find("\"pid\":" + std::to_string(mount.pid())) != std::string::npos);
}

TEST_CASE("a switch to something other than a generation number is refused", "[generations]") {
  Scenario scenario;
  scenario.age_file("a.age", "a\n");
  Mount mount(scenario.manifest(secret_table("a", "a.age")), scenario.mount_point());
  const auto socket = scenario.state_dir() / "control.sock";
  for (const std::string generation : {"-1", "1e+23", "\"1\"", "1.5"}) {
    INFO(generation);
    const std::string answer =
        ask_as(socket, "{\"command\": \"switch\", \"generation\": " + generation + "}\n", kRoot);
    CHECK(answer.find("\"ok\":false") != std::string::npos);
    CHECK(answer.find("`generation` must be a generation number, not ") != std::string::npos);
  }
  CHECK(read_root(mount, "a") == "a\n");
}

TEST_CASE("a second daemon on the same state directory is refused", "[generations]") {
  Scenario scenario;
  scenario.age_file("a.age", "a\n");
  const auto manifest = scenario.manifest(secret_table("a", "a.age"));
  Mount mount(manifest, scenario.mount_point());
  const std::string log = (scenario.dir() / "second.log").string();
  CHECK(run(cli() + " mount --foreground --state-dir " + shell_quoted(scenario.state_dir()) +
            " --mount-point " + shell_quoted(scenario.dir() / "other") + " 2> " +
            shell_quoted(log)) == 1);
  CHECK(read_file(log).find("another secretfs daemon already serves") != std::string::npos);
  CHECK_FALSE(is_mounted(scenario.dir() / "other"));

  // The first daemon still answers its control socket.
  const std::string status =
      output_of(cli() + " status --json --state-dir " + shell_quoted(scenario.state_dir()));
  CHECK(status.find("\"pid\": " + std::to_string(mount.pid())) != std::string::npos);
}

TEST_CASE("rollback to a generation that no longer opens is refused", "[generations]") {
  Scenario scenario;
  const auto spare_key = scenario.dir() / "spare.txt";
  std::filesystem::copy_file(scenario.key(), spare_key);
  scenario.age_file("v1.age", "one\n");
  activate(scenario.manifest(secret_table("s", "v1.age"),
                             "\"" + spare_key.string() + "\""));
  scenario.age_file("v2.age", "two\n");
  activate(scenario.manifest(secret_table("s", "v2.age")));
  std::filesystem::remove(spare_key);

  const std::string log = (scenario.dir() / "log").string();
  const std::string rollback =
      cli() + " rollback --state-dir " + shell_quoted(scenario.state_dir()) + " 2> " +
      shell_quoted(log);

  SECTION("without a daemon") {
    CHECK(run(rollback) == 1);
    CHECK(read_file(log).find(spare_key.string()) != std::string::npos);
    CHECK(read_file(log).find("generation 1 has 2 problems;") != std::string::npos);
    CHECK(read_file(scenario.state_dir() / "current") == "2\n");
  }

  SECTION("with a daemon, which keeps serving") {
    Mount mount(scenario.state_dir(), scenario.mount_point(), MountSource::state_dir);
    CHECK(run(rollback) == 1);
    CHECK(read_file(log).find("generation 1 has 2 problems;") != std::string::npos);
    CHECK(read_file(scenario.state_dir() / "current") == "2\n");
    CHECK(read_root(mount, "s") == "two\n");
  }
}

TEST_CASE("a stored ciphertext changed behind secretfs gives EIO", "[generations]") {
  Scenario scenario;
  scenario.age_file("a.age", "original\n");
  scenario.age_file("b.age", "substitute\n");
  activate(scenario.manifest(secret_table("a", "a.age") + secret_table("b", "b.age")));
  Mount mount(scenario.state_dir(), scenario.mount_point(), MountSource::state_dir);

  // Swap in another valid ciphertext for the same key under a's name.
  std::filesystem::path a_blob;
  for (const auto& blob : std::filesystem::directory_iterator(scenario.state_dir() / "blobs")) {
    if (read_file(blob.path()) == read_file(scenario.dir() / "a.age")) {
      a_blob = blob.path();
    }
  }
  REQUIRE_FALSE(a_blob.empty());
  std::filesystem::copy_file(scenario.dir() / "b.age", a_blob,
                             std::filesystem::copy_options::overwrite_existing);

  CHECK(read_as(mount / "a", kRoot).error == EIO);
  CHECK(mount.log().find("does not match its SHA-256") != std::string::npos);
  CHECK(read_root(mount, "b") == "substitute\n");
}

TEST_CASE("a restart detaches the mount of a daemon killed while readers loop",
          "[generations]") {
  Scenario scenario;
  scenario.age_file("a.age", "a\n");
  activate(scenario.manifest(secret_table("a", "a.age", "mode = \"0444\"")));
  REQUIRE(run(cli() + " mount --state-dir " + shell_quoted(scenario.state_dir()) +
              " --mount-point " + shell_quoted(scenario.mount_point()) + " 2>/dev/null") == 0);
  const std::string status =
      output_of(cli() + " status --json --state-dir " + shell_quoted(scenario.state_dir()));
  const auto at = status.find("\"pid\": ");
  REQUIRE(at != std::string::npos);
  const pid_t first = std::stoi(status.substr(at + 7));

  // Warm the kernel's caches the way a busy reader does, then kill without unmounting.
  for (int i = 0; i < 20; ++i) {
    REQUIRE(read_root_path(scenario.mount_point() / "a") == "a\n");
  }
  REQUIRE(::kill(first, SIGKILL) == 0);
  for (int i = 0; i < 100 && ::kill(first, 0) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }

  Mount second(scenario.state_dir(), scenario.mount_point(), MountSource::state_dir);
  CHECK(read_root(second, "a") == "a\n");
  CHECK(second.log().find("died without unmounting") != std::string::npos);
  const std::string mounts = read_file("/proc/self/mountinfo");
  std::size_t layers = 0;
  for (auto at_mount = mounts.find(" " + scenario.mount_point().string() + " ");
       at_mount != std::string::npos;
       at_mount = mounts.find(" " + scenario.mount_point().string() + " ", at_mount + 1)) {
    ++layers;
  }
  CHECK(layers == 1);
}

TEST_CASE("generations lists a damaged generation among the good ones", "[generations]") {
  Scenario scenario;
  scenario.age_file("a.age", "a\n");
  activate(scenario.manifest(secret_table("a", "a.age")));
  activate(scenario.manifest(secret_table("a", "a.age", "mode = \"0440\"")));
  write_file(scenario.state_dir() / "generations/1/generation.json", "{", 0600);
  const std::string listed =
      output_of(cli() + " generations --state-dir " + shell_quoted(scenario.state_dir()));
  CHECK(listed.find("\n1          damaged: ") != std::string::npos);
  CHECK(listed.find("\n2 ") != std::string::npos);
  CHECK(run(cli() + " generations --state-dir " + shell_quoted(scenario.dir() / "typo") +
            " 2>/dev/null") == 1);
  CHECK_FALSE(std::filesystem::exists(scenario.dir() / "typo"));
}
