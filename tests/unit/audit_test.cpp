#include "fs/audit.hpp"

#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fs/process_names.hpp"

using secretfs::fs::audit_log_problem;
using secretfs::fs::AuditEvent;
using secretfs::fs::AuditTrail;
using secretfs::fs::Outcome;
using secretfs::fs::ProcessNames;
using secretfs::fs::to_json_line;
using secretfs::fs::UtcText;

namespace {

using Clock = std::chrono::system_clock;

constexpr int kMaxInheritedFd = 1024;

Clock::time_point at(int year, int month, int day, int hour, int minute, int second,
                     int milliseconds) {
  std::tm utc{};
  utc.tm_year = year - 1900;
  utc.tm_mon = month - 1;
  utc.tm_mday = day;
  utc.tm_hour = hour;
  utc.tm_min = minute;
  utc.tm_sec = second;
  return Clock::from_time_t(::timegm(&utc)) + std::chrono::milliseconds(milliseconds);
}

// A throwaway folder, removed with what is in it.
class Folder {
 public:
  Folder() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "secretfs-audit-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~Folder() { std::filesystem::remove_all(path_); }
  Folder(const Folder&) = delete;
  Folder& operator=(const Folder&) = delete;

  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

void write_file(const std::filesystem::path& path, mode_t mode) {
  std::ofstream(path) << "{}\n";
  REQUIRE(::chmod(path.c_str(), mode) == 0);
}

std::size_t lines_in(const std::filesystem::path& path) {
  std::ifstream file(path);
  std::size_t count = 0;
  for (std::string line; std::getline(file, line);) {
    ++count;
  }
  return count;
}

// A child process that waits for a byte on a pipe before each step: renaming itself, then
// exiting. The test reads its name in between.
class Child {
 public:
  Child() {
    REQUIRE(::pipe(steps_) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      // Only its own pipe's reading end: a write end inherited from the test or from an earlier
      // child would keep that child's reads from ever seeing the end.
      for (int fd = 3; fd < kMaxInheritedFd; ++fd) {
        if (fd != steps_[0]) {
          ::close(fd);
        }
      }
      char step = 0;
      if (::read(steps_[0], &step, 1) == 1) {
        ::prctl(PR_SET_NAME, "renamed-child");
        if (::read(steps_[0], &step, 1) == 1) {
          ::_exit(0);
        }
      }
      ::_exit(1);
    }
    ::close(steps_[0]);
  }
  ~Child() {
    if (pid_ > 0) {
      ::close(steps_[1]);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }

  void rename() {
    step();
    // The child renames itself right after reading; wait until the name shows.
    for (int tries = 0; tries < 1000 && name() != "renamed-child"; ++tries) {
      ::usleep(1000);
    }
  }

  void exit() {
    step();
    ::close(steps_[1]);
    REQUIRE(::waitpid(pid_, nullptr, 0) == pid_);
    pid_ = -1;
  }

 private:
  void step() { REQUIRE(::write(steps_[1], "x", 1) == 1); }
  std::string name() const { return ProcessNames().of(pid_); }

  int steps_[2] = {-1, -1};
  pid_t pid_ = -1;
};

}  // namespace

TEST_CASE("an audit record is one JSON object with the fields in a fixed order") {
  const AuditEvent granted{"db/password", 3, 1000, 100, 4242, Outcome::granted, 0};
  CHECK(to_json_line(granted, "postgres", "2026-12-03T19:04:13.123Z") ==
        R"({"time":"2026-12-03T19:04:13.123Z","secret":"db/password","generation":3,)"
        R"("uid":1000,"gid":100,"pid":4242,"process":"postgres","result":"granted"})");

  const AuditEvent denied{"db/password", 3, 1001, 1001, 7, Outcome::denied, 13};
  CHECK(to_json_line(denied, "cat", "2026-12-03T19:04:13.123Z") ==
        R"({"time":"2026-12-03T19:04:13.123Z","secret":"db/password","generation":3,)"
        R"("uid":1001,"gid":1001,"pid":7,"process":"cat","result":"denied","errno":13})");

  const AuditEvent failed{"api", 0, 0, 0, 1, Outcome::failed, 5};
  CHECK(to_json_line(failed, "", "t") ==
        R"({"time":"t","secret":"api","generation":0,"uid":0,"gid":0,"pid":1,)"
        R"("process":"","result":"failed","errno":5})");
}

TEST_CASE(
    "an audit record escapes quotes and control bytes and replaces bytes that are not "
    "UTF-8") {
  const AuditEvent event{"a\"b\\c\x01", 1, 0, 0, 1, Outcome::granted, 0};
  CHECK(to_json_line(event, "bad\xff", "t") ==
        "{\"time\":\"t\",\"secret\":\"a\\\"b\\\\c\\u0001\",\"generation\":1,\"uid\":0,"
        "\"gid\":0,\"pid\":1,\"process\":\"bad\xEF\xBF\xBD\",\"result\":\"granted\"}");
}

// A process names itself: what it puts in its name must not act on the terminal or the viewer of
// whoever reads the trail, and must mean the same to a JSON parser.
TEST_CASE(
    "an audit record escapes DEL, C1 controls, bidirectional controls and line separators as "
    "\\uXXXX") {
  const std::string process =
      "a\x7f"
      "b\xc2\x9b"  // U+009B, CSI: the start of a terminal command, as ESC [ is
      "31m\xe2\x80\xae"
      "c\xe2\x81\xa6"
      "d\xe2\x80\xa8"
      "e\xe2\x80\x8e"
      "f\xd8\x9c"
      "g \xc3\xa9\xe2\x82\xac\xc2\xa0";  // é, the euro sign and a no-break space stay
  const AuditEvent event{"s\xe2\x80\xaet", 1, 0, 0, 1, Outcome::granted, 0};
  const std::string line = to_json_line(event, process, "t");
  CHECK(line ==
        "{\"time\":\"t\",\"secret\":\"s\\u202et\",\"generation\":1,\"uid\":0,\"gid\":0,"
        "\"pid\":1,\"process\":\"a\\u007fb\\u009b31m\\u202ec\\u2066d\\u2028e\\u200ef\\u061cg "
        "\xc3\xa9\xe2\x82\xac\xc2\xa0\",\"result\":\"granted\"}");
  const auto parsed = nlohmann::json::parse(line);
  CHECK(parsed.at("process") == process);
  CHECK(parsed.at("secret") == event.secret);
}

TEST_CASE("record times are UTC with milliseconds, also within one second and across seconds") {
  UtcText text;
  CHECK(text.of(at(2026, 12, 3, 19, 4, 13, 123)) == "2026-12-03T19:04:13.123Z");
  CHECK(text.of(at(2026, 12, 3, 19, 4, 13, 7)) == "2026-12-03T19:04:13.007Z");
  CHECK(text.of(at(2026, 12, 3, 19, 4, 14, 0)) == "2026-12-03T19:04:14.000Z");
  CHECK(text.of(at(2027, 1, 1, 0, 0, 0, 999)) == "2027-01-01T00:00:00.999Z");
}

TEST_CASE("a caller's name is read anew at every open and forgotten when the caller is gone") {
  ProcessNames names;
  Child child;
  const std::string first = names.of(child.pid());
  CHECK(!first.empty());
  CHECK(names.kept() == 1);

  child.rename();
  CHECK(names.of(child.pid()) == "renamed-child");
  CHECK(names.kept() == 1);

  const pid_t gone = child.pid();
  child.exit();
  CHECK(names.of(gone).empty());
  CHECK(names.kept() == 0);
}

TEST_CASE("names of at most a few recent callers are kept open") {
  ProcessNames names;
  std::vector<std::unique_ptr<Child>> children;
  for (std::size_t i = 0; i < ProcessNames::kKept + 3; ++i) {
    children.push_back(std::make_unique<Child>());
    CHECK(!names.of(children.back()->pid()).empty());
  }
  CHECK(names.kept() == ProcessNames::kKept);
  // The most recent caller is still kept, and asking again adds nothing.
  CHECK(!names.of(children.back()->pid()).empty());
  CHECK(names.kept() == ProcessNames::kKept);
  CHECK(names.of(0).empty());
}

TEST_CASE("an audit log is refused unless it is a regular file of the daemon's alone in a folder") {
  Folder folder;
  const auto fine = folder / "audit.jsonl";
  CHECK(audit_log_problem(fine) == std::nullopt);  // created by the daemon
  write_file(fine, 0600);
  CHECK(audit_log_problem(fine) == std::nullopt);

  CHECK(audit_log_problem(folder / "missing" / "a.jsonl") ==
        "folder " + (folder / "missing").string() + " does not exist");
  CHECK(audit_log_problem("/dev/null/a.jsonl") == "/dev/null is not a folder");
  CHECK(audit_log_problem("/") == "is a directory, not a regular file");
  CHECK(audit_log_problem("/dev/null") == "is a character device, not a regular file");
  CHECK(audit_log_problem("/dev/tty") == "is a character device, not a regular file");
  CHECK(audit_log_problem("/proc/self/fd/1") ==
        "is a symbolic link; name the file itself (links are not followed)");
  REQUIRE(::mkfifo((folder / "fifo").c_str(), 0600) == 0);
  CHECK(audit_log_problem(folder / "fifo") == "is a FIFO, not a regular file");

  const auto shared = folder / "shared.jsonl";
  write_file(shared, 0640);
  CHECK(audit_log_problem(shared) ==
        "owned by uid 0 with mode 0640; the audit log must be the daemon's alone "
        "(chown root, chmod 0600)");
  const auto foreign = folder / "foreign.jsonl";
  write_file(foreign, 0600);
  REQUIRE(::chown(foreign.c_str(), 4001, 4001) == 0);
  CHECK(audit_log_problem(foreign) ==
        "owned by uid 4001 with mode 0600; the audit log must be the daemon's alone "
        "(chown root, chmod 0600)");
}

TEST_CASE("an audit log that cannot be used is a problem from the start until SIGHUP reopens it") {
  Folder folder;
  const auto log = folder / "audit.jsonl";
  write_file(folder / "elsewhere", 0600);
  std::filesystem::create_symlink(folder / "elsewhere", log);
  const std::string problem = "audit log " + log.string() +
                              " not used: is a symbolic link; name the file itself (links are "
                              "not followed); records go to the daemon's log";
  {
    AuditTrail trail;
    CHECK(trail.problem(log) == std::nullopt);  // nothing asked of it yet
    trail.use(log);
    CHECK(trail.problem(log) == problem);
    CHECK(trail.problem(folder / "other.jsonl") == std::nullopt);
    CHECK(lines_in(folder / "elsewhere") == 1);

    std::filesystem::remove(log);
    AuditTrail::request_reopen();  // what SIGHUP does
    // No record is needed: the trail reopens the file by itself within a second or so.
    for (int tries = 0; tries < 300 && trail.problem(log); ++tries) {
      ::usleep(10000);
    }
    CHECK(trail.problem(log) == std::nullopt);
    trail.record(log, AuditEvent{"a", 1, 0, 0, ::getpid(), Outcome::granted, 0});
  }
  struct stat status {};
  REQUIRE(::lstat(log.c_str(), &status) == 0);
  CHECK(S_ISREG(status.st_mode));
  CHECK((status.st_mode & 07777) == 0600);
  CHECK(lines_in(log) == 1);
  CHECK(lines_in(folder / "elsewhere") == 1);
}
