// Every open of a secret leaves a record: who, what, which generation, and the outcome.
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "scenario.hpp"

using namespace secretfs::test;
using nlohmann::json;

namespace {

constexpr auto kPoll = std::chrono::milliseconds(20);
constexpr int kPolls = 100;

// Two secrets the owner may read, one no identity opens.
std::string secrets(const std::string& top_level) {
  return top_level + R"(
[secrets."mine"]
file = "mine.age"
owner = 4001
group = 4100
mode = "0400"

[secrets."broken"]
file = "broken.age"
)";
}

// The records of `path`: every line must parse. A last line without its newline is a record the
// daemon is still writing (or, on a full disk, about to cut off) and is not counted yet.
std::vector<json> records_in(const std::filesystem::path& path) {
  std::vector<json> records;
  const std::string text = std::filesystem::exists(path) ? read_file(path) : std::string();
  std::size_t start = 0;
  for (std::size_t end = text.find('\n'); end != std::string::npos;
       start = end + 1, end = text.find('\n', start)) {
    records.push_back(json::parse(text.substr(start, end - start)));
  }
  return records;
}

// The records of `path` once it holds `count` of them (the daemon writes as it answers).
std::vector<json> wait_for_records(const std::filesystem::path& path, std::size_t count) {
  for (int i = 0; i < kPolls && records_in(path).size() < count; ++i) {
    std::this_thread::sleep_for(kPoll);
  }
  return records_in(path);
}

// What the kernel reports as the command name of a reader forked from this process.
std::string own_command_name() {
  std::string name = read_file("/proc/self/comm");
  if (!name.empty() && name.back() == '\n') {
    name.pop_back();
  }
  return name;
}

void check_record(const json& record, const std::string& secret, const Reader& reader,
                  const std::string& result, int error) {
  INFO(record.dump());
  CHECK(record.at("secret") == secret);
  // The manifest holds a secret no identity opens, so it is served as it is, not stored as a
  // generation: generation 0.
  CHECK(record.at("generation") == 0);
  CHECK(record.at("uid") == reader.uid);
  CHECK(record.at("gid") == reader.gid);
  CHECK(record.at("pid").get<int>() > 0);
  CHECK(record.at("process") == own_command_name());
  CHECK(record.at("result") == result);
  CHECK(record.at("time").get<std::string>().size() ==
        std::string("2026-12-03T19:04:13.123Z").size());
  if (error == 0) {
    CHECK_FALSE(record.contains("errno"));
  } else {
    CHECK(record.at("errno") == error);
  }
}

class AuditScenario {
 public:
  explicit AuditScenario(const std::string& top_level) {
    scenario_.age_file("mine.age", "mine\n");
    scenario_.foreign_age_file("broken.age", "broken\n");
    manifest_ = scenario_.manifest(secrets(top_level));
  }
  const Scenario& scenario() const { return scenario_; }
  const std::filesystem::path& manifest() const { return manifest_; }

 private:
  Scenario scenario_;
  std::filesystem::path manifest_;
};

std::string cli() {
  return shell_quoted(binary());
}

// The `problems` of `secretfs COMMAND --json` for the daemon of `state_dir`.
std::vector<std::string> problems_of(const std::string& command,
                                     const std::filesystem::path& state_dir) {
  const auto answer = json::parse(
      output_of(cli() + " " + command + " --json --state-dir " + shell_quoted(state_dir)));
  return answer.at("problems").get<std::vector<std::string>>();
}

bool mentions_audit_log(const std::vector<std::string>& problems) {
  for (const auto& problem : problems) {
    if (problem.find("audit log") != std::string::npos) {
      return true;
    }
  }
  return false;
}

std::size_t count_of(const std::string& text, const std::string& part) {
  std::size_t count = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) {
    ++count;
  }
  return count;
}

// A daemon started in the background (`secretfs mount` without --foreground): unmounted, and
// waited for until it has let go of its state directory, however the test ends.
class BackgroundMount {
 public:
  explicit BackgroundMount(const Scenario& scenario) : scenario_(scenario) {}
  ~BackgroundMount() {
    run("fusermount3 -uz " + shell_quoted(scenario_.mount_point()) + " 2>/dev/null");
    run("for i in $(seq 500); do flock -n " + shell_quoted(scenario_.state_dir() / "daemon.lock") +
        " true && exit 0; sleep 0.01; done; exit 1");
  }
  BackgroundMount(const BackgroundMount&) = delete;
  BackgroundMount& operator=(const BackgroundMount&) = delete;

 private:
  const Scenario& scenario_;
};

// A tmpfs of `size` bytes mounted on `point`, detached however the test ends.
class SmallFilesystem {
 public:
  SmallFilesystem(const std::filesystem::path& point, const std::string& size) : point_(point) {
    std::filesystem::create_directories(point_);
    REQUIRE(::mount("tmpfs", point_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV,
                    ("size=" + size + ",mode=0700").c_str()) == 0);
  }
  ~SmallFilesystem() { ::umount2(point_.c_str(), MNT_DETACH); }
  SmallFilesystem(const SmallFilesystem&) = delete;
  SmallFilesystem& operator=(const SmallFilesystem&) = delete;

 private:
  std::filesystem::path point_;
};

}  // namespace

TEST_CASE("every open of a secret is recorded: granted, denied and failed", "[audit]") {
  TempDir logs;
  const auto log = logs / "audit.jsonl";
  const AuditScenario audit("audit_log = \"" + log.string() + "\"\n");
  Mount mount(audit.manifest(), audit.scenario().mount_point());
  const Reader root{0, 0, {}};

  CHECK(read_as(mount / "mine", kOwnerReader).content == "mine\n");
  CHECK(read_as(mount / "mine", kStrangerReader).error == EACCES);
  CHECK(read_as(mount / "broken", root).error == EIO);

  const auto records = wait_for_records(log, 3);
  REQUIRE(records.size() == 3);
  check_record(records[0], "mine", kOwnerReader, "granted", 0);
  check_record(records[1], "mine", kStrangerReader, "denied", EACCES);
  check_record(records[2], "broken", root, "failed", EIO);

  struct stat status {};
  REQUIRE(::stat(log.c_str(), &status) == 0);
  CHECK((status.st_mode & 07777) == 0600);
  CHECK(status.st_uid == 0);
  // Never content: neither plaintext appears in the trail.
  const std::string text = read_file(log);
  CHECK(text.find("mine\\n") == std::string::npos);
  CHECK(text.find("broken\\n") == std::string::npos);
}

TEST_CASE("SIGHUP reopens the audit log, so that it can be rotated", "[audit]") {
  TempDir logs;
  const auto log = logs / "audit.jsonl";
  const AuditScenario audit("audit_log = \"" + log.string() + "\"\n");
  Mount mount(audit.manifest(), audit.scenario().mount_point());

  CHECK(read_as(mount / "mine", kOwnerReader).error == 0);
  REQUIRE(wait_for_records(log, 1).size() == 1);
  std::filesystem::rename(log, logs / "audit.jsonl.1");
  REQUIRE(::kill(mount.pid(), SIGHUP) == 0);
  CHECK(read_as(mount / "mine", kStrangerReader).error == EACCES);

  const auto rotated = records_in(logs / "audit.jsonl.1");
  const auto fresh = wait_for_records(log, 1);
  REQUIRE(rotated.size() == 1);
  REQUIRE(fresh.size() == 1);
  CHECK(rotated[0].at("result") == "granted");
  CHECK(fresh[0].at("result") == "denied");
  CHECK(is_mounted(mount.point()));
}

TEST_CASE("without audit_log the records go to the daemon's log", "[audit]") {
  const AuditScenario audit("");
  Mount mount(audit.manifest(), audit.scenario().mount_point());
  CHECK(read_as(mount / "mine", kStrangerReader).error == EACCES);
  std::string log;
  for (int i = 0; i < kPolls && log.find("\"result\":\"denied\"") == std::string::npos; ++i) {
    std::this_thread::sleep_for(kPoll);
    log = mount.log();
  }
  CHECK(log.find("info audit {\"time\":") != std::string::npos);
  CHECK(log.find("\"secret\":\"mine\"") != std::string::npos);
  CHECK(log.find("\"result\":\"denied\",\"errno\":13}") != std::string::npos);
}

TEST_CASE("an audit log that others may read is refused, and the records go to the log",
          "[audit]") {
  TempDir logs;
  const auto log = logs / "audit.jsonl";
  write_file(log, "", 0644);
  const AuditScenario audit("audit_log = \"" + log.string() + "\"\n");
  Mount mount(audit.manifest(), audit.scenario().mount_point());
  CHECK(read_as(mount / "mine", kOwnerReader).error == 0);
  std::string daemon_log;
  for (int i = 0; i < kPolls && daemon_log.find("info audit") == std::string::npos; ++i) {
    std::this_thread::sleep_for(kPoll);
    daemon_log = mount.log();
  }
  CHECK(daemon_log.find("audit log " + log.string() +
                        " not used: owned by uid 0 with mode 0644; the audit log must be the "
                        "daemon's alone (chown root, chmod 0600); records go to this log until "
                        "it is fixed and the daemon gets SIGHUP") != std::string::npos);
  CHECK(daemon_log.find("info audit {") != std::string::npos);
  CHECK(read_file(log).empty());
}

// The file is opened when the daemon starts, not at the first open of a secret: while a
// background start still prints on the terminal, and before systemd hears that it is ready.
TEST_CASE("an audit log that cannot be used is an error when the daemon starts", "[audit]") {
  TempDir logs;
  const auto log = logs / "audit.jsonl";
  write_file(logs / "elsewhere", "");
  std::filesystem::create_symlink(logs / "elsewhere", log);
  const std::string error = "audit log " + log.string() +
                            " not used: is a symbolic link; name the file itself (links are not "
                            "followed); records go to this log until it is fixed and the daemon "
                            "gets SIGHUP";
  const AuditScenario audit("audit_log = \"" + log.string() + "\"\n");

  SECTION("in the foreground") {
    Mount mount(audit.manifest(), audit.scenario().mount_point());
    CHECK(mount.log().find(error) != std::string::npos);
  }
  SECTION("in the background, on the terminal of whoever started it") {
    const auto terminal = audit.scenario().dir() / "terminal";
    const BackgroundMount background(audit.scenario());
    REQUIRE(run(cli() + " mount --manifest " + shell_quoted(audit.manifest()) + " --mount-point " +
                shell_quoted(audit.scenario().mount_point()) + " 2> " + shell_quoted(terminal)) ==
            0);
    CHECK(read_file(terminal).find(error) != std::string::npos);
  }
  CHECK(read_file(logs / "elsewhere").empty());
}

TEST_CASE("status and list report an audit log that is not used until SIGHUP reopens it",
          "[audit]") {
  TempDir logs;
  const auto log = logs / "audit.jsonl";
  write_file(logs / "elsewhere", "");
  std::filesystem::create_symlink(logs / "elsewhere", log);
  const AuditScenario audit("audit_log = \"" + log.string() + "\"\n");
  const auto state_dir = audit.scenario().state_dir();
  Mount mount(audit.manifest(), audit.scenario().mount_point());

  const std::string problem = "audit log " + log.string() +
                              " not used: is a symbolic link; name the file itself (links are "
                              "not followed); records go to the daemon's log";
  const std::string status = output_of(cli() + " status --state-dir " + shell_quoted(state_dir));
  CHECK(status.find("\nproblem:     " + problem + "\n") != std::string::npos);
  const std::string list = output_of(cli() + " list --state-dir " + shell_quoted(state_dir));
  CHECK(list.find("\nproblem: " + problem + "\n") != std::string::npos);
  const auto in = [](const std::vector<std::string>& problems, const std::string& wanted) {
    return std::find(problems.begin(), problems.end(), wanted) != problems.end();
  };
  CHECK(in(problems_of("status", state_dir), problem));
  CHECK(in(problems_of("list", state_dir), problem));

  std::filesystem::remove(log);
  REQUIRE(::kill(mount.pid(), SIGHUP) == 0);
  // The daemon reopens the file by itself, without waiting for a record.
  for (int i = 0; i < kPolls * 2 && mentions_audit_log(problems_of("status", state_dir)); ++i) {
    std::this_thread::sleep_for(kPoll);
  }
  CHECK_FALSE(mentions_audit_log(problems_of("status", state_dir)));
  CHECK_FALSE(mentions_audit_log(problems_of("list", state_dir)));
  struct stat status_of_log {};
  REQUIRE(::lstat(log.c_str(), &status_of_log) == 0);
  CHECK(S_ISREG(status_of_log.st_mode));
  CHECK((status_of_log.st_mode & 07777) == 0600);

  CHECK(read_as(mount / "mine", kOwnerReader).error == 0);
  const auto records = wait_for_records(log, 1);
  REQUIRE(records.size() == 1);
  CHECK(records[0].at("result") == "granted");
  CHECK(read_file(logs / "elsewhere").empty());
}

TEST_CASE("check and activate refuse an audit_log that cannot be used, naming the manifest",
          "[audit]") {
  Scenario scenario;
  scenario.age_file("a.age", "a\n");
  const auto logs = scenario.dir() / "logs";
  std::filesystem::create_directories(logs);
  write_file(logs / "shared.jsonl", "", 0644);
  std::filesystem::create_symlink(logs / "shared.jsonl", logs / "link.jsonl");
  struct Case {
    std::string path;
    std::string reason;
  };
  const std::vector<Case> cases{
      {"/", "is a directory, not a regular file"},
      {"/dev/null", "is a character device, not a regular file"},
      {"/dev/tty", "is a character device, not a regular file"},
      {"/proc/self/fd/1", "is a symbolic link; name the file itself (links are not followed)"},
      {(logs / "link.jsonl").string(),
       "is a symbolic link; name the file itself (links are not followed)"},
      {(logs / "missing-dir" / "a.jsonl").string(),
       "folder " + (logs / "missing-dir").string() + " does not exist"},
      {(logs / "shared.jsonl").string(),
       "owned by uid 0 with mode 0644; the audit log must be the daemon's alone (chown root, "
       "chmod 0600)"},
  };
  const auto report = scenario.dir() / "report";
  for (const Case& c : cases) {
    INFO(c.path);
    const auto manifest =
        scenario.manifest("audit_log = \"" + c.path + "\"\n[secrets.\"a\"]\nfile = \"a.age\"\n");
    const std::string error =
        "error: " + manifest.string() + ": audit_log " + c.path + ": " + c.reason;
    CHECK(run(cli() + " check --manifest " + shell_quoted(manifest) + " > " +
              shell_quoted(report)) == 1);
    CHECK(read_file(report) == error + "\n" + manifest.string() + ": 1 secret, 1 problem\n");
    CHECK(run(cli() + " activate --manifest " + shell_quoted(manifest) + " 2> " +
              shell_quoted(report)) == 1);
    CHECK(read_file(report) ==
          error +
              "\nsecretfs: 1 problem; nothing was activated and the current generation keeps "
              "serving\n");
  }
  CHECK_FALSE(std::filesystem::exists(scenario.state_dir() / "current"));

  // A file that does not exist yet, in a folder that does: the daemon creates it.
  const auto manifest = scenario.manifest("audit_log = \"" + (logs / "new.jsonl").string() +
                                          "\"\n[secrets.\"a\"]\nfile = \"a.age\"\n");
  CHECK(run(cli() + " check --manifest " + shell_quoted(manifest) + " > " + shell_quoted(report)) ==
        0);
  CHECK(read_file(report) == manifest.string() + ": 1 secret, 0 problems\n");
}

// A record cut short by a full disk must not stay in the file, where the next record would be
// glued onto it; what could not be written goes to the daemon's log.
TEST_CASE("a full disk leaves only whole records in the audit log", "[audit]") {
  constexpr std::size_t kOpensWhileFull = 40;
  constexpr std::size_t kOpensAfter = 5;
  TempDir logs;
  const SmallFilesystem small(logs / "small", "16k");
  const auto log = logs / "small" / "audit.jsonl";
  // Three of the four pages: the log has room for some twenty records.
  write_file(logs / "small" / "filler", std::string(12288, 'x'));
  const AuditScenario audit("audit_log = \"" + log.string() + "\"\n");
  const auto state_dir = audit.scenario().state_dir();
  Mount mount(audit.manifest(), audit.scenario().mount_point());

  const auto records_everywhere = [&] {
    return records_in(log).size() + count_of(mount.log(), "audit {\"time\"");
  };
  const auto wait_for_everywhere = [&](std::size_t count) {
    for (int i = 0; i < kPolls && records_everywhere() < count; ++i) {
      std::this_thread::sleep_for(kPoll);
    }
    return records_everywhere();
  };
  for (std::size_t i = 0; i < kOpensWhileFull; ++i) {
    REQUIRE(read_as(mount / "mine", kOwnerReader).error == 0);
  }
  CHECK(wait_for_everywhere(kOpensWhileFull) == kOpensWhileFull);
  const std::size_t written = records_in(log).size();
  CHECK(written > 0);
  CHECK(written < kOpensWhileFull);
  CHECK(mount.log().find("audit log " + log.string() +
                         ": write failed: No space left on device; the records not written "
                         "follow here:") != std::string::npos);
  const std::string problem = "audit log " + log.string() +
                              ": write failed: No space left on device; records go to the "
                              "daemon's log";
  const auto problems = problems_of("status", state_dir);
  CHECK(std::find(problems.begin(), problems.end(), problem) != problems.end());

  std::filesystem::remove(logs / "small" / "filler");
  for (std::size_t i = 0; i < kOpensAfter; ++i) {
    REQUIRE(read_as(mount / "mine", kOwnerReader).error == 0);
  }
  CHECK(wait_for_everywhere(kOpensWhileFull + kOpensAfter) == kOpensWhileFull + kOpensAfter);
  // records_in() parses every line: one that is not a whole record fails the test.
  CHECK(records_in(log).size() == written + kOpensAfter);
  const std::string text = read_file(log);
  CHECK(text.back() == '\n');
  CHECK(count_of(text, "\n") == written + kOpensAfter);
  CHECK_FALSE(mentions_audit_log(problems_of("status", state_dir)));
}
