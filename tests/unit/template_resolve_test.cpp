// A manifest's templates against its secrets: what resolve() and read_files() refuse, and how
// the refusals read.
#include <catch2/catch.hpp>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "fake_accounts.hpp"
#include "secretfs/template.hpp"

namespace {

namespace fs = std::filesystem;
using secretfs::manifest::EntryKind;
using secretfs::manifest::Manifest;

Manifest resolved(const std::string& text, const fs::path& base = "/etc/secretfs") {
  static const secretfs::manifest::testing::FakeAccounts accounts;
  Manifest manifest = secretfs::manifest::parse(text, base, "manifest.toml", accounts);
  secretfs::templates::read_files(manifest, "manifest.toml");
  secretfs::templates::resolve(manifest, "manifest.toml");
  return manifest;
}

std::vector<std::string> messages(const Manifest& manifest) {
  std::vector<std::string> found;
  for (const auto& problem : manifest.problems) {
    found.push_back(problem.message);
  }
  return found;
}

std::vector<std::string> template_names(const Manifest& manifest) {
  std::vector<std::string> names;
  for (const auto& entry : manifest.templates) {
    names.push_back(entry.name);
  }
  return names;
}

constexpr const char* kSecrets = R"toml([secrets."db/password"]
file = "db.age"
[secrets.api]
file = "api.age"
[secrets.refused]
file = "r.age"
owner = "ghost"
)toml";

}  // namespace

TEST_CASE("a template whose placeholders name served secrets is kept, with its references",
          "[template]") {
  const Manifest manifest = resolved(std::string(kSecrets) + R"toml([templates."app/env"]
content = "URL=postgres://app:{{ db/password | chomp }}@db\nKEY={{api}}\nAGAIN={{ api }}\n"
owner = "app"
mode = "0440"
)toml");
  CHECK(messages(manifest) ==
        std::vector<std::string>{"manifest.toml:7: secret `refused`: unknown user `ghost`"});
  REQUIRE(manifest.templates.size() == 1);
  const auto& entry = manifest.templates[0];
  CHECK(entry.name == "app/env");
  CHECK(entry.references == std::vector<std::string>{"api", "db/password"});
  CHECK(entry.uid == 1000);
  CHECK(entry.gid == 1001);
  CHECK(entry.mode == 0440);
  CHECK(entry.file.empty());
  CHECK(entry.line == 8);
}

TEST_CASE("each faulty placeholder refuses its template alone, named", "[template]") {
  const Manifest manifest = resolved(std::string(kSecrets) + R"toml([templates.good]
content = "{{ api }}"
[templates."app/env"]
content = """A={{ db/pasword }}
B={{ good }}
C={{ refused }}
D={{ api | base32 }}
E={{ db/pasword }}
F={{ api"""
)toml");
  CHECK(template_names(manifest) == std::vector<std::string>{"good"});
  REQUIRE(manifest.secrets.size() == 2);
  CHECK(messages(manifest) ==
        std::vector<std::string>{
            "manifest.toml:7: secret `refused`: unknown user `ghost`",
            "manifest.toml:10: template `app/env`: placeholder `{{ api | base32 }}`: unknown "
            "filter `base32` (expected chomp, base64 or hex)",
            "manifest.toml:10: template `app/env`: placeholder `{{ api` has no `}}` on its line",
            "manifest.toml:10: template `app/env`: placeholder `{{ db/pasword }}` names no secret",
            "manifest.toml:10: template `app/env`: placeholder `{{ good }}` names a template; a "
            "template inserts secrets only",
            "manifest.toml:10: template `app/env`: placeholder `{{ refused }}` names secret "
            "`refused`, which is refused"});
  for (std::size_t i = 1; i < manifest.problems.size(); ++i) {
    CHECK(manifest.problems[i].secret == "app/env");
    CHECK(manifest.problems[i].kind == EntryKind::template_);
  }
}

TEST_CASE("a template may not insert itself nor a refused template", "[template]") {
  const Manifest manifest = resolved(R"toml([templates.self]
content = "{{ self }}"
[templates.broken]
content = "x"
mode = "0600"
[templates.user]
content = "{{ broken }}"
)toml");
  CHECK(manifest.templates.empty());
  CHECK(messages(manifest) ==
        std::vector<std::string>{
            "manifest.toml:5: template `broken`: mode `0600` has write bits; a template may only "
            "have read bits (0444)",
            "manifest.toml:1: template `self`: placeholder `{{ self }}` names a template; a "
            "template inserts secrets only",
            "manifest.toml:6: template `user`: placeholder `{{ broken }}` names a template; a "
            "template inserts secrets only"});
}

TEST_CASE("template text over the limit is refused", "[template]") {
  Manifest manifest = resolved("[templates.big]\ncontent = \"\"\n");
  REQUIRE(manifest.templates.size() == 1);
  manifest.templates[0].text.assign(secretfs::templates::kMaxTemplateSize + 1, 'x');
  secretfs::templates::resolve(manifest, "manifest.toml");
  CHECK(manifest.templates.empty());
  CHECK(messages(manifest) ==
        std::vector<std::string>{"manifest.toml:1: template `big`: the text is 1048577 bytes, "
                                 "over the limit of 1048576"});
}

// Each distinct mistake is named once, in the order of first appearance; with many of them the
// check must stay linear (40,000 here, 1 MiB of text can hold over 100,000).
TEST_CASE("many distinct unknown placeholders are each named once, in order", "[template]") {
  Manifest manifest = resolved("[templates.big]\ncontent = \"\"\n");
  REQUIRE(manifest.templates.size() == 1);
  constexpr int kCount = 40000;
  std::string text;
  std::vector<std::string> expected;
  for (int i = 0; i < kCount; ++i) {
    const std::string placeholder = "{{ n" + std::to_string(i) + " }}";
    text += placeholder;
    expected.push_back("manifest.toml:1: template `big`: placeholder `" + placeholder +
                       "` names no secret");
  }
  text += "{{ n1 }}{{ n0 }}";  // repeated: not named again
  manifest.templates[0].text = text;

  secretfs::templates::resolve(manifest, "manifest.toml");
  CHECK(manifest.templates.empty());
  REQUIRE(manifest.problems.size() == kCount);
  CHECK(messages(manifest) == expected);
}

TEST_CASE("read_files reads a template file, or refuses the template naming the file",
          "[template]") {
  std::string pattern = (fs::temp_directory_path() / "secretfs-template-XXXXXX").string();
  REQUIRE(mkdtemp(pattern.data()) != nullptr);
  const fs::path dir = pattern;
  std::ofstream(dir / "app.env.tmpl") << "KEY={{ api }}\n";
  const Manifest manifest = resolved(R"toml([secrets.api]
file = "api.age"
[templates.app]
file = "app.env.tmpl"
[templates.gone]
file = "missing.tmpl"
)toml",
                                     dir);
  fs::remove_all(dir);
  REQUIRE(manifest.templates.size() == 1);
  CHECK(manifest.templates[0].text == "KEY={{ api }}\n");
  CHECK(manifest.templates[0].file == dir / "app.env.tmpl");
  CHECK(manifest.templates[0].references == std::vector<std::string>{"api"});
  CHECK(messages(manifest) ==
        std::vector<std::string>{"manifest.toml:5: template `gone`: cannot read " +
                                 (dir / "missing.tmpl").string() + ": No such file or directory"});
}
