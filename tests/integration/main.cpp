// Integration tests mount for real: they need root and /dev/fuse, and report themselves
// skipped, by name, where either is missing.
#include <unistd.h>

#include "../unit/skip.hpp"

namespace secretfs::test {

std::string skip_reason() {
  if (::geteuid() != 0 || ::access("/dev/fuse", R_OK | W_OK) != 0) {
    return "integration: needs root and /dev/fuse";
  }
  return {};
}

}  // namespace secretfs::test
