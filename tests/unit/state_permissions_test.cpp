// Everything in the state directory decides what is served, so a generation, `current`, `last`
// or a blob that another user could have written is refused: naming it, its owner and mode,
// and the fix. A refused generation is listed like a damaged one.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <functional>

#include "secretfs/state.hpp"
#include "state_test_support.hpp"

namespace {

using namespace secretfs::state;
using namespace secretfs::state::testing;


void change_mode(const fs::path& path, mode_t mode) {
  REQUIRE(::chmod(path.c_str(), mode) == 0);
}

// An entry as the messages describe it: "PATH (owner uid U, mode M)".
std::string described(const fs::path& path, const std::string& mode, uid_t owner = ::geteuid()) {
  return path.string() + " (owner uid " + std::to_string(owner) + ", mode " + mode + ")";
}

std::string writable_generation(const fs::path& folder, const fs::path& path,
                                const std::string& mode) {
  return "generation 1: " + described(path, mode) +
         ": group or others may write to it, so it may not be what was activated; remove the "
         "generation (rm -r " +
         folder.string() + "), or check it and chmod go-w " + path.string();
}

struct Generation {
  fs::path folder;
  fs::path record;
  fs::path manifest;
};

Generation first_generation(const Sandbox& sandbox) {
  const auto folder = sandbox.state() / "generations" / "1";
  return {folder, folder / "generation.json", folder / "manifest.toml"};
}

}  // namespace

TEST_CASE("a generation group or others may write to is refused and listed with the reason",
          "[state]") {
  const Sandbox sandbox;
  StateDir state_dir = sandbox.open();
  sandbox.store_files(state_dir, {{"a", "one"}});
  state_dir.set_current(1);
  const Generation generation = first_generation(sandbox);
  // As the review found it: the folders above readable by all (accepted), the generation
  // writable by all.
  change_mode(sandbox.state(), 0755);
  change_mode(sandbox.state() / "generations", 0755);
  change_mode(generation.folder, 0777);
  change_mode(generation.record, 0666);
  change_mode(generation.manifest, 0666);

  StateDir reopened = sandbox.open();
  const auto load = [&] { reopened.load(1, fake_accounts()); };
  const std::string folder_refused =
      writable_generation(generation.folder, generation.folder, "0777");
  CHECK(error_of(load) == folder_refused);
  CHECK(error_of([&] { reopened.generation(1); }) == folder_refused);
  CHECK(error_of([&] { reopened.set_current(1); }) == folder_refused);
  auto listed = reopened.generations();
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].number == 1);
  CHECK(listed[0].current);
  CHECK(listed[0].problem == folder_refused);

  change_mode(generation.folder, 0700);
  CHECK(error_of(load) == writable_generation(generation.folder, generation.record, "0666"));

  change_mode(generation.record, 0600);
  const std::string manifest_refused =
      writable_generation(generation.folder, generation.manifest, "0666");
  CHECK(error_of(load) == manifest_refused);
  listed = reopened.generations();
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].problem == manifest_refused);

  change_mode(generation.manifest, 0600);
  CHECK(reopened.load(1, fake_accounts()).secrets.size() == 1);
  CHECK(reopened.generations()[0].problem.empty());
}

TEST_CASE("a manifest rewritten with its hash through writable files is never loaded", "[state]") {
  const Sandbox sandbox;
  StateDir state_dir = sandbox.open();
  sandbox.store_files(state_dir, {{"a", "one"}});
  const Generation generation = first_generation(sandbox);
  change_mode(generation.record, 0666);
  change_mode(generation.manifest, 0666);

  // What another user could do: give the secret to everyone, and the record the new hash, so
  // that the SHA-256 check alone would pass.
  const std::string original = read_text(generation.manifest);
  const std::string rewritten = original + "mode = \"0444\"\n";
  std::string record = read_text(generation.record);
  record.replace(record.find(sha256_hex(original)), sha256_hex(original).size(),
                 sha256_hex(rewritten));
  write_text(generation.manifest, rewritten);
  write_text(generation.record, record);

  CHECK(error_of([&] { state_dir.load(1, fake_accounts()); }) ==
        writable_generation(generation.folder, generation.record, "0666"));
}

TEST_CASE("with Ownership::root, a generation another user owns is refused", "[state]") {
  if (::geteuid() != 0) {
    WARN("needs root to chown a file to another user; skipped");
    return;
  }
  const Sandbox sandbox;
  StateDir state_dir = StateDir::open(sandbox.state(), Ownership::root);
  sandbox.store_files(state_dir, {{"a", "one"}});
  const Generation generation = first_generation(sandbox);
  REQUIRE(::chown(generation.manifest.c_str(), kNobody, kNobody) == 0);

  CHECK(error_of([&] { state_dir.load(1, fake_accounts()); }) ==
        "generation 1: " + described(generation.manifest, "0600", kNobody) +
            ": not owned by root, so it may not be what was activated; remove the generation "
            "(rm -r " +
            generation.folder.string() + "), or check it and chown root " +
            generation.manifest.string());
  CHECK(sandbox.open().load(1, fake_accounts()).secrets.size() == 1);
}

TEST_CASE("current and last that group or others may write to are refused, naming the fix",
          "[state]") {
  const Sandbox sandbox;
  StateDir state_dir = sandbox.open();
  sandbox.store_files(state_dir, {{"a", "one"}});
  state_dir.set_current(1);
  const auto current = sandbox.state() / "current";
  const auto last = sandbox.state() / "last";

  change_mode(current, 0666);
  CHECK(error_of([&] { state_dir.current(); }) ==
        described(current, "0666") +
            ": group or others may write to it; want mode 0600 (chmod 0600 " + current.string() +
            ")");
  change_mode(current, 0600);
  CHECK(state_dir.current() == 1);

  change_mode(last, 0620);
  CHECK(error_of([&] {
          sandbox.store_files(state_dir, {{"a", "two"}});
        }) == described(last, "0620") +
                  ": group or others may write to it; want mode 0600 (chmod " + "0600 " +
                  last.string() + ")");
}

TEST_CASE("the generations folder group or others may write to is refused", "[state]") {
  const Sandbox sandbox;
  sandbox.open();
  const auto generations = sandbox.state() / "generations";
  change_mode(generations, 0777);
  CHECK(error_of([&] { sandbox.open(); }) ==
        "state directory " + described(generations, "0777") +
            ": group or others may write to it; want mode 0700 (chmod 0700 " +
            generations.string() + ")");
}

TEST_CASE("a stored ciphertext group or others may write to refuses its secret, naming it",
          "[state]") {
  const Sandbox sandbox;
  StateDir state_dir = sandbox.open();
  sandbox.store_files(state_dir, {{"a", "one"}, {"b", "two"}});
  const auto blob = sandbox.state() / "blobs" / sha256_hex("one");
  change_mode(blob, 0666);

  const auto manifest = state_dir.load(1, fake_accounts());
  REQUIRE(manifest.secrets.size() == 1);
  CHECK(manifest.secrets[0].name == "b");
  REQUIRE(manifest.problems.size() == 1);
  CHECK(manifest.problems[0].secret == "a");
  CHECK(manifest.problems[0].message ==
        (first_generation(sandbox).manifest).string() + ":1: secret `a`: its stored ciphertext " +
            described(blob, "0666") +
            ": group or others may write to it; want mode 0600 (chmod 0600 " + blob.string() + ")");
}
