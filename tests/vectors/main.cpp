// The age vectors are not part of the repository: without them this test reports itself
// skipped, by name, instead of passing vacuously.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>

#include "vectors.hpp"

int main(int argc, char* argv[]) {
  const auto folder = secretfs::test::vectors_folder();
  if (!std::filesystem::is_directory(folder)) {
    std::printf("SKIP age-vectors: no test vectors at %s (set SECRETFS_TESTDATA)\n",
                folder.c_str());
    return 77;
  }
  return Catch::Session().run(argc, argv);
}
