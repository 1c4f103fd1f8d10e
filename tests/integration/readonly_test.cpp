// Every call that would change the file system fails with EROFS, even for root.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cerrno>
#include <cstdio>

#include "scenario.hpp"

using namespace secretfs::test;

namespace {

// The errno of a call that must fail, or 0 when it unexpectedly succeeded.
int failure_of(int result) {
  return result == -1 ? errno : 0;
}

}  // namespace

TEST_CASE("write-like calls give EROFS", "[readonly]") {
  Scenario scenario;
  scenario.age_file("value.age", "value\n");
  Mount mount(scenario.manifest("[secrets.\"dir/value\"]\nfile = \"value.age\"\n"),
              scenario.mount_point());
  const std::string file = (mount / "dir/value").string();
  const std::string directory = (mount / "dir").string();
  const std::string fresh = (mount / "dir/new").string();

  CHECK(failure_of(::open(file.c_str(), O_WRONLY)) == EROFS);
  CHECK(failure_of(::open(file.c_str(), O_RDWR)) == EROFS);
  CHECK(failure_of(::open(fresh.c_str(), O_WRONLY | O_CREAT, 0600)) == EROFS);
  CHECK(failure_of(::mkdir((mount / "made").c_str(), 0700)) == EROFS);
  CHECK(failure_of(::unlink(file.c_str())) == EROFS);
  CHECK(failure_of(::rmdir(directory.c_str())) == EROFS);
  CHECK(failure_of(std::rename(file.c_str(), fresh.c_str())) == EROFS);
  CHECK(failure_of(::chmod(file.c_str(), 0444)) == EROFS);
  CHECK(failure_of(::chown(file.c_str(), 1, 1)) == EROFS);
  CHECK(failure_of(::truncate(file.c_str(), 0)) == EROFS);
  CHECK(failure_of(::setxattr(file.c_str(), "user.note", "x", 1, 0)) == EROFS);
  CHECK(failure_of(::symlink("value", fresh.c_str())) == EROFS);
  CHECK(failure_of(::link(file.c_str(), fresh.c_str())) == EROFS);

  // Nothing changed: the secret still reads.
  CHECK(read_as(mount / "dir/value", Reader{0, 0, {}}).content == "value\n");
}
