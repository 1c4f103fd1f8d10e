// The manifest as a whole: top-level keys, secret names, conflicts, ordering and load().
#include <chrono>
#include <catch2/catch.hpp>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "fake_accounts.hpp"
#include "secretfs/manifest.hpp"

namespace {

namespace fs = std::filesystem;
using secretfs::manifest::Manifest;
using secretfs::manifest::ManifestError;

const secretfs::manifest::testing::FakeAccounts& fake_accounts() {
  static const secretfs::manifest::testing::FakeAccounts accounts;
  return accounts;
}

Manifest parse_text(std::string_view text) {
  return secretfs::manifest::parse(text, "/etc/secretfs", "manifest.toml", fake_accounts());
}

// The ManifestError message for `text`, failing the test when there is none.
std::string error_of(std::string_view text) {
  try {
    parse_text(text);
  } catch (const ManifestError& error) {
    return error.what();
  }
  FAIL("no ManifestError for:\n" << text);
  return {};
}

// A folder under the system's temporary folder, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "secretfs-manifest-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() { fs::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const fs::path& path() const { return path_; }

  fs::path write(const std::string& name, std::string_view text) const {
    fs::path file = path_ / name;
    std::ofstream(file) << text;
    return file;
  }

 private:
  fs::path path_;
};

}  // namespace

TEST_CASE("an empty manifest serves nothing at the default mount point", "[manifest]") {
  const Manifest manifest = parse_text("");
  CHECK(manifest.mount_point == "/run/secrets");
  CHECK(manifest.state_dir == "/var/lib/secretfs");
  CHECK(manifest.keep_generations == 10);
  CHECK(manifest.identities.empty());
  CHECK(manifest.secrets.empty());
  CHECK(manifest.problems.empty());
}

TEST_CASE("audit_log and max_secret_size are read, sizes with binary units", "[manifest]") {
  const Manifest defaults = parse_text("");
  CHECK(defaults.audit_log.empty());
  CHECK(defaults.max_secret_size == 16 * 1024 * 1024);

  const Manifest manifest = parse_text("audit_log = \"/var/log//secretfs.jsonl\"\n"
                                       "max_secret_size = 1000\n");
  CHECK(manifest.audit_log == "/var/log/secretfs.jsonl");
  CHECK(manifest.max_secret_size == 1000);
  CHECK(parse_text("max_secret_size = \"512K\"\n").max_secret_size == 512 * 1024);
  CHECK(parse_text("max_secret_size = \"64M\"\n").max_secret_size == 64 * 1024 * 1024);
  CHECK(parse_text("max_secret_size = \"2G\"\n").max_secret_size == 2ULL << 30);

  const std::string want =
      "manifest.toml:1: max_secret_size must be a positive number of bytes, optionally with K, M "
      "or G (1024-based), such as 16M";
  for (const char* bad : {"0", "-1", "\"\"", "\"16MB\"", "\"M\"", "\"1.5M\"", "\"0K\"",
                          "\"9999999999\""}) {
    INFO(bad);
    CHECK(error_of(std::string("max_secret_size = ") + bad + "\n") == want);
  }
  CHECK(error_of("audit_log = \"audit.jsonl\"\n") ==
        "manifest.toml:1: audit_log `audit.jsonl` must be an absolute path");
}

TEST_CASE("mount_point and identities are read and made absolute and normal", "[manifest]") {
  const Manifest manifest = parse_text(R"toml(
mount_point = "/run//secretfs/"
identities = ["/etc/ssh/ssh_host_ed25519_key", "keys/host.txt", "../other/./key"]
)toml");
  CHECK(manifest.mount_point == "/run/secretfs");
  REQUIRE(manifest.identities.size() == 3);
  CHECK(manifest.identities[0] == "/etc/ssh/ssh_host_ed25519_key");
  CHECK(manifest.identities[1] == "/etc/secretfs/keys/host.txt");
  CHECK(manifest.identities[2] == "/etc/other/key");
}

TEST_CASE("top-level mistakes throw ManifestError naming source, line and key", "[manifest]") {
  CHECK(error_of("mount_point = \"/run/secrets\"\nstate = \"/var/lib/x\"\n") ==
        "manifest.toml:2: unknown key `state` (expected mount_point, state_dir, "
        "keep_generations, audit_log, max_secret_size, identities, onepassword, secrets or "
        "templates)");
  CHECK(error_of("\nmount_point = 3\n") ==
        "manifest.toml:2: key `mount_point` must be a string, not an integer");
  CHECK(error_of("mount_point = \"run/secrets\"\n") ==
        "manifest.toml:1: mount_point `run/secrets` must be an absolute path");
  CHECK(error_of("mount_point = \"\"\n") == "manifest.toml:1: mount_point is empty");
  CHECK(error_of("identities = \"/etc/key\"\n") ==
        "manifest.toml:1: key `identities` must be an array of strings, not a string");
  CHECK(error_of("identities = [\n  \"/etc/key\",\n  7,\n]\n") ==
        "manifest.toml:3: identities[1] must be a string, not an integer");
  CHECK(error_of("identities = [\"\"]\n") == "manifest.toml:1: identities[0] is empty");
  CHECK(error_of("secrets = [\"a\"]\n") ==
        "manifest.toml:1: key `secrets` must be a table, not an array");
  CHECK(error_of("[secrets]\nfine = { file = \"f.age\" }\n\"db/password\" = \"x.age\"\n") ==
        "manifest.toml:3: secret `db/password`: must be a table such as "
        "[secrets.\"db/password\"], not a string");
}

TEST_CASE("state_dir and keep_generations are read", "[manifest]") {
  const Manifest manifest =
      parse_text("state_dir = \"/srv//secretfs/state/\"\nkeep_generations = 2\n");
  CHECK(manifest.state_dir == "/srv/secretfs/state");
  CHECK(manifest.keep_generations == 2);
}

TEST_CASE("a relative state_dir or a keep_generations below 2 is refused", "[manifest]") {
  CHECK(error_of("\nstate_dir = \"var/lib/secretfs\"\n") ==
        "manifest.toml:2: state_dir `var/lib/secretfs` must be an absolute path");
  CHECK(error_of("state_dir = \"\"\n") == "manifest.toml:1: state_dir is empty");
  CHECK(error_of("state_dir = 1\n") ==
        "manifest.toml:1: key `state_dir` must be a string, not an integer");
  CHECK(error_of("\n\nkeep_generations = 1\n") ==
        "manifest.toml:3: keep_generations must be at least 2, not 1");
  CHECK(error_of("keep_generations = -4\n") ==
        "manifest.toml:1: keep_generations must be at least 2, not -4");
  CHECK(error_of("keep_generations = \"10\"\n") ==
        "manifest.toml:1: key `keep_generations` must be an integer, not a string");
}

TEST_CASE("the first top-level mistake by line is the one reported", "[manifest]") {
  // toml++ keeps keys sorted by name; `zzz` comes first in the file, `aaa` second.
  CHECK(error_of("zzz = 1\naaa = 2\n") ==
        "manifest.toml:1: unknown key `zzz` (expected mount_point, state_dir, keep_generations, "
        "audit_log, max_secret_size, identities, onepassword, secrets or templates)");
}

TEST_CASE("TOML syntax errors name the source, line and column", "[manifest]") {
  const std::string message = error_of("mount_point = \"/run/secrets\"\n[secrets.a]\nfile = \n");
  CHECK(message.rfind("manifest.toml:3:8: TOML syntax error: ", 0) == 0);
  CHECK(message.find("expected value") != std::string::npos);

  const std::string duplicate = error_of("[secrets.a]\nfile = \"a\"\n[secrets.\"a\"]\n");
  CHECK(duplicate.rfind("manifest.toml:3:", 0) == 0);
}

TEST_CASE("names that could leave the mount are refused, naming the secret", "[manifest]") {
  struct Case {
    std::string key;  // as written in TOML
    std::string name;
    std::string reason;
  };
  const Case cases[] = {
      {R"("")", "", "name is empty"},
      {R"("/etc/shadow")", "/etc/shadow", "name is absolute (starts with `/`)"},
      {R"("db/")", "db/", "name ends with `/`"},
      {R"("a//b")", "a//b", "name has an empty segment (`//`)"},
      {R"(".")", ".", "name has a `.` segment"},
      {R"("..")", "..", "name has a `..` segment"},
      {R"("../../etc/passwd")", "../../etc/passwd", "name has a `..` segment"},
      {R"("a/./b")", "a/./b", "name has a `.` segment"},
  };
  for (const Case& c : cases) {
    const Manifest manifest =
        parse_text("[secrets.ok]\nfile = \"ok.age\"\n[secrets." + c.key + "]\nfile = \"x.age\"\n");
    REQUIRE(manifest.secrets.size() == 1);
    CHECK(manifest.secrets[0].name == "ok");
    REQUIRE(manifest.problems.size() == 1);
    CHECK(manifest.problems[0].secret == c.name);
    CHECK(manifest.problems[0].message == "manifest.toml:3: secret `" + c.name + "`: " + c.reason);
  }
}

TEST_CASE("names with NUL or control characters are refused and printed escaped", "[manifest]") {
  const Manifest manifest = parse_text(
      "[secrets.\"a\\u0000b\"]\nfile = \"x.age\"\n[secrets.\"line\\nbreak\"]\nfile = \"y.age\"\n"
      "[secrets.\"del\\u007f\"]\nfile = \"z.age\"\n");
  CHECK(manifest.secrets.empty());
  REQUIRE(manifest.problems.size() == 3);
  CHECK(manifest.problems[0].secret == std::string("a\0b", 3));
  CHECK(manifest.problems[0].message ==
        "manifest.toml:1: secret `a\\x00b`: name has control character \\x00 at byte 1");
  CHECK(manifest.problems[1].secret == "line\nbreak");
  CHECK(manifest.problems[1].message ==
        "manifest.toml:3: secret `line\\x0abreak`: name has control character \\x0a at byte 4");
  CHECK(manifest.problems[2].message ==
        "manifest.toml:5: secret `del\\x7f`: name has control character \\x7f at byte 3");
}

TEST_CASE("a name that is both a file and a folder refuses both secrets", "[manifest]") {
  const Manifest manifest = parse_text(R"toml(
[secrets.ok]
file = "ok.age"

[secrets."a/b"]
file = "ab.age"

[secrets.a]
file = "a.age"
)toml");
  REQUIRE(manifest.secrets.size() == 1);
  CHECK(manifest.secrets[0].name == "ok");
  REQUIRE(manifest.problems.size() == 2);
  CHECK(manifest.problems[0].secret == "a/b");
  CHECK(manifest.problems[0].message ==
        "manifest.toml:5: secret `a/b`: needs `a` to be a directory, but secret `a` is a file");
  CHECK(manifest.problems[1].secret == "a");
  CHECK(manifest.problems[1].message ==
        "manifest.toml:8: secret `a`: is a file, but secret `a/b` needs `a` to be a directory");
}

TEST_CASE("conflicts reach across several levels and count even for refused secrets",
          "[manifest]") {
  const Manifest manifest = parse_text(R"toml([secrets.x]
file = "x.age"
mode = "0600"
[secrets."x/y/z"]
file = "z.age"
[secrets."x/w"]
file = "w.age"
)toml");
  CHECK(manifest.secrets.empty());
  REQUIRE(manifest.problems.size() == 5);
  CHECK(manifest.problems[0].message ==
        "manifest.toml:1: secret `x`: is a file, but secret `x/w` needs `x` to be a directory");
  CHECK(manifest.problems[1].message ==
        "manifest.toml:1: secret `x`: is a file, but secret `x/y/z` needs `x` to be a directory");
  CHECK(manifest.problems[2].secret == "x");
  CHECK(manifest.problems[2].message.find("mode `0600` has write bits") != std::string::npos);
  CHECK(manifest.problems[3].message ==
        "manifest.toml:4: secret `x/y/z`: needs `x` to be a directory, but secret `x` is a file");
  CHECK(manifest.problems[4].message ==
        "manifest.toml:6: secret `x/w`: needs `x` to be a directory, but secret `x` is a file");
}

TEST_CASE("siblings and look-alike prefixes do not conflict", "[manifest]") {
  const Manifest manifest = parse_text(R"toml(
[secrets."db/password"]
file = "p.age"
[secrets."db/user"]
file = "u.age"
[secrets.dbx]
file = "x.age"
[secrets."db.old"]
file = "o.age"
)toml");
  CHECK(manifest.problems.empty());
  CHECK(manifest.secrets.size() == 4);
}

TEST_CASE("secrets come sorted by name and problems in line order", "[manifest]") {
  const Manifest manifest = parse_text(R"toml(
[secrets.zeta]
file = "z.age"
[secrets.b]
mode = "0700"
[secrets.alpha]
file = "a.age"
[secrets.a]
owner = "nobody-here"
file = "a.age"
[secrets."m/n"]
file = "mn.age"
)toml");
  REQUIRE(manifest.secrets.size() == 3);
  CHECK(manifest.secrets[0].name == "alpha");
  CHECK(manifest.secrets[0].line == 6);
  CHECK(manifest.secrets[1].name == "m/n");
  CHECK(manifest.secrets[2].name == "zeta");
  REQUIRE(manifest.problems.size() == 3);
  CHECK(manifest.problems[0].message ==
        "manifest.toml:4: secret `b`: key `file` or `source` is missing");
  CHECK(manifest.problems[1].message.rfind("manifest.toml:5: secret `b`: mode `0700`", 0) == 0);
  CHECK(manifest.problems[2].message == "manifest.toml:9: secret `a`: unknown user `nobody-here`");
}

TEST_CASE("secrets may be written as inline tables and dotted keys", "[manifest]") {
  const Manifest manifest = parse_text(
      "secrets = { a = { file = \"a.age\" }, b = { file = \"b.age\", mode = \"0444\" } }\n");
  REQUIRE(manifest.secrets.size() == 2);
  CHECK(manifest.secrets[1].mode == 0444);

  const Manifest dotted = parse_text("secrets.\"x/y\".file = \"xy.age\"\n");
  REQUIRE(dotted.secrets.size() == 1);
  CHECK(dotted.secrets[0].file == "/etc/secretfs/xy.age");
}

TEST_CASE("a relative base folder is made absolute", "[manifest]") {
  const Manifest manifest = secretfs::manifest::parse("[secrets.s]\nfile = \"s.age\"\n", "conf",
                                                      "m.toml", fake_accounts());
  REQUIRE(manifest.secrets.size() == 1);
  CHECK(manifest.secrets[0].file == fs::current_path() / "conf" / "s.age");
}

TEST_CASE("load reads a file and resolves paths against its folder", "[manifest]") {
  const TempDir dir;
  const fs::path path = dir.write("manifest.toml", R"toml(identities = ["host.key"]
[secrets."db/password"]
file = "secrets/db.age"
owner = "postgres"
)toml");
  const Manifest manifest = secretfs::manifest::load(path, fake_accounts());
  CHECK(manifest.path == path);
  REQUIRE(manifest.identities.size() == 1);
  CHECK(manifest.identities[0] == dir.path() / "host.key");
  REQUIRE(manifest.secrets.size() == 1);
  CHECK(manifest.secrets[0].file == dir.path() / "secrets" / "db.age");
  CHECK(manifest.secrets[0].uid == 70);
}

TEST_CASE("load names the file in messages", "[manifest]") {
  const TempDir dir;
  const fs::path path = dir.write("bad.toml", "[secrets.s]\nfile = \"s.age\"\nowner = \"ghost\"\n");
  const Manifest manifest = secretfs::manifest::load(path, fake_accounts());
  REQUIRE(manifest.problems.size() == 1);
  CHECK(manifest.problems[0].message == path.string() + ":3: secret `s`: unknown user `ghost`");
}

TEST_CASE("load of a missing file or a folder throws ManifestError", "[manifest]") {
  const TempDir dir;
  const fs::path missing = dir.path() / "missing.toml";
  CHECK_THROWS_MATCHES(
      secretfs::manifest::load(missing, fake_accounts()), ManifestError,
      Catch::Message(missing.string() + ": cannot read manifest: No such file or directory"));
  CHECK_THROWS_MATCHES(
      secretfs::manifest::load(dir.path(), fake_accounts()), ManifestError,
      Catch::Message(dir.path().string() + ": cannot read manifest: Is a directory"));
}

TEST_CASE("system accounts read the host's passwd and group", "[manifest][system]") {
  const auto& system = secretfs::manifest::system_accounts();
  const auto root = system.user_by_name("root");
  REQUIRE(root);
  CHECK(root->uid == 0);
  CHECK(root->primary_gid == 0);
  REQUIRE(system.user_by_uid(0));
  CHECK(system.user_by_uid(0)->primary_gid == 0);
  CHECK(system.group_by_name("root") == gid_t{0});

  // Debian gives the daemon user and group id 1.
  const auto daemon = system.user_by_name("daemon");
  REQUIRE(daemon);
  CHECK(daemon->uid == 1);
  CHECK(daemon->primary_gid == 1);
  CHECK(system.group_by_name("daemon") == gid_t{1});

  CHECK_FALSE(system.user_by_name("no-such-user-secretfs"));
  CHECK_FALSE(system.group_by_name("no-such-group-secretfs"));
  CHECK_FALSE(system.user_by_name(std::string("root\0x", 6)));
}

TEST_CASE("parse uses the system accounts by default", "[manifest][system]") {
  const Manifest manifest = secretfs::manifest::parse(
      "[secrets.s]\nfile = \"s.age\"\nowner = \"daemon\"\n", "/etc", "m.toml");
  REQUIRE(manifest.secrets.size() == 1);
  CHECK(manifest.secrets[0].uid == 1);
  CHECK(manifest.secrets[0].gid == 1);
}

TEST_CASE("[onepassword] settings and secrets with a source are read", "[manifest]") {
  const Manifest manifest = parse_text(
      "[onepassword]\ntoken_file = \"/etc/secretfs/op-token\"\nop = \"bin/op\"\n"
      "refresh = \"15m\"\ntimeout = \"500ms\"\nretry = \"2s\"\n"
      "[secrets.live]\nsource = \"op://Prod/db/password\"\nrestart_units = [\"db.service\"]\n"
      "[secrets.synced]\nsource = \"op://Prod/db/user\"\nfile = \"user.age\"\n");
  CHECK(manifest.problems.empty());
  CHECK(manifest.onepassword.token_file == "/etc/secretfs/op-token");
  CHECK(manifest.onepassword.op == "/etc/secretfs/bin/op");
  CHECK(manifest.onepassword.refresh == std::chrono::minutes(15));
  CHECK(manifest.onepassword.timeout == std::chrono::milliseconds(500));
  CHECK(manifest.onepassword.retry == std::chrono::seconds(2));
  REQUIRE(manifest.secrets.size() == 2);
  CHECK(manifest.secrets[0].from_onepassword);
  CHECK(manifest.secrets[0].file.empty());
  CHECK(manifest.secrets[0].units.restart == std::vector<std::string>{"db.service"});
  CHECK_FALSE(manifest.secrets[1].from_onepassword);  // the file is served; sync fills it
  CHECK(manifest.secrets[1].file == "/etc/secretfs/user.age");
  CHECK(manifest.secrets[1].source == "op://Prod/db/user");
}

TEST_CASE("bad 1Password settings and sources are named", "[manifest]") {
  CHECK(error_of("[onepassword]\nrefresh = \"soon\"\n") ==
        "manifest.toml:2: onepassword.refresh `soon` is not a duration: a number with ms, s, m, "
        "h or d, such as \"30s\"");
  CHECK(error_of("[onepassword]\nrefresh = \"10ms\"\n") ==
        "manifest.toml:2: onepassword.refresh must be at least 1000 ms");
  CHECK(error_of("[onepassword]\nrefresh = \"200000d\"\n") ==
        "manifest.toml:2: onepassword.refresh must be at most 365d");
  CHECK(error_of("[onepassword]\ntoken = \"x\"\n") ==
        "manifest.toml:2: unknown key `onepassword.token` (expected token_file, op, refresh, "
        "timeout or retry)");
  const Manifest manifest = parse_text(
      "[secrets.a]\nsource = \"https://example.com\"\n"
      "[secrets.b]\nsource = \"op://v/i/f\"\n"
      "[secrets.c]\nfile = \"c.age\"\nrestart_units = [\"--now\"]\n");
  CHECK(manifest.secrets.empty());
  REQUIRE(manifest.problems.size() == 3);
  CHECK(manifest.problems[0].message ==
        "manifest.toml:2: secret `a`: key `source` must be a 1Password reference such as "
        "\"op://vault/item/field\"");
  CHECK(manifest.problems[1].message ==
        "manifest.toml:3: secret `b`: has `source` but no `file`, and the manifest has no "
        "[onepassword] token_file to read it with");
  CHECK(manifest.problems[2].message ==
        "manifest.toml:7: secret `c`: key `restart_units` must list unit names such as "
        "\"nginx.service\"");
}
