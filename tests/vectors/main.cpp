// The age vectors are not part of the repository: without them this program reports itself
// skipped, by name, instead of passing vacuously.
#include <filesystem>

#include "../unit/skip.hpp"
#include "vectors.hpp"

namespace secretfs::test {

std::string skip_reason() {
  const auto folder = vectors_folder();
  if (std::filesystem::is_directory(folder)) {
    return {};
  }
  return "age-vectors: no test vectors at " + folder.string() + " (set SECRETFS_TESTDATA)";
}

}  // namespace secretfs::test
