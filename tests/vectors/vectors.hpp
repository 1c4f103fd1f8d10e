#pragma once

#include <cstdlib>
#include <filesystem>

namespace secretfs::test {

// $SECRETFS_TESTDATA/age, else the build's default (../shared/testdata/age beside the source).
inline std::filesystem::path vectors_folder() {
  const char* chosen = std::getenv("SECRETFS_TESTDATA");
  if (chosen == nullptr || *chosen == '\0') {
    chosen = std::getenv("SECRETFS_TESTDATA_DEFAULT");
  }
  return std::filesystem::path(chosen == nullptr ? "" : chosen) / "age";
}

}  // namespace secretfs::test
