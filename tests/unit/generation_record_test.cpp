#include "state/generation_record.hpp"

#include <catch2/catch.hpp>
#include <string>

using secretfs::state::FileStamp;
using secretfs::state::GenerationRecord;
using secretfs::state::parse_record;
using secretfs::state::StateError;
using secretfs::state::to_json;

namespace {

const std::string kHashA(64, 'a');
const std::string kHashB(64, 'b');

GenerationRecord sample() {
  GenerationRecord record;
  record.number = 7;
  record.created = 1764806400;
  record.manifest_sha256 = kHashA;
  record.manifest = "/etc/secretfs/manifest.toml";
  record.secrets.push_back({"db/password", "/srv/secrets/db.age", kHashB,
                            FileStamp{2049, 131, 250, 1764806000123456789, -5}});
  record.secrets.push_back(
      {"quote\"and\\slash", "/srv/secrets/odd \"name\".age", kHashA, std::nullopt});
  return record;
}

}  // namespace

TEST_CASE("generation.json is written a secret a line and reads back the same", "[state]") {
  const GenerationRecord record = sample();
  const std::string text = to_json(record);
  const std::string expected =
      "{\n"
      "  \"number\": 7,\n"
      "  \"created\": 1764806400,\n"
      "  \"manifest_sha256\": \"" +
      kHashA +
      "\",\n"
      "  \"manifest\": \"/etc/secretfs/manifest.toml\",\n"
      "  \"secrets\": [\n"
      "    {\"name\": \"db/password\", \"file\": \"/srv/secrets/db.age\", \"blob\": \"" +
      kHashB +
      "\", \"stamp\": {\"device\": 2049, \"inode\": 131, \"size\": 250, "
      "\"modified_ns\": 1764806000123456789, \"changed_ns\": -5}},\n"
      "    {\"name\": \"quote\\\"and\\\\slash\", \"file\": \"/srv/secrets/odd \\\"name\\\".age\", "
      "\"blob\": \"" +
      kHashA +
      "\"}\n"
      "  ]\n"
      "}\n";
  CHECK(text == expected);

  const GenerationRecord back = parse_record(text, "generation.json");
  CHECK(back.number == record.number);
  CHECK(back.created == record.created);
  CHECK(back.manifest_sha256 == record.manifest_sha256);
  CHECK(back.manifest == record.manifest);
  REQUIRE(back.secrets.size() == 2);
  for (std::size_t i = 0; i < back.secrets.size(); ++i) {
    CHECK(back.secrets[i].name == record.secrets[i].name);
    CHECK(back.secrets[i].file == record.secrets[i].file);
    CHECK(back.secrets[i].blob == record.secrets[i].blob);
    CHECK(back.secrets[i].stamp == record.secrets[i].stamp);
  }
}

TEST_CASE("a generation without secrets is valid JSON too", "[state]") {
  GenerationRecord record = sample();
  record.secrets.clear();
  const std::string text = to_json(record);
  CHECK(text.ends_with("\"secrets\": []\n}\n"));
  CHECK(parse_record(text, "generation.json").secrets.empty());
}

TEST_CASE("a stamp of the wrong shape makes the record unreadable", "[state]") {
  std::string text = to_json(sample());
  const std::string inode = "\"inode\": 131";
  text.replace(text.find(inode), inode.size(), "\"inode\": \"131\"");
  CHECK_THROWS_WITH(parse_record(text, "generation.json"),
                    "generation.json: `inode` has the wrong type");
}

TEST_CASE("a path that is not UTF-8 cannot be recorded, and says so", "[state]") {
  GenerationRecord record = sample();
  record.secrets[0].file = "/srv/\xff.age";
  CHECK_THROWS_AS(to_json(record), StateError);
  CHECK_THROWS_WITH(to_json(record),
                    "generation 7: a path or secret name is not valid UTF-8, "
                    "so it cannot be recorded");
}

TEST_CASE("template files are recorded after the secrets, and only when there are some",
          "[state]") {
  GenerationRecord record = sample();
  record.secrets.pop_back();
  record.templates.push_back({"app/env", "/srv/app.env.tmpl", kHashA, std::nullopt});
  const std::string text = to_json(record);
  CHECK(text.ends_with("\"changed_ns\": -5}}\n  ],\n  \"templates\": [\n"
                       "    {\"name\": \"app/env\", \"file\": \"/srv/app.env.tmpl\", \"blob\": \"" +
                       kHashA + "\"}\n  ]\n}\n"));
  const GenerationRecord back = parse_record(text, "generation.json");
  REQUIRE(back.templates.size() == 1);
  CHECK(back.templates[0].name == "app/env");
  CHECK(back.templates[0].file == "/srv/app.env.tmpl");
  CHECK(back.templates[0].blob == kHashA);
  CHECK_FALSE(secretfs::state::same_content(back, sample()));

  // A record written before templates existed has none.
  CHECK(parse_record(to_json(sample()), "generation.json").templates.empty());
  CHECK(to_json(sample()).find("templates") == std::string::npos);
}

TEST_CASE("a template entry with a blob that is not a SHA-256 makes the record unreadable",
          "[state]") {
  GenerationRecord record = sample();
  record.templates.push_back({"t", "/srv/t.tmpl", "../../etc/passwd", std::nullopt});
  CHECK_THROWS_WITH(parse_record(to_json(record), "generation.json"),
                    "generation.json: template `t`: blob `../../etc/passwd` is not a SHA-256 name");
}
