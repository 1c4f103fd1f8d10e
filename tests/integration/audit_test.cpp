// Every open of a secret leaves a record: who, what, which generation, and the outcome.
#include <signal.h>
#include <sys/stat.h>

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

std::vector<json> records_in(const std::filesystem::path& path) {
  std::vector<json> records;
  std::ifstream file(path);
  for (std::string line; std::getline(file, line);) {
    records.push_back(json::parse(line));
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
  CHECK(daemon_log.find(log.string() + ": owned by uid 0 with mode 0644; the audit log must be "
                                       "the daemon's alone (chown root, chmod 0600)") !=
        std::string::npos);
  CHECK(daemon_log.find("info audit {") != std::string::npos);
  CHECK(read_file(log).empty());
}
