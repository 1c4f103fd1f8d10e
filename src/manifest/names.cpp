// What a secret's name may be. Names become paths under the mount point, so anything that could
// leave the mount, alias another name, or fool a terminal is refused here.
#include "manifest/names.hpp"

#include <algorithm>
#include <cstdio>
#include <set>

#include "secretfs/manifest.hpp"

namespace secretfs::manifest {

namespace {

constexpr char kSeparator = '/';
constexpr unsigned char kFirstPrintable = 0x20;
constexpr unsigned char kDelete = 0x7f;
// Longer segments cannot be a file name on Linux (NAME_MAX), so lookups of them would fail.
constexpr std::size_t kMaxSegmentLength = 255;

bool is_control(char c) {
  const auto byte = static_cast<unsigned char>(c);
  return byte < kFirstPrintable || byte == kDelete;
}

std::string hex_byte(char c) {
  char text[sizeof "\\x00"];
  std::snprintf(text, sizeof text, "\\x%02x", static_cast<unsigned char>(c));
  return text;
}

std::optional<std::string> check_characters(std::string_view name) {
  const auto control = std::find_if(name.begin(), name.end(), is_control);
  if (control == name.end()) {
    return std::nullopt;
  }
  const auto offset = control - name.begin();
  return "name has control character " + hex_byte(*control) + " at byte " + std::to_string(offset);
}

std::optional<std::string> check_segment(std::string_view segment) {
  if (segment.empty()) {
    return "name has an empty segment (`//`)";
  }
  if (segment == "." || segment == "..") {
    return "name has a `" + std::string(segment) + "` segment";
  }
  if (segment.size() > kMaxSegmentLength) {
    return "name has a segment of " + std::to_string(segment.size()) + " bytes, longer than " +
           std::to_string(kMaxSegmentLength);
  }
  return std::nullopt;
}

std::optional<std::string> check_segments(std::string_view name) {
  std::size_t start = 0;
  while (true) {
    const std::size_t end = name.find(kSeparator, start);
    const auto segment =
        name.substr(start, end == std::string_view::npos ? name.npos : end - start);
    if (auto reason = check_segment(segment)) {
      return reason;
    }
    if (end == std::string_view::npos) {
      return std::nullopt;
    }
    start = end + 1;
  }
}

}  // namespace

std::optional<std::string> check_name(std::string_view name) {
  if (name.empty()) {
    return "name is empty";
  }
  // Control characters first: the other messages quote parts of the name.
  if (auto reason = check_characters(name)) {
    return reason;
  }
  if (name.front() == kSeparator) {
    return "name is absolute (starts with `/`)";
  }
  if (name.back() == kSeparator) {
    return "name ends with `/`";
  }
  return check_segments(name);
}

std::vector<NameConflict> find_conflicts(const std::vector<std::string>& names) {
  const std::set<std::string_view> all(names.begin(), names.end());
  std::vector<NameConflict> conflicts;
  for (const std::string_view name : all) {
    // Every '/' ends a folder on the way to `name`; a secret with that folder's name clashes.
    for (std::size_t slash = name.find(kSeparator); slash != std::string_view::npos;
         slash = name.find(kSeparator, slash + 1)) {
      const auto folder = name.substr(0, slash);
      if (all.contains(folder)) {
        conflicts.push_back({std::string(folder), std::string(name)});
      }
    }
  }
  return conflicts;
}

std::string printable_name(std::string_view name) {
  std::string printable;
  for (const char c : name) {
    printable += is_control(c) ? hex_byte(c) : std::string(1, c);
  }
  return printable;
}

}  // namespace secretfs::manifest
