#include "state/permissions.hpp"

#include <sys/types.h>

#include <array>
#include <cstdio>

#include "state/layout.hpp"

namespace secretfs::state {

namespace {

constexpr mode_t kWritableByOthers = S_IWGRP | S_IWOTH;
constexpr mode_t kPermissionBits = 07777;
constexpr uid_t kRootUid = 0;
constexpr std::size_t kModeTextSize = 8;

std::string mode_text(mode_t mode) {
  std::array<char, kModeTextSize> text{};
  std::snprintf(text.data(), text.size(), "%04o", static_cast<unsigned>(mode & kPermissionBits));
  return text.data();
}

}  // namespace

Exposure exposure_of(const struct stat& status, Ownership ownership) {
  if (ownership == Ownership::root && status.st_uid != kRootUid) {
    return Exposure::foreign_owner;
  }
  if ((status.st_mode & kWritableByOthers) != 0) {
    return Exposure::writable;
  }
  return Exposure::none;
}

std::string reason(Exposure exposure) {
  switch (exposure) {
    case Exposure::foreign_owner:
      return "not owned by root";
    case Exposure::writable:
      return "group or others may write to it";
    case Exposure::none:
      break;
  }
  return {};
}

std::string fix(Exposure exposure, const std::filesystem::path& path, const struct stat& status) {
  if (exposure == Exposure::foreign_owner) {
    return "chown root " + path.string();
  }
  const std::string wanted = mode_text(S_ISDIR(status.st_mode) ? kFolderMode : kFileMode);
  return "want mode " + wanted + " (chmod " + wanted + " " + path.string() + ")";
}

std::string owner_and_mode(const std::filesystem::path& path, const struct stat& status) {
  return path.string() + " (owner uid " + std::to_string(status.st_uid) + ", mode " +
         mode_text(status.st_mode) + ")";
}

void refuse_changeable(const std::string& label, const std::filesystem::path& path,
                       const struct stat& status, Ownership ownership) {
  const Exposure exposure = exposure_of(status, ownership);
  if (exposure == Exposure::none) {
    return;
  }
  throw StateError((label.empty() ? "" : label + " ") + owner_and_mode(path, status) + ": " +
                   reason(exposure) + "; " + fix(exposure, path, status));
}

void refuse_changeable_generation(Number number, const std::filesystem::path& folder,
                                  const std::filesystem::path& path, const struct stat& status,
                                  Ownership ownership) {
  const Exposure exposure = exposure_of(status, ownership);
  if (exposure == Exposure::none) {
    return;
  }
  const std::string change = exposure == Exposure::foreign_owner ? "chown root " : "chmod go-w ";
  throw StateError("generation " + std::to_string(number) + ": " + owner_and_mode(path, status) +
                   ": " + reason(exposure) + ", so it may not be what was activated; remove " +
                   "the generation (rm -r " + folder.string() + "), or check it and " + change +
                   path.string());
}

}  // namespace secretfs::state
