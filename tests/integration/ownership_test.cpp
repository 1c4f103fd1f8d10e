// Every reader is checked against the owner, group and mode the manifest gives.
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include <cerrno>

#include "scenario.hpp"

using namespace secretfs::test;

namespace {

const char* kSecrets = R"(
[secrets."private"]
file = "private.age"
owner = 4001
group = 4100
mode = "0400"

[secrets."team/shared"]
file = "shared.age"
owner = "4001"
group = "4100"
mode = "0440"

[secrets."root-only"]
file = "root.age"
)";

struct stat stat_of(const std::filesystem::path& path) {
  struct stat status {};
  REQUIRE(::stat(path.c_str(), &status) == 0);
  return status;
}

}  // namespace

TEST_CASE("owner, group member and stranger get exactly what the mode allows", "[ownership]") {
  Scenario scenario;
  scenario.age_file("private.age", "owner only\n");
  scenario.age_file("shared.age", "owner and group\n");
  scenario.age_file("root.age", "root\n");
  Mount mount(scenario.manifest(kSecrets), scenario.mount_point());

  SECTION("the owner reads at 0400 and 0440") {
    const auto private_read = read_as(mount / "private", kOwnerReader);
    CHECK(private_read.error == 0);
    CHECK(private_read.content == "owner only\n");
    const auto shared_read = read_as(mount / "team/shared", kOwnerReader);
    CHECK(shared_read.error == 0);
    CHECK(shared_read.content == "owner and group\n");
  }

  SECTION("a supplementary group member reads at 0440 and is refused at 0400") {
    const auto shared_read = read_as(mount / "team/shared", kMemberReader);
    CHECK(shared_read.error == 0);
    CHECK(shared_read.content == "owner and group\n");
    CHECK(read_as(mount / "private", kMemberReader).error == EACCES);
  }

  SECTION("a member with many supplementary groups is found among the last of them") {
    Reader member{kGroupMember, kGroupMember, {}};
    // The kernel keeps groups sorted: these 40 come before the shared one.
    for (gid_t group = 3000; group < 3040; ++group) {
      member.groups.push_back(group);
    }
    member.groups.push_back(kSharedGroup);
    const auto shared_read = read_as(mount / "team/shared", member);
    CHECK(shared_read.error == 0);
    CHECK(shared_read.content == "owner and group\n");
  }

  SECTION("any other uid gets EACCES") {
    CHECK(read_as(mount / "private", kStrangerReader).error == EACCES);
    CHECK(read_as(mount / "team/shared", kStrangerReader).error == EACCES);
    CHECK(read_as(mount / "root-only", kStrangerReader).error == EACCES);
    CHECK(read_as(mount / "root-only", kOwnerReader).error == EACCES);
  }

  SECTION("root reads a secret with the default owner and mode") {
    const auto root_read = read_as(mount / "root-only", Reader{0, 0, {}});
    CHECK(root_read.error == 0);
    CHECK(root_read.content == "root\n");
  }

  SECTION("stat shows the manifest's owner, group, mode and the exact plaintext size") {
    const auto private_stat = stat_of(mount / "private");
    CHECK(private_stat.st_uid == kOwner);
    CHECK(private_stat.st_gid == kSharedGroup);
    CHECK(private_stat.st_mode == (S_IFREG | 0400));
    CHECK(private_stat.st_size == 11);
    CHECK(private_stat.st_nlink == 1);

    const auto shared_stat = stat_of(mount / "team/shared");
    CHECK(shared_stat.st_mode == (S_IFREG | 0440));
    CHECK(shared_stat.st_size == 16);

    const auto root_stat = stat_of(mount / "root-only");
    CHECK(root_stat.st_uid == 0);
    CHECK(root_stat.st_gid == 0);
    CHECK(root_stat.st_mode == (S_IFREG | 0400));
  }

  SECTION("directories are root's, mode 0751: traversable, listable by root only") {
    for (const auto& directory : {mount.point(), mount / "team"}) {
      const auto status = stat_of(directory);
      CHECK(status.st_mode == (S_IFDIR | 0751));
      CHECK(status.st_uid == 0);
      CHECK(status.st_gid == 0);
    }
    CHECK(stat_of(mount.point()).st_nlink == 3);
    CHECK(read_as(mount / "team", kStrangerReader).error == EACCES);
  }

  SECTION("root lists the tree in name order") {
    CHECK(output_of("ls -1 '" + mount.point().string() + "'") == "private\nroot-only\nteam\n");
    CHECK(output_of("ls -1 '" + (mount / "team").string() + "'") == "shared\n");
  }
}
