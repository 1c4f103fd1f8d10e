// The state directory's own safety: who may own it, symbolic links, corrupt files, leftovers
// of a crash, and the lock.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>

#include "secretfs/state.hpp"
#include "state_test_support.hpp"

namespace {

using namespace secretfs::state;
using namespace secretfs::state::testing;

constexpr int kChildLocked = 0;
constexpr int kChildBlocked = 1;
constexpr int kChildFailed = 2;

// Tries the lock from another process without waiting, as a second activation would.
int try_lock_in_child(const fs::path& lock_path) {
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    const int fd = ::open(lock_path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      _exit(kChildFailed);
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
      _exit(kChildLocked);
    }
    _exit(errno == EWOULDBLOCK ? kChildBlocked : kChildFailed);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

}  // namespace

TEST_CASE("open creates the state directory and its folders with mode 0700", "[state]") {
  const Sandbox sandbox;
  const StateDir state_dir = sandbox.open();
  CHECK(state_dir.path() == sandbox.state());
  CHECK(state_dir.control_socket() == sandbox.state() / "control.sock");
  for (const fs::path& folder :
       {sandbox.state(), sandbox.state() / "blobs", sandbox.state() / "generations"}) {
    struct stat status {};
    REQUIRE(::lstat(folder.c_str(), &status) == 0);
    CHECK(S_ISDIR(status.st_mode));
    CHECK((status.st_mode & 07777) == 0700);
  }
  CHECK_FALSE(state_dir.current().has_value());
  CHECK(state_dir.generations().empty());
}

TEST_CASE("a state directory others may write to is refused, not repaired", "[state]") {
  const Sandbox sandbox;
  fs::create_directory(sandbox.state());
  ::chmod(sandbox.state().c_str(), 0770);
  CHECK(error_of([&] { sandbox.open(); }) ==
        "state directory " + sandbox.state().string() + " (owner uid " + std::to_string(geteuid()) +
            ", mode 0770): group or others may write to it; want mode 0700 (chmod 0700 " +
            sandbox.state().string() + ")");
  struct stat status {};
  REQUIRE(::lstat(sandbox.state().c_str(), &status) == 0);
  CHECK((status.st_mode & 07777) == 0770);
  CHECK_FALSE(fs::exists(sandbox.state() / "blobs"));

  ::chmod(sandbox.state().c_str(), 0702);
  CHECK_THROWS_WITH(sandbox.open(), Catch::Contains("mode 0702): group or others may write"));
}

TEST_CASE("a state directory or subfolder that is a symbolic link is refused", "[state]") {
  const Sandbox sandbox;
  const auto real = sandbox.root() / "real";
  fs::create_directory(real);
  fs::create_directory_symlink(real, sandbox.state());
  CHECK(error_of([&] { sandbox.open(); }) == "state directory " + sandbox.state().string() +
                                                 ": is a symbolic link; it must be a real folder");

  fs::remove(sandbox.state());
  fs::create_directory(sandbox.state());
  fs::create_directory_symlink(real, sandbox.state() / "blobs");
  CHECK(error_of([&] { sandbox.open(); }) == "state directory " +
                                                 (sandbox.state() / "blobs").string() +
                                                 ": is a symbolic link; it must be a real folder");
}

TEST_CASE("Ownership::root refuses a state directory that is not root's", "[state]") {
  const Sandbox sandbox;
  fs::create_directory(sandbox.state());
  fs::permissions(sandbox.state(), fs::perms::owner_all);
  if (geteuid() == 0) {
    CHECK_NOTHROW(StateDir::open(sandbox.state(), Ownership::root));
    REQUIRE(::chown(sandbox.state().c_str(), kNobody, kNobody) == 0);
  }
  struct stat status {};
  REQUIRE(::lstat(sandbox.state().c_str(), &status) == 0);
  CHECK(error_of([&] { StateDir::open(sandbox.state(), Ownership::root); }) ==
        "state directory " + sandbox.state().string() + " (owner uid " +
            std::to_string(status.st_uid) + ", mode 0700): not owned by root; chown root " +
            sandbox.state().string());
  CHECK_NOTHROW(StateDir::open(sandbox.state(), Ownership::any));
}

TEST_CASE("leftovers of a crash are ignored, then removed by prune", "[state]") {
  const Sandbox sandbox;
  StateDir state_dir = sandbox.open();
  sandbox.store_files(state_dir, {{"a", "one"}});
  state_dir.set_current(1);

  const auto half_generation = sandbox.state() / "generations" / ".tmp-7-xyz";
  fs::create_directory(half_generation);
  write_text(half_generation / "manifest.toml", "half");
  const auto half_blob = sandbox.state() / "blobs" / ".tmp-blob-xyz";
  write_text(half_blob, "half");
  const auto half_current = sandbox.state() / ".tmp-current-xyz";
  write_text(half_current, "7\n");
  fs::create_directory(sandbox.state() / "generations" / "0012");  // not a number we write

  CHECK(numbers_of(state_dir.generations()) == std::vector<Number>{1});
  CHECK(sandbox.store_files(state_dir, {{"a", "two"}}).number == 2);
  CHECK(state_dir.prune(10).empty());
  CHECK_FALSE(fs::exists(half_generation));
  CHECK_FALSE(fs::exists(half_blob));
  CHECK_FALSE(fs::exists(half_current));
  CHECK(sandbox.blobs() == std::set<std::string>{sha256_hex("one"), sha256_hex("two")});
  CHECK(state_dir.load(2, fake_accounts()).secrets.size() == 1);
}

TEST_CASE("a corrupt current or last is a StateError naming the file", "[state]") {
  const Sandbox sandbox;
  StateDir state_dir = sandbox.open();
  const auto current = sandbox.state() / "current";
  for (const char* text :
       {"", "1", "x\n", "01\n", "0\n", "+1\n", "1 \n", "1\n\n", "18446744073709551616\n"}) {
    write_text(current, text);
    CHECK(error_of([&] { state_dir.current(); }) ==
          current.string() + ": corrupt: want a generation number and a newline");
  }
  write_text(current, "18446744073709551615\n");
  CHECK(state_dir.current() == 18446744073709551615U);

  write_text(sandbox.state() / "last", "2\n3\n");
  CHECK_THROWS_WITH(sandbox.store_files(state_dir, {{"a", "x"}}),
                    (sandbox.state() / "last").string() +
                        ": corrupt: want a generation number "
                        "and a newline");
}

TEST_CASE("a corrupt or missing generation is a StateError naming it", "[state]") {
  const Sandbox sandbox;
  StateDir state_dir = sandbox.open();
  sandbox.store_files(state_dir, {{"a", "one"}});
  const auto folder = sandbox.state() / "generations" / "1";
  const auto record = folder / "generation.json";
  const std::string good = read_text(record);

  CHECK(error_of([&] { state_dir.load(9, fake_accounts()); }) ==
        "generation 9 does not exist (no " + (sandbox.state() / "generations/9").string() + ")");

  write_text(record, "{\"number\": 1,");
  CHECK(error_of([&] { state_dir.load(1, fake_accounts()); }) ==
        record.string() + ": not a JSON object");
  // generations() lists a damaged generation with its reason instead of failing as a whole.
  const auto listed = state_dir.generations();
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].number == 1);
  CHECK(listed[0].problem == record.string() + ": not a JSON object");

  write_text(record, "{\"number\": 2}");
  CHECK(error_of([&] { state_dir.generation(1); }) == record.string() + ": `created` is missing");

  std::string escaping = good;
  const std::string blob = sha256_hex("one");
  escaping.replace(escaping.find(blob), blob.size(), "../../../etc/passwd");
  write_text(record, escaping);
  CHECK(error_of([&] { state_dir.load(1, fake_accounts()); }) ==
        record.string() + ": secret `a`: blob `../../../etc/passwd` is not a SHA-256 name");

  std::string renumbered = good;
  renumbered.replace(renumbered.find("\"number\": 1"), 11, "\"number\": 3");
  write_text(record, renumbered);
  CHECK(error_of([&] { state_dir.load(1, fake_accounts()); }) ==
        record.string() + ": says it is generation 3");

  write_text(record, good);
  write_text(folder / "manifest.toml", "[secrets.a]\nfile = \"other.age\"\n");
  CHECK(error_of([&] { state_dir.load(1, fake_accounts()); }) ==
        (folder / "manifest.toml").string() +
            ": corrupt: its SHA-256 is not the one in generation.json");

  fs::remove(folder / "manifest.toml");
  CHECK_THROWS_WITH(state_dir.load(1, fake_accounts()), (folder / "manifest.toml").string() +
                                                            ": cannot open: No such file or "
                                                            "directory");
  CHECK_THROWS_AS(state_dir.set_current(1), StateError);
}

TEST_CASE("prune removes no blob while a generation cannot be read", "[state]") {
  const Sandbox sandbox;
  StateDir state_dir = sandbox.open();
  sandbox.store_files(state_dir, {{"a", "one"}});
  write_text(sandbox.state() / "blobs" / sha256_hex("orphan"), "orphan");
  write_text(sandbox.state() / "generations" / "1" / "generation.json", "[]");
  CHECK_THROWS_AS(state_dir.prune(2), StateError);
  CHECK(sandbox.blobs().size() == 2);
}

TEST_CASE("state files are replaced, never written through a symbolic link", "[state]") {
  const Sandbox sandbox;
  StateDir state_dir = sandbox.open();
  sandbox.store_files(state_dir, {{"a", "one"}});
  const auto outside = sandbox.root() / "outside";
  write_text(outside, "untouched\n");
  fs::create_symlink(outside, sandbox.state() / "current");

  CHECK_THROWS_WITH(state_dir.current(), Catch::Contains("current: cannot open"));
  state_dir.set_current(1);
  CHECK(read_text(outside) == "untouched\n");
  CHECK_FALSE(fs::is_symlink(sandbox.state() / "current"));
  CHECK(state_dir.current() == 1);
}

TEST_CASE("the lock keeps a second process out until it is released", "[state]") {
  const Sandbox sandbox;
  const StateDir state_dir = sandbox.open();
  const auto lock_path = sandbox.state() / "lock";
  {
    Lock held = state_dir.lock();
    CHECK(try_lock_in_child(lock_path) == kChildBlocked);
    // A moved-from Lock must not release the hold it handed over.
    const Lock moved(std::move(held));
    CHECK(try_lock_in_child(lock_path) == kChildBlocked);
  }
  CHECK(try_lock_in_child(lock_path) == kChildLocked);
}

TEST_CASE("open_existing creates nothing and names a folder that is not a state directory",
          "[state]") {
  const Sandbox sandbox;
  const auto open_existing = [&] { StateDir::open_existing(sandbox.state(), Ownership::any); };
  CHECK(error_of(open_existing) == "no state directory at " + sandbox.state().string() +
                                       " (nothing was activated there; see --state-dir)");
  CHECK_FALSE(fs::exists(sandbox.state()));

  fs::create_directory(sandbox.state());
  ::chmod(sandbox.state().c_str(), 0700);
  CHECK(error_of(open_existing) == sandbox.state().string() +
                                       " is not a state directory (it has no blobs/ folder; "
                                       "see --state-dir)");
  CHECK(fs::is_empty(sandbox.state()));
  fs::create_directory(sandbox.state() / "blobs");
  CHECK(error_of(open_existing) == sandbox.state().string() +
                                       " is not a state directory (it has no generations/ "
                                       "folder; see --state-dir)");
  CHECK(fs::exists(sandbox.state() / "blobs"));
  CHECK_FALSE(fs::exists(sandbox.state() / "generations"));

  StateDir created = sandbox.open();
  sandbox.store_files(created, {{"a", "one"}});
  created.set_current(1);
  std::set<std::string> before;
  for (const auto& entry : fs::directory_iterator(sandbox.state())) {
    before.insert(entry.path().filename().string());
  }
  const StateDir existing = StateDir::open_existing(sandbox.state(), Ownership::any);
  CHECK(existing.path() == sandbox.state());
  CHECK(existing.current() == 1);
  CHECK(numbers_of(existing.generations()) == std::vector<Number>{1});
  std::set<std::string> after;
  for (const auto& entry : fs::directory_iterator(sandbox.state())) {
    after.insert(entry.path().filename().string());
  }
  CHECK(after == before);
}

TEST_CASE("open_existing tells a user who may not read the state directory to run as root",
          "[state]") {
  if (geteuid() != 0) {
    WARN("needs root to read the state directory as another user; skipped");
    return;
  }
  const Sandbox sandbox;
  sandbox.open();
  REQUIRE(::chmod(sandbox.root().c_str(), 0711) == 0);
  int ends[2];
  REQUIRE(::pipe(ends) == 0);
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(ends[0]);
    std::string message = "no StateError";
    if (::setresgid(kNobody, kNobody, kNobody) == 0 &&
        ::setresuid(kNobody, kNobody, kNobody) == 0) {
      try {
        StateDir::open_existing(sandbox.state(), Ownership::root);
      } catch (const StateError& error) {
        message = error.what();
      }
    }
    const bool written =
        ::write(ends[1], message.data(), message.size()) == static_cast<ssize_t>(message.size());
    _exit(written ? 0 : kChildFailed);
  }
  ::close(ends[1]);
  std::string message;
  char buffer[512];
  for (ssize_t got = 0; (got = ::read(ends[0], buffer, sizeof buffer)) > 0;) {
    message.append(buffer, static_cast<std::size_t>(got));
  }
  ::close(ends[0]);
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(message == "state directory " + sandbox.state().string() +
                       " (owner uid 0, mode 0700): uid 65534 may not read it; run the command "
                       "as root");
}
