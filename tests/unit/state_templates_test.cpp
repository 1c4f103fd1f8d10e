// Templates in generations: a template file is stored as a blob, read back from it, checked
// against its name, kept by pruning, and compared when deciding what changed.
#include <catch2/catch.hpp>

#include "secretfs/state.hpp"
#include "secretfs/template.hpp"
#include "state_test_support.hpp"

namespace {

using namespace secretfs::state;
using namespace secretfs::state::testing;
using secretfs::manifest::Manifest;

constexpr const char* kTemplateText = "URL=postgres://app:{{ db | chomp }}@db\n";

constexpr const char* kManifest = R"toml([secrets.db]
file = "db.age"
[templates."app/env"]
file = "app.env.tmpl"
owner = "app"
[templates.inline]
content = "KEY={{ db }}"
)toml";

// Stores `text` as a manifest, with its template files read as `secretfs activate` reads them.
Stored store_with_templates(const Sandbox& sandbox, StateDir& state_dir, const std::string& text) {
  write_text(sandbox.manifest_path(), text);
  auto manifest = secretfs::manifest::load(sandbox.manifest_path(), fake_accounts());
  secretfs::templates::read_files(manifest, "manifest.toml");
  secretfs::templates::resolve(manifest, "manifest.toml");
  REQUIRE(manifest.problems.empty());
  return state_dir.store(manifest, text);
}

}  // namespace

TEST_CASE("a template file is stored as a blob and served from it after the file is gone",
          "[state]") {
  const Sandbox sandbox;
  write_text(sandbox.repo() / "db.age", "ciphertext");
  write_text(sandbox.repo() / "app.env.tmpl", kTemplateText);
  StateDir state_dir = sandbox.open();
  REQUIRE(store_with_templates(sandbox, state_dir, kManifest).created);
  fs::remove(sandbox.repo() / "app.env.tmpl");

  const Manifest manifest = state_dir.load(1, fake_accounts());
  CHECK(manifest.problems.empty());
  REQUIRE(manifest.templates.size() == 2);
  const auto& file = manifest.templates[0];
  CHECK(file.name == "app/env");
  CHECK(file.text == kTemplateText);
  CHECK(file.sha256 == sha256_hex(kTemplateText));
  CHECK(file.file == sandbox.state() / "blobs" / sha256_hex(kTemplateText));
  CHECK(file.references == std::vector<std::string>{"db"});
  CHECK(file.uid == 1000);
  const auto& inline_template = manifest.templates[1];
  CHECK(inline_template.text == "KEY={{ db }}");
  CHECK(inline_template.file.empty());
  CHECK(inline_template.sha256.empty());

  const std::string record = read_text(sandbox.state() / "generations/1/generation.json");
  CHECK(record.find("\"templates\": [\n    {\"name\": \"app/env\", \"file\": \"" +
                    (sandbox.repo() / "app.env.tmpl").string() + "\", \"blob\": \"" +
                    sha256_hex(kTemplateText) + "\"}\n  ]\n}\n") != std::string::npos);
}

TEST_CASE("a changed template file makes a new generation, an unchanged one does not", "[state]") {
  const Sandbox sandbox;
  write_text(sandbox.repo() / "db.age", "ciphertext");
  write_text(sandbox.repo() / "app.env.tmpl", kTemplateText);
  StateDir state_dir = sandbox.open();
  const Stored first = store_with_templates(sandbox, state_dir, kManifest);
  state_dir.set_current(first.number);

  write_text(sandbox.manifest_path(), kManifest);
  auto same = secretfs::manifest::load(sandbox.manifest_path(), fake_accounts());
  secretfs::templates::read_files(same, "manifest.toml");
  CHECK(state_dir.is_current(same, kManifest));
  CHECK_FALSE(store_with_templates(sandbox, state_dir, kManifest).created);

  write_text(sandbox.repo() / "app.env.tmpl", "URL={{ db }}\n");
  auto changed = secretfs::manifest::load(sandbox.manifest_path(), fake_accounts());
  secretfs::templates::read_files(changed, "manifest.toml");
  CHECK_FALSE(state_dir.is_current(changed, kManifest));
  const Stored second = store_with_templates(sandbox, state_dir, kManifest);
  CHECK(second.created);
  CHECK(second.number == 2);

  const auto before = state_dir.load(1, fake_accounts());
  const auto after = state_dir.load(2, fake_accounts());
  CHECK(changed_secrets(before, after) == std::vector<std::string>{"app/env"});
}

TEST_CASE("a stored template file changed in the state directory refuses the template", "[state]") {
  const Sandbox sandbox;
  write_text(sandbox.repo() / "db.age", "ciphertext");
  write_text(sandbox.repo() / "app.env.tmpl", kTemplateText);
  StateDir state_dir = sandbox.open();
  store_with_templates(sandbox, state_dir, kManifest);
  const fs::path blob = sandbox.state() / "blobs" / sha256_hex(kTemplateText);
  write_text(blob, "URL={{ db }}\n");

  const Manifest manifest = state_dir.load(1, fake_accounts());
  REQUIRE(manifest.templates.size() == 1);
  CHECK(manifest.templates[0].name == "inline");
  REQUIRE(manifest.problems.size() == 1);
  CHECK(manifest.problems[0].secret == "app/env");
  CHECK(manifest.problems[0].message ==
        (sandbox.state() / "generations/1/manifest.toml").string() +
            ":3: template `app/env`: its stored copy " + blob.string() +
            " does not match its SHA-256 name; the state directory was changed");
}

TEST_CASE("a template whose secret has no stored ciphertext is refused on load", "[state]") {
  const Sandbox sandbox;
  write_text(sandbox.repo() / "db.age", "ciphertext");
  write_text(sandbox.repo() / "app.env.tmpl", kTemplateText);
  StateDir state_dir = sandbox.open();
  store_with_templates(sandbox, state_dir, kManifest);
  fs::remove(sandbox.state() / "blobs" / sha256_hex("ciphertext"));

  const Manifest manifest = state_dir.load(1, fake_accounts());
  CHECK(manifest.secrets.empty());
  CHECK(manifest.templates.empty());
  REQUIRE(manifest.problems.size() == 3);
  const std::string source = (sandbox.state() / "generations/1/manifest.toml").string();
  CHECK(manifest.problems[1].message ==
        source +
            ":3: template `app/env`: placeholder `{{ db | chomp }}` names secret `db`, "
            "which is refused");
  CHECK(manifest.problems[2].message ==
        source +
            ":6: template `inline`: placeholder `{{ db }}` names secret `db`, which is "
            "refused");
}

TEST_CASE("pruning keeps the template files that remaining generations use", "[state]") {
  const Sandbox sandbox;
  write_text(sandbox.repo() / "db.age", "ciphertext");
  StateDir state_dir = sandbox.open();
  for (int version = 1; version <= 3; ++version) {
    write_text(sandbox.repo() / "app.env.tmpl", "v" + std::to_string(version) + "={{ db }}\n");
    state_dir.set_current(store_with_templates(sandbox, state_dir, kManifest).number);
  }
  CHECK(state_dir.prune(2) == std::vector<Number>{1});
  CHECK(sandbox.blobs() == std::set<std::string>{sha256_hex("ciphertext"),
                                                 sha256_hex("v2={{ db }}\n"),
                                                 sha256_hex("v3={{ db }}\n")});
}
