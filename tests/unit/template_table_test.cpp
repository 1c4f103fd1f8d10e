// A template's table in the manifest: its keys, and names it shares with secrets.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "fake_accounts.hpp"
#include "secretfs/manifest.hpp"

namespace {

using secretfs::manifest::EntryKind;
using secretfs::manifest::Manifest;

Manifest parse_text(std::string_view text) {
  static const secretfs::manifest::testing::FakeAccounts accounts;
  return secretfs::manifest::parse(text, "/etc/secretfs", "manifest.toml", accounts);
}

std::vector<std::string> messages(const Manifest& manifest) {
  std::vector<std::string> found;
  for (const auto& problem : manifest.problems) {
    found.push_back(problem.message);
  }
  return found;
}

}  // namespace

TEST_CASE("a template takes content or a file, and owner, group and mode", "[manifest]") {
  const Manifest manifest = parse_text(R"toml([templates."app/env"]
content = "DB={{ db }}\n"
owner = "app"
group = "keys"
mode = "0440"
[templates.conf]
file = "templates/app.conf"
)toml");
  CHECK(manifest.problems.empty());
  REQUIRE(manifest.templates.size() == 2);
  const auto& content = manifest.templates[0];
  CHECK(content.name == "app/env");
  CHECK(content.text == "DB={{ db }}\n");
  CHECK(content.file.empty());
  CHECK(content.uid == 1000);
  CHECK(content.gid == 96);
  CHECK(content.mode == 0440);
  CHECK(content.line == 1);
  const auto& file = manifest.templates[1];
  CHECK(file.name == "conf");
  CHECK(file.text.empty());  // read later, by templates::read_files
  CHECK(file.file == "/etc/secretfs/templates/app.conf");
  CHECK(file.uid == 0);
  CHECK(file.gid == 0);
  CHECK(file.mode == 0400);
}

TEST_CASE("a template's table is checked like a secret's, naming the template", "[manifest]") {
  const Manifest manifest = parse_text(R"toml([templates.both]
content = "x"
file = "x.tmpl"
[templates.neither]
owner = "app"
[templates.wrong]
content = 7
onwer = "app"
mode = "0644"
[templates."../up"]
content = ""
)toml");
  CHECK(manifest.templates.empty());
  CHECK(messages(manifest) ==
        std::vector<std::string>{
            "manifest.toml:3: template `both`: keys `content` and `file` are both set; a "
            "template takes its text from one of them",
            "manifest.toml:4: template `neither`: key `content` or `file` is missing",
            "manifest.toml:7: template `wrong`: key `content` must be a string, not an integer",
            "manifest.toml:8: template `wrong`: unknown key `onwer` (expected content, file, "
        "owner, group, mode, restart_units or reload_units)",
            "manifest.toml:9: template `wrong`: mode `0644` has write bits; a template may only "
            "have read bits (0444)",
            "manifest.toml:10: template `../up`: name has a `..` segment"});
  for (const auto& problem : manifest.problems) {
    CHECK(problem.kind == EntryKind::template_);
  }
}

TEST_CASE("a secret does not take content", "[manifest]") {
  const Manifest manifest = parse_text("[secrets.s]\nfile = \"s.age\"\ncontent = \"x\"\n");
  CHECK(messages(manifest) ==
        std::vector<std::string>{"manifest.toml:3: secret `s`: unknown key `content` (expected "
        "file, source, owner, group, mode, restart_units or reload_units)"});
}

TEST_CASE("a name is a secret or a template, never both, nor a folder of the other", "[manifest]") {
  const Manifest manifest = parse_text(R"toml([secrets.ok]
file = "ok.age"
[secrets.same]
file = "same.age"
[templates.same]
content = "x"
[templates.app]
content = "y"
[secrets."app/key"]
file = "k.age"
)toml");
  REQUIRE(manifest.secrets.size() == 1);
  CHECK(manifest.secrets[0].name == "ok");
  CHECK(manifest.templates.empty());
  CHECK(messages(manifest) ==
        std::vector<std::string>{
            "manifest.toml:3: secret `same`: is also the name of a template; a name serves one "
            "file",
            "manifest.toml:5: template `same`: is also the name of a secret; a name serves one "
            "file",
            "manifest.toml:7: template `app`: is a file, but secret `app/key` needs `app` to be "
            "a directory",
            "manifest.toml:9: secret `app/key`: needs `app` to be a directory, but template "
            "`app` is a file"});
  CHECK(manifest.problems[0].kind == EntryKind::secret);
  CHECK(manifest.problems[1].kind == EntryKind::template_);
}

TEST_CASE("templates must be a table of tables", "[manifest]") {
  CHECK_THROWS_MATCHES(parse_text("templates = 3\n"), secretfs::manifest::ManifestError,
                       Catch::Message("manifest.toml:1: key `templates` must be a table, not an "
                                      "integer"));
  CHECK_THROWS_MATCHES(parse_text("[templates]\nx = \"{{ a }}\"\n"),
                       secretfs::manifest::ManifestError,
                       Catch::Message("manifest.toml:2: template `x`: must be a table such as "
                                      "[templates.\"x\"], not a string"));
}
