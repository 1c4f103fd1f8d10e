// One secret's table: file, owner, group and mode, and every way a secret alone is refused.
#include <catch2/catch.hpp>

#include <string>

#include "fake_accounts.hpp"
#include "secretfs/manifest.hpp"

namespace {

using secretfs::manifest::Manifest;
using secretfs::manifest::Secret;

const secretfs::manifest::testing::FakeAccounts& fake_accounts() {
  static const secretfs::manifest::testing::FakeAccounts accounts;
  return accounts;
}

Manifest parse_text(std::string_view text) {
  return secretfs::manifest::parse(text, "/etc/secretfs", "manifest.toml", fake_accounts());
}

// The one secret a manifest accepts.
Secret only_secret(std::string_view text) {
  const Manifest manifest = parse_text(text);
  INFO(text);
  REQUIRE(manifest.problems.empty());
  REQUIRE(manifest.secrets.size() == 1);
  return manifest.secrets.front();
}

// The message of the one problem in a manifest that refuses the secret `name` and nothing else.
std::string only_problem(std::string_view text, const std::string& name) {
  const Manifest manifest = parse_text(text);
  INFO(text);
  REQUIRE(manifest.secrets.empty());
  REQUIRE(manifest.problems.size() == 1);
  CHECK(manifest.problems.front().secret == name);
  return manifest.problems.front().message;
}

// A secret `s` with a valid file and one more line.
std::string secret_with(std::string_view line) {
  return "[secrets.s]\nfile = \"s.age\"\n" + std::string(line) + "\n";
}

}  // namespace

TEST_CASE("a secret with only a file gets root, group root and mode 0400", "[manifest]") {
  const Secret secret = only_secret("[secrets.\"db/password\"]\nfile = \"db-password.age\"\n");
  CHECK(secret.name == "db/password");
  CHECK(secret.file == "/etc/secretfs/db-password.age");
  CHECK(secret.uid == 0);
  CHECK(secret.gid == 0);
  CHECK(secret.mode == 0400);
  CHECK(secret.line == 1);
}

TEST_CASE("the example from the documentation is read exactly", "[manifest]") {
  const Secret secret = only_secret(R"toml(
[secrets."db/password"]
file  = "db-password.age"
owner = "postgres"
group = "keys"
mode  = "0440"
)toml");
  CHECK(secret.file == "/etc/secretfs/db-password.age");
  CHECK(secret.uid == 70);
  CHECK(secret.gid == 96);
  CHECK(secret.mode == 0440);
  CHECK(secret.line == 2);
}

TEST_CASE("file paths resolve against the manifest's folder, lexically", "[manifest]") {
  CHECK(only_secret("[secrets.s]\nfile = \"a/./b/../c.age\"\n").file == "/etc/secretfs/a/c.age");
  CHECK(only_secret("[secrets.s]\nfile = \"../shared/s.age\"\n").file == "/etc/shared/s.age");
  CHECK(only_secret("[secrets.s]\nfile = \"/nix/store//x-s.age\"\n").file == "/nix/store/x-s.age");
}

TEST_CASE("a named owner brings its primary group unless a group is given", "[manifest]") {
  const Secret by_name = only_secret(secret_with("owner = \"postgres\""));
  CHECK(by_name.uid == 70);
  CHECK(by_name.gid == 71);

  const Secret with_group = only_secret(secret_with("owner = \"app\"\ngroup = \"wheel\""));
  CHECK(with_group.uid == 1000);
  CHECK(with_group.gid == 10);

  const Secret group_only = only_secret(secret_with("group = \"keys\""));
  CHECK(group_only.uid == 0);
  CHECK(group_only.gid == 96);
}

TEST_CASE("numeric owners and groups, as integers or digit strings", "[manifest]") {
  // A uid with a passwd entry brings that entry's primary group.
  const Secret known = only_secret(secret_with("owner = 1000"));
  CHECK(known.uid == 1000);
  CHECK(known.gid == 1001);
  CHECK(only_secret(secret_with("owner = \"70\"")).gid == 71);

  // A uid or gid nobody has is used as it is; the group then defaults to root.
  const Secret unknown = only_secret(secret_with("owner = 4242"));
  CHECK(unknown.uid == 4242);
  CHECK(unknown.gid == 0);
  const Secret both = only_secret(secret_with("owner = \"4242\"\ngroup = \"4343\""));
  CHECK(both.uid == 4242);
  CHECK(both.gid == 4343);
  CHECK(only_secret(secret_with("group = 65534")).gid == 65534);
  CHECK(only_secret(secret_with("owner = 4294967294")).uid == 4294967294U);
  CHECK(only_secret(secret_with("group = \"0\"")).gid == 0);
}

TEST_CASE("an unknown user or group refuses that secret alone", "[manifest]") {
  const Manifest manifest = parse_text(R"toml(
[secrets.ok]
file = "ok.age"

[secrets."db/password"]
file  = "db-password.age"
owner = "postgress"

[secrets.other]
file = "other.age"
group = "wheeel"
)toml");
  REQUIRE(manifest.secrets.size() == 1);
  CHECK(manifest.secrets[0].name == "ok");
  REQUIRE(manifest.problems.size() == 2);
  CHECK(manifest.problems[0].secret == "db/password");
  CHECK(manifest.problems[0].message ==
        "manifest.toml:7: secret `db/password`: unknown user `postgress`");
  CHECK(manifest.problems[1].secret == "other");
  CHECK(manifest.problems[1].message == "manifest.toml:11: secret `other`: unknown group `wheeel`");
}

TEST_CASE("owners and groups that are no valid number or name are refused", "[manifest]") {
  CHECK(only_problem(secret_with("owner = -1"), "s") ==
        "manifest.toml:3: secret `s`: owner -1 is not a valid uid (0 to 4294967294)");
  CHECK(only_problem(secret_with("owner = 4294967295"), "s") ==
        "manifest.toml:3: secret `s`: owner 4294967295 is not a valid uid (0 to 4294967294)");
  CHECK(only_problem(secret_with("group = \"99999999999\""), "s") ==
        "manifest.toml:3: secret `s`: group `99999999999` is not a valid gid (0 to 4294967294)");
  CHECK(only_problem(secret_with("owner = \"\""), "s") ==
        "manifest.toml:3: secret `s`: key `owner` is empty");
  CHECK(only_problem(secret_with("group = \"root\\u0000x\""), "s") ==
        "manifest.toml:3: secret `s`: group `root\\x00x` has a control character");
  CHECK(only_problem(secret_with("owner = \"post gres\""), "s") ==
        "manifest.toml:3: secret `s`: unknown user `post gres`");
}

TEST_CASE("modes: octal strings of 3 or 4 digits with read bits only", "[manifest]") {
  CHECK(only_secret(secret_with("mode = \"0400\"")).mode == 0400);
  CHECK(only_secret(secret_with("mode = \"440\"")).mode == 0440);
  CHECK(only_secret(secret_with("mode = \"0444\"")).mode == 0444);
  CHECK(only_secret(secret_with("mode = \"0040\"")).mode == 0040);
  CHECK(only_secret(secret_with("mode = \"000\"")).mode == 0);
}

TEST_CASE("modes with write, execute or special bits are refused, naming the bits", "[manifest]") {
  struct Case {
    std::string mode;
    std::string bits;
  };
  const Case cases[] = {
      {"0600", "write"},
      {"0402", "write"},
      {"0500", "execute"},
      {"0401", "execute"},
      {"4400", "setuid"},
      {"2400", "setgid"},
      {"1400", "sticky"},
      {"0755", "write and execute"},
      {"7777", "setuid, setgid, sticky, write and execute"},
  };
  for (const Case& c : cases) {
    CHECK(only_problem(secret_with("mode = \"" + c.mode + "\""), "s") ==
          "manifest.toml:3: secret `s`: mode `" + c.mode + "` has " + c.bits +
              " bits; a secret may only have read bits (0444)");
  }
}

TEST_CASE("modes that are not 3 or 4 octal digits are refused", "[manifest]") {
  for (const std::string mode : {"40", "04000", "0800", "0o400", "r--r-----", "", " 400"}) {
    CHECK(only_problem(secret_with("mode = \"" + mode + "\""), "s") ==
          "manifest.toml:3: secret `s`: mode `" + mode +
              "` is not an octal string of 3 or 4 digits, such as \"0400\"");
  }
}

TEST_CASE("a key of the wrong type refuses the secret, naming key and line", "[manifest]") {
  CHECK(only_problem(secret_with("mode = 0o400"), "s") ==
        "manifest.toml:3: secret `s`: key `mode` must be a string, not an integer");
  CHECK(only_problem("[secrets.s]\nfile = 3\n", "s") ==
        "manifest.toml:2: secret `s`: key `file` must be a string, not an integer");
  CHECK(only_problem(secret_with("owner = true"), "s") ==
        "manifest.toml:3: secret `s`: key `owner` must be a string or an integer, not a boolean");
  CHECK(only_problem(secret_with("group = [\"a\"]"), "s") ==
        "manifest.toml:3: secret `s`: key `group` must be a string or an integer, not an array");
}

TEST_CASE("an unknown key in a secret refuses it, naming key and line", "[manifest]") {
  CHECK(only_problem(secret_with("onwer = \"postgres\""), "s") ==
        "manifest.toml:3: secret `s`: unknown key `onwer` (expected file, source, owner, group, "
        "mode, restart_units or reload_units)");
}

TEST_CASE("a missing or empty file refuses the secret", "[manifest]") {
  CHECK(only_problem("\n[secrets.\"db/password\"]\nowner = \"postgres\"\n", "db/password") ==
        "manifest.toml:2: secret `db/password`: key `file` or `source` is missing");
  CHECK(only_problem("[secrets.s]\nfile = \"\"\n", "s") ==
        "manifest.toml:2: secret `s`: key `file` is empty");
  CHECK(only_problem("[secrets.s]\nfile = \"a\\u0000b\"\n", "s") ==
        "manifest.toml:2: secret `s`: key `file` contains a NUL byte");
}

TEST_CASE("every problem of a secret is reported, in line order", "[manifest]") {
  const Manifest manifest = parse_text(R"toml([secrets."a//b"]
owner = "nobody-here"
mode = "0644"
colour = "blue"
)toml");
  CHECK(manifest.secrets.empty());
  REQUIRE(manifest.problems.size() == 5);
  CHECK(manifest.problems[0].message ==
        "manifest.toml:1: secret `a//b`: name has an empty segment (`//`)");
  CHECK(manifest.problems[1].message ==
        "manifest.toml:1: secret `a//b`: key `file` or `source` is missing");
  CHECK(manifest.problems[2].message ==
        "manifest.toml:2: secret `a//b`: unknown user `nobody-here`");
  CHECK(manifest.problems[3].message ==
        "manifest.toml:3: secret `a//b`: mode `0644` has write bits; a secret may only have read "
        "bits (0444)");
  CHECK(manifest.problems[4].message ==
        "manifest.toml:4: secret `a//b`: unknown key `colour` (expected file, source, owner, "
        "group, mode, restart_units or reload_units)");
  for (const auto& problem : manifest.problems) {
    CHECK(problem.secret == "a//b");
  }
}
