#include <catch2/catch.hpp>

#include "secretfs/state.hpp"

using secretfs::manifest::Manifest;
using secretfs::manifest::Secret;
using secretfs::state::changed_secrets;

namespace {

Secret secret(const std::string& name, const std::string& blob, uid_t uid = 0, mode_t mode = 0400) {
  Secret result;
  result.name = name;
  result.file = "/state/blobs/" + blob;
  result.uid = uid;
  result.gid = uid;
  result.mode = mode;
  return result;
}

Manifest manifest(std::vector<Secret> secrets) {
  Manifest result;
  result.secrets = std::move(secrets);
  return result;
}

}  // namespace

TEST_CASE("changed_secrets names added, removed and altered secrets, sorted", "[state]") {
  const auto before =
      manifest({secret("same", "aa"), secret("content", "bb"), secret("owner", "cc", 1),
                secret("mode", "dd", 0, 0400), secret("removed", "ee")});
  const auto after =
      manifest({secret("same", "aa"), secret("content", "b2"), secret("owner", "cc", 2),
                secret("mode", "dd", 0, 0440), secret("added", "ff")});
  CHECK(changed_secrets(before, after) ==
        std::vector<std::string>{"added", "content", "mode", "owner", "removed"});
}

TEST_CASE("changed_secrets of identical generations is empty", "[state]") {
  const auto one = manifest({secret("a", "11"), secret("b/c", "22")});
  CHECK(changed_secrets(one, one).empty());
  CHECK(changed_secrets(manifest({}), manifest({})).empty());
}

namespace {

using secretfs::manifest::Template;

Template template_of(const std::string& name, const std::string& text,
                     std::vector<std::string> references, uid_t uid = 0) {
  Template result;
  result.name = name;
  result.text = text;
  result.references = std::move(references);
  result.uid = uid;
  result.gid = uid;
  result.mode = 0400;
  return result;
}

Manifest with_templates(std::vector<Secret> secrets, std::vector<Template> templates) {
  Manifest result = manifest(std::move(secrets));
  result.templates = std::move(templates);
  return result;
}

}  // namespace

TEST_CASE("a template changes with its text, its owner or a secret it inserts", "[state]") {
  const auto before = with_templates(
      {secret("db", "aa"), secret("api", "bb", 1)},
      {template_of("same", "{{ api }}", {"api"}), template_of("text", "A={{ api }}", {"api"}),
       template_of("owner", "{{ api }}", {"api"}, 1), template_of("db-user", "{{ db }}", {"db"}),
       template_of("removed", "x", {})});
  // `api` changes owner only: what it renders to does not change, so its users stay.
  const auto after = with_templates(
      {secret("db", "a2"), secret("api", "bb", 2)},
      {template_of("same", "{{ api }}", {"api"}), template_of("text", "B={{ api }}", {"api"}),
       template_of("owner", "{{ api }}", {"api"}, 2), template_of("db-user", "{{ db }}", {"db"}),
       template_of("added", "y", {})});
  CHECK(changed_secrets(before, after) ==
        std::vector<std::string>{"added", "api", "db", "db-user", "owner", "removed", "text"});
  CHECK(changed_secrets(after, after).empty());
}

TEST_CASE("a secret that becomes a template of the same name is named once", "[state]") {
  const auto as_secret = with_templates({secret("sw", "aa"), secret("db", "bb")}, {});
  const auto as_template =
      with_templates({secret("db", "bb")}, {template_of("sw", "{{ db }}", {"db"})});
  CHECK(changed_secrets(as_secret, as_template) == std::vector<std::string>{"sw"});
  CHECK(changed_secrets(as_template, as_secret) == std::vector<std::string>{"sw"});
}
