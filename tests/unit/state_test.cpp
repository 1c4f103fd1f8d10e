// Storing generations, loading them back, and pruning them.
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "secretfs/state.hpp"
#include "state_test_support.hpp"

namespace {

using namespace secretfs::state;
using namespace secretfs::state::testing;

// The SHA-256 of "abc" (FIPS 180-2, appendix B.1): the blob's name is the content's hash.
constexpr const char* kAbcSha256 =
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

constexpr const char* kTwoSecrets = R"toml(
identities = ["keys/host.txt"]

[secrets."db/password"]
file = "db.age"
owner = "postgres"
mode = "0440"

[secrets.api]
file = "api.age"
)toml";

// A secret's owner that only exists in the accounts used when loading.
class AccountsWithLateUser final : public secretfs::manifest::Accounts {
 public:
  std::optional<User> user_by_name(const std::string& name) const override {
    return name == "late" ? std::optional(User{2000, 2000}) : fake_accounts().user_by_name(name);
  }
  std::optional<User> user_by_uid(uid_t uid) const override {
    return fake_accounts().user_by_uid(uid);
  }
  std::optional<gid_t> group_by_name(const std::string& name) const override {
    return fake_accounts().group_by_name(name);
  }
};

}  // namespace

TEST_CASE("a stored generation loads back with its files pointing into blobs/", "[state]") {
  const Sandbox sandbox;
  write_text(sandbox.repo() / "db.age", "abc");
  write_text(sandbox.repo() / "api.age", "api ciphertext");
  StateDir state_dir = sandbox.open();

  const Stored stored = sandbox.store(state_dir, kTwoSecrets);
  CHECK(stored.number == 1);
  CHECK(stored.created);
  CHECK_FALSE(state_dir.current().has_value());

  const auto manifest = state_dir.load(1, fake_accounts());
  CHECK(manifest.path == sandbox.manifest_path());
  REQUIRE(manifest.identities.size() == 1);
  CHECK(manifest.identities[0] == sandbox.repo() / "keys/host.txt");
  CHECK(manifest.problems.empty());
  REQUIRE(manifest.secrets.size() == 2);
  CHECK(manifest.secrets[0].name == "api");
  CHECK(manifest.secrets[0].file == sandbox.state() / "blobs" / sha256_hex("api ciphertext"));
  CHECK(read_text(manifest.secrets[0].file) == "api ciphertext");
  CHECK(manifest.secrets[1].name == "db/password");
  CHECK(manifest.secrets[1].file == sandbox.state() / "blobs" / kAbcSha256);
  CHECK(read_text(manifest.secrets[1].file) == "abc");
  CHECK(manifest.secrets[1].uid == 70);
  CHECK(manifest.secrets[1].gid == 71);
  CHECK(manifest.secrets[1].mode == 0440);

  const std::string folder = (sandbox.state() / "generations" / "1").string();
  CHECK(read_text(folder + "/manifest.toml") == kTwoSecrets);
  CHECK(read_text(sandbox.state() / "last") == "1\n");
  const auto blob_perms = fs::status(sandbox.state() / "blobs" / kAbcSha256).permissions();
  CHECK((blob_perms & fs::perms::all) == (fs::perms::owner_read | fs::perms::owner_write));

  const auto info = state_dir.generation(1);
  REQUIRE(info.has_value());
  CHECK(info->manifest_sha256 == sha256_hex(kTwoSecrets));
  CHECK(info->manifest == sandbox.manifest_path());
  CHECK(info->secrets == 2);
  CHECK_FALSE(info->current);
  CHECK(info->created > 0);
  CHECK_FALSE(state_dir.generation(2).has_value());
}

TEST_CASE("a generation still loads after its original ciphertexts are deleted", "[state]") {
  const Sandbox sandbox;
  StateDir state_dir = sandbox.open();
  sandbox.store_files(state_dir, {{"a", "first"}, {"b", "second"}});
  fs::remove(sandbox.repo() / "a.age");
  fs::remove(sandbox.repo() / "b.age");
  fs::remove(sandbox.manifest_path());

  const auto manifest = state_dir.load(1, fake_accounts());
  REQUIRE(manifest.secrets.size() == 2);
  CHECK(read_text(manifest.secrets[0].file) == "first");
  CHECK(read_text(manifest.secrets[1].file) == "second");
}

TEST_CASE("storing what the current generation holds creates nothing", "[state]") {
  const Sandbox sandbox;
  StateDir state_dir = sandbox.open();
  CHECK(sandbox.store_files(state_dir, {{"a", "one"}}).number == 1);
  state_dir.set_current(1);
  CHECK(state_dir.current() == 1);
  CHECK(read_text(sandbox.state() / "current") == "1\n");

  const Stored again = sandbox.store_files(state_dir, {{"a", "one"}});
  CHECK(again.number == 1);
  CHECK_FALSE(again.created);
  CHECK(numbers_of(state_dir.generations()) == std::vector<Number>{1});

  // A changed ciphertext under an identical manifest is a new generation.
  const Stored changed = sandbox.store_files(state_dir, {{"a", "two"}});
  CHECK(changed.number == 2);
  CHECK(changed.created);
  CHECK(state_dir.current() == 1);
}

TEST_CASE("is_current tells a restart from a change, and writes nothing", "[state]") {
  const Sandbox sandbox;
  StateDir state_dir = sandbox.open();
  const auto manifest = [&] {
    return secretfs::manifest::load(sandbox.manifest_path(), fake_accounts());
  };

  sandbox.store_files(state_dir, {{"a", "one"}});
  const std::string text = read_text(sandbox.manifest_path());
  // Stored but not current yet.
  CHECK_FALSE(state_dir.is_current(manifest(), text));
  state_dir.set_current(1);
  CHECK(state_dir.is_current(manifest(), text));

  // A lost blob needs a repair, which storing again makes.
  fs::remove(sandbox.state() / "blobs" / sha256_hex("one"));
  CHECK_FALSE(state_dir.is_current(manifest(), text));
  CHECK_FALSE(state_dir.store(manifest(), text).created);
  CHECK(read_text(sandbox.state() / "blobs" / sha256_hex("one")) == "one");
  CHECK(state_dir.is_current(manifest(), text));

  write_text(sandbox.repo() / "a.age", "two");
  CHECK_FALSE(state_dir.is_current(manifest(), text));
  CHECK_FALSE(state_dir.is_current(manifest(), text + "\n"));
  fs::remove(sandbox.repo() / "a.age");
  CHECK_FALSE(state_dir.is_current(manifest(), text));
  CHECK(sandbox.blobs() == std::set<std::string>{sha256_hex("one")});
  CHECK(numbers_of(state_dir.generations()) == std::vector<Number>{1});
}

TEST_CASE("a restart trusts the stamp of a file that settled before it was stored", "[state]") {
  const Sandbox sandbox;
  StateDir state_dir = sandbox.open();
  write_text(sandbox.repo() / "settled.age", "one");
  const std::string text =
      "[secrets.settled]\nfile = \"settled.age\"\n"
      "[secrets.fresh]\nfile = \"fresh.age\"\n";
  write_text(sandbox.manifest_path(), text);
  // A stamp is recorded only for a file whose last change is over two seconds old.
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  write_text(sandbox.repo() / "fresh.age", "new");
  const auto manifest = [&] {
    return secretfs::manifest::load(sandbox.manifest_path(), fake_accounts());
  };
  state_dir.set_current(state_dir.store(manifest(), text).number);

  const std::string record = read_text(sandbox.state() / "generations" / "1" / "generation.json");
  CHECK(record.find("\"name\": \"settled\", \"file\": \"" +
                    (sandbox.repo() / "settled.age").string() + "\", \"blob\": \"" +
                    sha256_hex("one") + "\", \"stamp\": {") != std::string::npos);
  CHECK(record.find("\"name\": \"fresh\", \"file\": \"" + (sandbox.repo() / "fresh.age").string() +
                    "\", \"blob\": \"" + sha256_hex("new") + "\"}") != std::string::npos);
  CHECK(state_dir.is_current(manifest(), text));

  // Written again with the same size: the change time moves, so the file is hashed, and it is
  // not what was stored.
  write_text(sandbox.repo() / "settled.age", "two");
  CHECK_FALSE(state_dir.is_current(manifest(), text));
  // The same bytes again: hashed too, and what was stored.
  write_text(sandbox.repo() / "settled.age", "one");
  CHECK(state_dir.is_current(manifest(), text));
}

TEST_CASE("secrets with identical ciphertexts share one blob", "[state]") {
  const Sandbox sandbox;
  StateDir state_dir = sandbox.open();
  sandbox.store_files(state_dir, {{"a", "same"}, {"b", "same"}});
  CHECK(sandbox.blobs() == std::set<std::string>{sha256_hex("same")});
  CHECK(state_dir.generation(1)->secrets == 2);
}

TEST_CASE("generations list in order and mark the current one", "[state]") {
  const Sandbox sandbox;
  StateDir state_dir = sandbox.open();
  for (const char* content : {"v1", "v2", "v3"}) {
    sandbox.store_files(state_dir, {{"a", content}});
  }
  state_dir.set_current(2);
  const auto infos = state_dir.generations();
  CHECK(numbers_of(infos) == std::vector<Number>{1, 2, 3});
  CHECK_FALSE(infos[0].current);
  CHECK(infos[1].current);
  CHECK_FALSE(infos[2].current);
  CHECK_THROWS_WITH(state_dir.set_current(4), Catch::Contains("generation 4 does not exist"));
  CHECK(state_dir.current() == 2);
}

TEST_CASE("prune keeps the newest, the current one and the one before it", "[state]") {
  const Sandbox sandbox;
  StateDir state_dir = sandbox.open();
  for (const char* content : {"v1", "v2", "v3", "v4", "v5", "v6"}) {
    sandbox.store_files(state_dir, {{"shared", "always"}, {"a", content}});
  }
  state_dir.set_current(2);

  CHECK(state_dir.prune(2) == std::vector<Number>{3, 4});
  CHECK(numbers_of(state_dir.generations()) == std::vector<Number>{1, 2, 5, 6});
  CHECK(sandbox.blobs() == std::set<std::string>{sha256_hex("always"), sha256_hex("v1"),
                                                 sha256_hex("v2"), sha256_hex("v5"),
                                                 sha256_hex("v6")});

  state_dir.set_current(6);
  CHECK(state_dir.prune(2) == std::vector<Number>{1, 2});
  CHECK(numbers_of(state_dir.generations()) == std::vector<Number>{5, 6});
  CHECK(sandbox.blobs() ==
        std::set<std::string>{sha256_hex("always"), sha256_hex("v5"), sha256_hex("v6")});
  CHECK(state_dir.prune(2).empty());
}

TEST_CASE("prune without a current generation keeps exactly the newest", "[state]") {
  const Sandbox sandbox;
  StateDir state_dir = sandbox.open();
  for (const char* content : {"v1", "v2", "v3"}) {
    sandbox.store_files(state_dir, {{"a", content}});
  }
  CHECK(state_dir.prune(2) == std::vector<Number>{1});
  CHECK(sandbox.blobs() == std::set<std::string>{sha256_hex("v2"), sha256_hex("v3")});
}

TEST_CASE("generation numbers are never reused, after a prune or a lost file", "[state]") {
  const Sandbox sandbox;
  StateDir state_dir = sandbox.open();
  for (const char* content : {"v1", "v2", "v3", "v4"}) {
    sandbox.store_files(state_dir, {{"a", content}});
  }
  state_dir.set_current(4);
  CHECK(state_dir.prune(2) == std::vector<Number>{1, 2});
  CHECK(sandbox.store_files(state_dir, {{"a", "v1"}}).number == 5);

  // `last` remembers numbers whose folders are gone...
  fs::remove_all(sandbox.state() / "generations" / "5");
  CHECK(sandbox.store_files(state_dir, {{"a", "v5"}}).number == 6);

  // ...and folders count even when `last` was never updated (a crash right after the rename).
  fs::remove(sandbox.state() / "last");
  CHECK(sandbox.store_files(state_dir, {{"a", "v6"}}).number == 7);
  CHECK(read_text(sandbox.state() / "last") == "7\n");
}

TEST_CASE("a secret refused when stored stays refused when loaded", "[state]") {
  const Sandbox sandbox;
  StateDir state_dir = sandbox.open();
  write_text(sandbox.repo() / "a.age", "a");
  write_text(sandbox.repo() / "b.age", "b");
  const std::string text =
      "[secrets.a]\nfile = \"a.age\"\n\n[secrets.b]\nfile = \"b.age\"\nowner = \"late\"\n";
  sandbox.store(state_dir, text);
  CHECK(state_dir.generation(1)->secrets == 1);

  // With the fake accounts `b` is still refused by the manifest itself.
  const auto refused = state_dir.load(1, fake_accounts());
  REQUIRE(refused.secrets.size() == 1);
  CHECK(refused.problems.size() == 1);

  // Once its owner exists, `b` parses, but no ciphertext was ever stored for it.
  const auto manifest = state_dir.load(1, AccountsWithLateUser());
  REQUIRE(manifest.secrets.size() == 1);
  CHECK(manifest.secrets[0].name == "a");
  REQUIRE(manifest.problems.size() == 1);
  CHECK(manifest.problems[0].secret == "b");
  CHECK(manifest.problems[0].message ==
        (sandbox.state() / "generations/1/manifest.toml").string() +
            ":4: secret `b`: no ciphertext was stored for it in generation 1 (it was refused "
            "then)");
}

TEST_CASE("a secret whose blob vanished is refused alone", "[state]") {
  const Sandbox sandbox;
  StateDir state_dir = sandbox.open();
  sandbox.store_files(state_dir, {{"a", "kept"}, {"b", "lost"}});
  const auto lost = sandbox.state() / "blobs" / sha256_hex("lost");
  fs::remove(lost);

  const auto manifest = state_dir.load(1, fake_accounts());
  REQUIRE(manifest.secrets.size() == 1);
  CHECK(manifest.secrets[0].name == "a");
  REQUIRE(manifest.problems.size() == 1);
  CHECK_THAT(manifest.problems[0].message,
             Catch::EndsWith("secret `b`: its stored ciphertext " + lost.string() + " is missing"));
}

TEST_CASE("store refuses an unreadable ciphertext, naming the secret", "[state]") {
  const Sandbox sandbox;
  StateDir state_dir = sandbox.open();
  write_text(sandbox.manifest_path(), "[secrets.a]\nfile = \"missing.age\"\n");
  const auto manifest = secretfs::manifest::load(sandbox.manifest_path(), fake_accounts());
  CHECK_THROWS_WITH(state_dir.store(manifest, read_text(sandbox.manifest_path())),
                    "secret `a`: " + (sandbox.repo() / "missing.age").string() +
                        ": cannot open: No such file or directory");
  CHECK(state_dir.generations().empty());
}
