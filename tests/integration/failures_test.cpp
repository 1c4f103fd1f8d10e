// A secret that cannot be decrypted gives EIO and a log line naming it; every other secret
// still reads, and the daemon keeps serving.
#include <catch2/catch.hpp>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <thread>

#include "scenario.hpp"

using namespace secretfs::test;

namespace {

void flip_byte(const std::filesystem::path& path, std::size_t offset) {
  std::string bytes = read_file(path);
  REQUIRE(offset < bytes.size());
  bytes[offset] = static_cast<char>(bytes[offset] ^ 0x01);
  write_file(path, bytes, 0644);
}

const char* kSecrets = R"(
[secrets."good"]
file = "good.age"
[secrets."broken/header"]
file = "header.age"
[secrets."broken/payload"]
file = "payload.age"
[secrets."broken/truncated"]
file = "truncated.age"
[secrets."broken/missing"]
file = "missing.age"
[secrets."broken/other-key"]
file = "other.age"
)";

}  // namespace

TEST_CASE("broken secrets give EIO and leave the others readable", "[failures]") {
  Scenario scenario;
  scenario.age_file("good.age", "still fine\n");

  // The recipient's share sits in the first stanza line after "-> X25519 ".
  const auto header = scenario.age_file("header.age", "header\n");
  flip_byte(header, std::string("age-encryption.org/v1\n-> X25519 ").size() + 3);

  const auto payload = scenario.age_file("payload.age", pattern(70000));
  flip_byte(payload, std::filesystem::file_size(payload) - 1);

  const auto truncated = scenario.age_file("truncated.age", pattern(70000));
  std::filesystem::resize_file(truncated, std::filesystem::file_size(truncated) - 100);

  scenario.foreign_age_file("other.age", "other\n");

  Mount mount(scenario.manifest(kSecrets), scenario.mount_point());
  const Reader root{0, 0, {}};

  for (const char* name : {"broken/header", "broken/payload", "broken/truncated", "broken/missing",
                           "broken/other-key"}) {
    INFO("secret " << name);
    const auto result = read_as(mount / name, root);
    CHECK(result.error == EIO);
    CHECK(result.content.empty());
    CHECK(mount.log().find(std::string("secret `") + name + "`") != std::string::npos);

    const auto good = read_as(mount / "good", root);
    CHECK(good.error == 0);
    CHECK(good.content == "still fine\n");
  }

  SECTION("the log says why, and never the plaintext") {
    const std::string log = mount.log();
    CHECK(log.find("no match") != std::string::npos);
    CHECK(log.find("payload failure") != std::string::npos);
    CHECK(log.find("missing.age") != std::string::npos);
    CHECK(log.find("still fine") == std::string::npos);
  }
}

TEST_CASE("a file served straight from a manifest and replaced reads its new content",
          "[failures]") {
  Scenario scenario;
  scenario.age_file("a.age", "first\n");
  // A missing file makes the manifest fail validation, so it is served as it is, from the
  // manifest's own files, not from a stored generation.
  Mount mount(scenario.manifest("[secrets.\"a\"]\nfile = \"a.age\"\n"
                                "[secrets.\"gone\"]\nfile = \"gone.age\"\n"),
              scenario.mount_point());
  const Reader root{0, 0, {}};
  CHECK(read_as(mount / "a", root).content == "first\n");
  CHECK(read_as(mount / "a", root).content == "first\n");

  scenario.age_file("a.age", "second\n");
  CHECK(read_as(mount / "a", root).content == "second\n");
}

TEST_CASE("a daemon serves before its files are checked, and logs what the check finds",
          "[failures]") {
  Scenario scenario;
  scenario.age_file("good.age", "fine\n");
  const auto header = scenario.age_file("header.age", "header\n");
  flip_byte(header, std::string("age-encryption.org/v1\n-> X25519 ").size() + 3);
  Mount mount(scenario.manifest("[secrets.\"good\"]\nfile = \"good.age\"\n"
                                "[secrets.\"broken\"]\nfile = \"header.age\"\n"),
              scenario.mount_point());

  // The check runs beside the request loop; it ends within moments for two secrets.
  std::string log;
  for (int tries = 0; tries < 500 && log.find("checked the files of") == std::string::npos;
       ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    log = mount.log();
  }
  CHECK(log.find("checked the files of 2 secrets in ") != std::string::npos);
  CHECK(log.find(" s: 1 problem\n") != std::string::npos);
  CHECK(log.find("secret `broken`: file " + header.string()) != std::string::npos);
  CHECK(log.find("(opening it fails with EIO)") != std::string::npos);

  const Reader root{0, 0, {}};
  CHECK(read_as(mount / "good", root).content == "fine\n");
  CHECK(read_as(mount / "broken", root).error == EIO);
}
