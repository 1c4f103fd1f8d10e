// Paths named in a manifest are resolved the same way everywhere.
#pragma once

#include <filesystem>
#include <string_view>

namespace secretfs::manifest {

// `text` made absolute against `base_dir` (itself absolute), with `.`, `..` and doubled or
// trailing slashes removed, so that equal files compare equal.
inline std::filesystem::path resolve_path(const std::filesystem::path& base_dir,
                                          std::string_view text) {
  auto path = (base_dir / text).lexically_normal();
  if (!path.has_filename() && path.has_relative_path()) {
    path = path.parent_path();
  }
  return path;
}

}  // namespace secretfs::manifest
