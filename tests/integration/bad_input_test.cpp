// Hostile or broken input, end to end: through `secretfs check` and `activate` and through a real
// mount. Each case must give an error that names what is wrong, and leave everything else
// working: the other secrets read, and a running daemon keeps its generation.
//
// Covered elsewhere: damaged headers, payloads and a truncated payload through a mount
// (failures_test.cpp), a stored ciphertext swapped for another (generations_test.cpp), names
// with control characters (unit tests of the manifest).
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <memory>
#include <thread>
#include <vector>

#include "scenario.hpp"
#include "secretfs/manifest.hpp"

using namespace secretfs::test;

namespace {

const Reader kRoot{0, 0, {}};

std::string cli() {
  return shell_quoted(binary());
}

std::string secret_table(const std::string& name, const std::string& file,
                         const std::string& extra = "") {
  return "[secrets.\"" + name + "\"]\nfile = \"" + file + "\"\n" + extra;
}

struct Outcome {
  int status;
  std::string output;  // standard output and error together
};

Outcome run_cli(const Scenario& scenario, const std::string& arguments) {
  const auto output = scenario.dir() / "output";
  const int status = run(cli() + " " + arguments + " > " + shell_quoted(output) + " 2>&1");
  return {status, read_file(output)};
}

Outcome check(const Scenario& scenario, const std::filesystem::path& manifest) {
  return run_cli(scenario, "check --manifest " + shell_quoted(manifest));
}

Outcome activate(const Scenario& scenario, const std::filesystem::path& manifest) {
  return run_cli(scenario, "activate --manifest " + shell_quoted(manifest));
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string read_root(const Mount& mount, const std::string& name) {
  const auto result = read_as(mount / name, kRoot);
  INFO("reading " << name);
  REQUIRE(result.error == 0);
  return result.content;
}

// Generation 1 serves `good`; returns its mount, from the state directory.
std::unique_ptr<Mount> serve_good(Scenario& scenario) {
  scenario.age_file("good.age", "good\n");
  REQUIRE(activate(scenario, scenario.manifest(secret_table("good", "good.age"))).status == 0);
  return std::make_unique<Mount>(scenario.state_dir(), scenario.mount_point(),
                                 MountSource::state_dir);
}

// A manifest that check and activate refuse: each names `expected`, nothing is activated, and
// the running daemon still serves generation 1.
void refused_whole(Scenario& scenario, const Mount& mount, const std::string& manifest_text,
                   const std::string& expected) {
  const auto manifest = scenario.dir() / "bad.toml";
  write_file(manifest, manifest_text, 0644);
  const Outcome checked = check(scenario, manifest);
  INFO(checked.output);
  CHECK(checked.status == 1);
  CHECK(contains(checked.output, expected));
  const Outcome activated = activate(scenario, manifest);
  INFO(activated.output);
  CHECK(activated.status == 1);
  CHECK(contains(activated.output, expected));
  CHECK(contains(activated.output, "; nothing was activated"));
  CHECK(read_file(scenario.state_dir() / "current") == "1\n");
  CHECK(read_root(mount, "good") == "good\n");
}

std::string state_and_identity(const Scenario& scenario) {
  return "state_dir = \"" + scenario.state_dir().string() + "\"\nidentities = [\"" +
         scenario.key().string() + "\"]\n";
}

std::string deep_name(int secret) {
  constexpr int kMiddleLevels = 18;
  std::string name = "top" + std::to_string(secret % 10) + "/";
  for (int level = 1; level <= kMiddleLevels; ++level) {
    name += "level" + std::to_string(level) + "/";
  }
  return name + "s" + std::to_string(secret);
}

}  // namespace

TEST_CASE("truncated and empty files are named by check and activate; others still read",
          "[bad-input]") {
  Scenario scenario;
  auto mount = serve_good(scenario);
  const auto whole = scenario.age_file("whole.age", "whole\n");
  write_file(scenario.dir() / "cut.age", read_file(whole).substr(0, 30), 0644);
  write_file(scenario.dir() / "empty.age", "", 0644);
  const auto manifest =
      scenario.manifest(secret_table("good", "good.age") + secret_table("cut", "cut.age") +
                        secret_table("empty", "empty.age"));

  const Outcome checked = check(scenario, manifest);
  INFO(checked.output);
  CHECK(checked.status == 1);
  CHECK(contains(checked.output, "secret `cut`: file " + (scenario.dir() / "cut.age").string() +
                                     ": header failure: header: MAC line is missing"));
  CHECK(contains(checked.output, "secret `empty`: file " + (scenario.dir() / "empty.age").string() +
                                     ": header failure: header: file is empty"));
  CHECK(contains(checked.output, "3 secrets, 2 problems"));

  const Outcome activated = activate(scenario, manifest);
  CHECK(activated.status == 1);
  CHECK(contains(activated.output, "2 problems; nothing was activated"));
  CHECK(read_root(*mount, "good") == "good\n");
  mount.reset();

  SECTION("a mount of the manifest itself serves the good secret and gives EIO for the others") {
    // With no earlier generation to fall back on, the daemon serves the manifest as it is.
    std::filesystem::remove_all(scenario.state_dir());
    Mount direct(manifest, scenario.mount_point());
    CHECK(read_root(direct, "good") == "good\n");
    for (const char* name : {"cut", "empty"}) {
      INFO("secret " << name);
      CHECK(read_as(direct / name, kRoot).error == EIO);
      CHECK(contains(direct.log(), std::string("secret `") + name + "`"));
    }
  }
}

// A copy cut short by a few bytes, or with a byte added or changed, keeps a valid header and a
// plausible length: only decrypting the payload finds it, and check and activate do.
TEST_CASE("a payload cut short, lengthened or altered is named by check and activate",
          "[bad-input]") {
  Scenario scenario;
  auto mount = serve_good(scenario);
  const std::string whole = read_file(scenario.age_file("whole.age", std::string(100, 'p')));
  std::string altered = whole;
  altered[altered.size() - 20] ^= 0x01;
  write_file(scenario.dir() / "cut.age", whole.substr(0, whole.size() - 5), 0644);
  write_file(scenario.dir() / "long.age", whole + "x", 0644);
  write_file(scenario.dir() / "altered.age", altered, 0644);
  const auto manifest = scenario.manifest(
      secret_table("good", "good.age") + secret_table("cut", "cut.age") +
      secret_table("long", "long.age") + secret_table("altered", "altered.age"));

  const Outcome checked = check(scenario, manifest);
  INFO(checked.output);
  CHECK(checked.status == 1);
  for (const char* name : {"cut", "long", "altered"}) {
    CHECK(contains(checked.output, std::string("secret `") + name + "`: file " +
                                       (scenario.dir() / (std::string(name) + ".age")).string() +
                                       ": payload failure: payload: chunk 1 of 1 fails to "
                                       "authenticate"));
  }
  CHECK(contains(checked.output, "4 secrets, 3 problems"));

  const Outcome activated = activate(scenario, manifest);
  CHECK(activated.status == 1);
  CHECK(contains(activated.output, "3 problems; nothing was activated"));
  CHECK(read_root(*mount, "good") == "good\n");
}

TEST_CASE("a file over max_secret_size is refused by name; 64 MiB reads byte-exact when allowed",
          "[bad-input]") {
  Scenario scenario;
  const auto huge = scenario.age_file("huge.age", "the header is real, the rest is zeros\n");
  std::filesystem::resize_file(huge, secretfs::manifest::kDefaultMaxSecretSize + 1);
  scenario.age_file("good.age", "good\n");

  SECTION("refused by check and activate, and EIO through a mount of the manifest") {
    const auto manifest =
        scenario.manifest(secret_table("good", "good.age") + secret_table("huge", "huge.age"));
    const std::string named = "secret `huge`: file " + huge.string() +
                              ": I/O error: " + huge.string() + ": larger than the limit of " +
                              std::to_string(secretfs::manifest::kDefaultMaxSecretSize) + " bytes";
    const Outcome checked = check(scenario, manifest);
    INFO(checked.output);
    CHECK(checked.status == 1);
    CHECK(contains(checked.output, named));
    const Outcome activated = activate(scenario, manifest);
    CHECK(activated.status == 1);
    CHECK(contains(activated.output, named));

    Mount mount(manifest, scenario.mount_point());
    CHECK(read_as(mount / "huge", kRoot).error == EIO);
    CHECK(read_root(mount, "good") == "good\n");
  }

  SECTION("a 64 MiB secret under a raised limit is stored and read byte-exact") {
    const std::string big = pattern(std::size_t{64} << 20);
    scenario.age_file("big.age", big);
    const auto manifest =
        scenario.manifest("max_secret_size = \"80M\"\n" + secret_table("good", "good.age") +
                          secret_table("big", "big.age"));
    REQUIRE(activate(scenario, manifest).status == 0);
    Mount mount(scenario.state_dir(), scenario.mount_point(), MountSource::state_dir);
    const auto read = read_as(mount / "big", kRoot);
    CHECK(read.error == 0);
    CHECK(read.content.size() == big.size());
    CHECK(read.content == big);
    CHECK(read_root(mount, "good") == "good\n");
  }
}

TEST_CASE("5000 secrets 20 levels deep pass check and activate and read back", "[bad-input]") {
  constexpr int kSecrets = 5000;
  constexpr long kLevels = 20;
  const std::string sample = deep_name(0);
  REQUIRE(std::count(sample.begin(), sample.end(), '/') == kLevels - 1);
  Scenario scenario;
  std::string tables;
  for (int secret = 0; secret < kSecrets; ++secret) {
    const std::string file = "s" + std::to_string(secret) + ".age";
    encrypt_file(scenario.recipient(), "value " + std::to_string(secret) + "\n",
                 scenario.dir() / file);
    tables += secret_table(deep_name(secret), file);
  }
  const auto manifest = scenario.manifest(tables);
  const Outcome checked = check(scenario, manifest);
  CHECK(checked.status == 0);
  CHECK(contains(checked.output, "manifest.toml: 5000 secrets, 0 problems"));
  REQUIRE(activate(scenario, manifest).status == 0);

  Mount mount(scenario.state_dir(), scenario.mount_point(), MountSource::state_dir);
  for (const int secret : {0, 1, 2499, 4998, 4999}) {
    CHECK(read_root(mount, deep_name(secret)) == "value " + std::to_string(secret) + "\n");
  }
  std::size_t listed = 0;
  const auto deepest = (mount / deep_name(7)).parent_path();
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(deepest)) {
    ++listed;
  }
  CHECK(listed == kSecrets / 10);
}

TEST_CASE("invalid UTF-8 and duplicate keys refuse the manifest by line; the daemon keeps serving",
          "[bad-input]") {
  Scenario scenario;
  auto mount = serve_good(scenario);
  const std::string top = state_and_identity(scenario);
  // state_dir and identities take lines 1 and 2, so the secrets start on line 3.
  const std::string good = secret_table("good", "good.age");

  SECTION("a name with a byte that is not UTF-8") {
    refused_whole(scenario, *mount, top + good + "[secrets.\"caf\xe9\"]\nfile = \"good.age\"\n",
                  "bad.toml:5:13: TOML syntax error: Encountered invalid utf-8 sequence");
  }
  SECTION("a file path with a byte that is not UTF-8") {
    refused_whole(scenario, *mount, top + secret_table("good", "go\xffod.age"),
                  "bad.toml:4:10: TOML syntax error: Encountered invalid utf-8 sequence");
  }
  SECTION("the same secret twice") {
    // toml++ 3.3 prints the table's name garbled, so only the line and the reason are checked.
    refused_whole(scenario, *mount, top + good + secret_table("good", "other.age"),
                  "bad.toml:5:1: TOML syntax error: Error while parsing table header: cannot "
                  "redefine existing table");
  }
  SECTION("the same key twice in one secret") {
    refused_whole(scenario, *mount, top + good + "file = \"other.age\"\n",
                  "bad.toml:5:8: TOML syntax error: Error while parsing key-value pair: cannot "
                  "redefine existing string 'file'");
  }
}

TEST_CASE("a secret's file replaced after activation: a link is followed, a folder or FIFO refused",
          "[bad-input]") {
  Scenario scenario;
  scenario.age_file("a.age", "a\n");
  scenario.age_file("b.age", "b\n");
  const auto manifest = scenario.manifest(secret_table("a", "a.age") + secret_table("b", "b.age"));
  REQUIRE(activate(scenario, manifest).status == 0);
  Mount mount(scenario.state_dir(), scenario.mount_point(), MountSource::state_dir);
  const auto a_file = scenario.dir() / "a.age";

  SECTION("a symbolic link to another age file is read through, like any path, when activated") {
    std::filesystem::remove(a_file);
    std::filesystem::create_symlink("b.age", a_file);
    CHECK(read_root(mount, "a") == "a\n");
    const Outcome activated = activate(scenario, manifest);
    CHECK(activated.status == 0);
    CHECK(contains(activated.output, "changed: a\n"));
    CHECK(read_root(mount, "a") == "b\n");
  }

  SECTION("a folder is refused by check and activate; the stored generation keeps serving") {
    std::filesystem::remove(a_file);
    std::filesystem::create_directory(a_file);
    const std::string named = "secret `a`: file " + a_file.string() +
                              ": I/O error: " + a_file.string() + ": not a regular file";
    const Outcome checked = check(scenario, manifest);
    CHECK(checked.status == 1);
    CHECK(contains(checked.output, named));
    const Outcome activated = activate(scenario, manifest);
    CHECK(activated.status == 1);
    CHECK(contains(activated.output, "1 problem; nothing was activated"));
    CHECK(read_root(mount, "a") == "a\n");
    CHECK(read_root(mount, "b") == "b\n");
  }

  SECTION("a FIFO is refused at once by check and activate, which do not wait for a writer") {
    std::filesystem::remove(a_file);
    REQUIRE(::mkfifo(a_file.c_str(), 0600) == 0);
    const std::string named = "secret `a`: file " + a_file.string() +
                              ": I/O error: " + a_file.string() + ": not a regular file";
    const Outcome checked = check(scenario, manifest);
    CHECK(checked.status == 1);
    CHECK(contains(checked.output, named));
    CHECK(activate(scenario, manifest).status == 1);
    CHECK(read_root(mount, "a") == "a\n");
  }
}

TEST_CASE("a FIFO as a secret's file or as the audit log blocks nothing", "[bad-input]") {
  Scenario scenario;
  scenario.age_file("b.age", "b\n");
  const auto fifo = scenario.dir() / "a.age";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const auto audit_fifo = scenario.dir() / "audit.jsonl";
  REQUIRE(::mkfifo(audit_fifo.c_str(), 0600) == 0);
  Mount mount(scenario.manifest("audit_log = \"" + audit_fifo.string() + "\"\n" +
                                secret_table("a", "a.age") + secret_table("b", "b.age")),
              scenario.mount_point());
  CHECK(read_as(mount / "a", kRoot).error == EIO);
  CHECK(read_root(mount, "b") == "b\n");
  // The daemon opened the log before it mounted.
  CHECK(contains(mount.log(), "audit log " + audit_fifo.string() +
                                  " not used: is a FIFO, not a regular file; records go to this "
                                  "log until it is fixed and the daemon gets SIGHUP"));
}

TEST_CASE("a stored blob replaced by a link or a folder gives EIO for its secret alone",
          "[bad-input]") {
  Scenario scenario;
  const auto a_file = scenario.age_file("a.age", "a\n");
  const auto b_file = scenario.age_file("b.age", "b\n");
  REQUIRE(
      activate(scenario, scenario.manifest(secret_table("a", "a.age") + secret_table("b", "b.age")))
          .status == 0);
  Mount mount(scenario.state_dir(), scenario.mount_point(), MountSource::state_dir);
  std::filesystem::path a_blob;
  std::filesystem::path b_blob;
  for (const auto& blob : std::filesystem::directory_iterator(scenario.state_dir() / "blobs")) {
    (read_file(blob.path()) == read_file(a_file) ? a_blob : b_blob) = blob.path();
  }
  REQUIRE_FALSE(a_blob.empty());
  REQUIRE_FALSE(b_blob.empty());
  std::filesystem::remove(a_blob);

  SECTION("a link to another blob") {
    std::filesystem::create_symlink(b_blob.filename(), a_blob);
  }
  SECTION("a folder") {
    std::filesystem::create_directory(a_blob);
  }
  CHECK(read_as(mount / "a", kRoot).error == EIO);
  CHECK(contains(mount.log(), "secret `a`"));
  CHECK(read_root(mount, "b") == "b\n");
}

TEST_CASE("foreign files in the state directory are left alone; a generation-like folder is named",
          "[bad-input]") {
  Scenario scenario;
  scenario.age_file("a.age", "a\n");
  const auto manifest = scenario.manifest(secret_table("a", "a.age"));
  REQUIRE(activate(scenario, manifest).status == 0);
  const auto state = scenario.state_dir();
  const std::vector<std::filesystem::path> foreign = {
      state / "notes.txt",
      state / "blobs/README",
      state / "blobs/junk",
      state / "generations/junk",
      state / "generations/007",
      state / "generations/x.txt",
      state / "generations/99999999999999999999999"};
  for (const auto& path : foreign) {
    if (path.has_extension() || path.filename() == "README") {
      write_file(path, "not secretfs's\n");
    } else {
      std::filesystem::create_directory(path);
    }
  }
  // Named like a generation, but holding none.
  std::filesystem::create_directory(state / "generations/2");
  write_file(state / "generations/2/stray", "x\n");

  const Outcome listed = run_cli(scenario, "generations --state-dir " + shell_quoted(state));
  INFO(listed.output);
  CHECK(listed.status == 0);
  CHECK(contains(listed.output, "\n1 "));
  CHECK(contains(listed.output, "\n2          damaged: " + (state / "generations/2").string() +
                                    "/generation.json: cannot open"));

  Mount mount(state, scenario.mount_point(), MountSource::state_dir);
  CHECK(read_root(mount, "a") == "a\n");
  scenario.age_file("a.age", "a, again\n");
  const Outcome activated = activate(scenario, manifest);
  INFO(activated.output);
  CHECK(activated.status == 0);
  CHECK(contains(activated.output, "generation 3 is being served"));
  CHECK(contains(activated.output,
                 "old generations were not pruned: " + (state / "generations/2").string() +
                     "/generation.json: cannot open"));
  CHECK(read_root(mount, "a") == "a, again\n");
  for (const auto& path : foreign) {
    INFO(path);
    CHECK(std::filesystem::exists(path));
  }
}
