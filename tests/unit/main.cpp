// The one Catch2 runner of every test program: the framework's implementation is compiled
// here alone, since it takes longer to build than most of the tests. A program that cannot run
// where it is (no test data, no /dev/fuse) says why through skip_reason and reports itself
// skipped, by name, with exit status 77 instead of passing vacuously.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>

#include "skip.hpp"

namespace secretfs::test {

// Programs that can always run keep this one.
[[gnu::weak]] std::string skip_reason() {
  return {};
}

}  // namespace secretfs::test

int main(int argc, char* argv[]) {
  if (const std::string reason = secretfs::test::skip_reason(); !reason.empty()) {
    std::printf("SKIP %s\n", reason.c_str());
    return secretfs::test::kSkipped;
  }
  return Catch::Session().run(argc, argv);
}
