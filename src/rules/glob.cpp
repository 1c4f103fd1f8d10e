// Glob matching for the `files` of a rule. Matching works on path segments so that `*` never
// crosses a '/': "web1/*.age" must not pick up "web1/old/key.age" by accident.
#include <string>
#include <vector>

#include "rules/rules.hpp"

namespace secretfs::rules {

namespace {

constexpr std::string_view kAnySegments = "**";
constexpr std::string_view kCurrentFolder = ".";

std::vector<std::string_view> segments_of(std::string_view path) {
  std::vector<std::string_view> segments;
  std::size_t start = 0;
  for (;;) {
    const auto slash = path.find('/', start);
    const auto segment =
        path.substr(start, slash == std::string_view::npos ? slash : slash - start);
    if (!segment.empty() && segment != kCurrentFolder) {
      segments.push_back(segment);
    }
    if (slash == std::string_view::npos) {
      return segments;
    }
    start = slash + 1;
  }
}

// Matches one character against the set starting after '[' at `glob[at]`; on success sets `end`
// to the position after the closing ']'. A '[' without a closing ']' is taken literally.
bool set_matches(std::string_view glob, std::size_t at, char c, std::size_t& end, bool& valid) {
  std::size_t i = at;
  const bool negated = i < glob.size() && glob[i] == '!';
  if (negated) {
    ++i;
  }
  bool found = false;
  const std::size_t first = i;
  while (i < glob.size() && (glob[i] != ']' || i == first)) {
    if (i + 2 < glob.size() && glob[i + 1] == '-' && glob[i + 2] != ']') {
      found = found || (glob[i] <= c && c <= glob[i + 2]);
      i += 3;
    } else {
      found = found || glob[i] == c;
      ++i;
    }
  }
  valid = i < glob.size();
  end = i + 1;
  return found != negated;
}

bool segment_matches(std::string_view glob, std::string_view name) {
  if (glob.empty()) {
    return name.empty();
  }
  if (glob[0] == '*') {
    for (std::size_t skip = 0; skip <= name.size(); ++skip) {
      if (segment_matches(glob.substr(1), name.substr(skip))) {
        return true;
      }
    }
    return false;
  }
  if (name.empty()) {
    return false;
  }
  if (glob[0] == '?') {
    return segment_matches(glob.substr(1), name.substr(1));
  }
  if (glob[0] == '[') {
    std::size_t end = 0;
    bool valid = false;
    const bool in_set = set_matches(glob, 1, name[0], end, valid);
    if (valid) {
      return in_set && segment_matches(glob.substr(end), name.substr(1));
    }
  }
  return glob[0] == name[0] && segment_matches(glob.substr(1), name.substr(1));
}

bool segments_match(const std::vector<std::string_view>& glob, std::size_t g,
                    const std::vector<std::string_view>& path, std::size_t p) {
  if (g == glob.size()) {
    return p == path.size();
  }
  if (glob[g] == kAnySegments) {
    for (std::size_t skip = p; skip <= path.size(); ++skip) {
      if (segments_match(glob, g + 1, path, skip)) {
        return true;
      }
    }
    return false;
  }
  return p < path.size() && segment_matches(glob[g], path[p]) &&
         segments_match(glob, g + 1, path, p + 1);
}

}  // namespace

bool glob_matches(std::string_view glob, std::string_view relative) {
  return segments_match(segments_of(glob), 0, segments_of(relative), 0);
}

}  // namespace secretfs::rules
