// Integration tests mount for real: they need root and /dev/fuse, and report themselves
// skipped, by name, where either is missing.
#define CATCH_CONFIG_RUNNER
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstdio>

int main(int argc, char* argv[]) {
  if (::geteuid() != 0 || ::access("/dev/fuse", R_OK | W_OK) != 0) {
    std::printf("SKIP integration: needs root and /dev/fuse\n");
    return 77;
  }
  return Catch::Session().run(argc, argv);
}
