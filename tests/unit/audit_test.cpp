#include "fs/audit.hpp"

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <ctime>
#include <string>
#include <vector>

#include "fs/process_names.hpp"

using secretfs::fs::AuditEvent;
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
