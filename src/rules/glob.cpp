// Glob matching for the `files` of a rule. Matching works on path segments so that `*` never
// crosses a '/': "web1/*.age" must not pick up "web1/old/key.age" by accident.
#include <algorithm>
#include <string>
#include <vector>

#include "rules/rules.hpp"

namespace secretfs::rules {

namespace {

constexpr std::string_view kAnySegments = "**";
constexpr std::string_view kCurrentFolder = ".";
constexpr std::string_view kParentFolder = "..";
constexpr std::string_view kWildcards = "*?[";

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

bool is_literal(std::string_view text) {
  return text.find_first_of(kWildcards) == std::string_view::npos;
}

// The position of the first '[' in `segment` that no ']' closes, or npos. As in matching, a
// ']' right after "[" or "[!" belongs to the set.
std::size_t open_bracket(std::string_view segment) {
  for (std::size_t at = segment.find('['); at != std::string_view::npos;
       at = segment.find('[', at + 1)) {
    std::size_t first = at + 1;
    if (first < segment.size() && segment[first] == '!') {
      ++first;
    }
    const std::size_t close = segment.find(']', first + 1);
    if (first >= segment.size() || close == std::string_view::npos) {
      return at;
    }
    at = close;
  }
  return std::string_view::npos;
}

// Every name `later` matches is also matched by `earlier` (one segment each).
bool segment_covers(std::string_view earlier, std::string_view later) {
  if (earlier == "*" || earlier == later) {
    return true;
  }
  if (is_literal(later)) {
    return segment_matches(earlier, later);
  }
  const std::string_view suffix = earlier.substr(1);
  return earlier.front() == '*' && is_literal(suffix) && later.find('[') == std::string::npos &&
         later.ends_with(suffix) && is_literal(later.substr(later.size() - suffix.size()));
}

}  // namespace

bool glob_matches(std::string_view glob, std::string_view relative) {
  return segments_match(segments_of(glob), 0, segments_of(relative), 0);
}

std::optional<std::string> glob_problem(std::string_view glob) {
  if (segments_of(glob).empty()) {
    return "names no file, only the rules file's folder itself";
  }
  if (glob.starts_with('/')) {
    return "is an absolute path; globs are relative to the rules file's folder";
  }
  if (glob.ends_with('/')) {
    return "ends with '/'; globs match files, not folders";
  }
  const auto segments = segments_of(glob);
  if (std::find(segments.begin(), segments.end(), kParentFolder) != segments.end()) {
    return "has a `..` segment; no file outside the rules file's folder is ever matched";
  }
  for (const auto segment : segments) {
    if (open_bracket(segment) != std::string_view::npos) {
      return "has a `[` that no `]` closes in `" + std::string(segment) + "`";
    }
  }
  return std::nullopt;
}

bool glob_covers(std::string_view earlier, std::string_view later) {
  if (is_literal(later)) {
    return glob_matches(earlier, later);
  }
  const auto wide = segments_of(earlier);
  const auto narrow = segments_of(later);
  if (wide == narrow) {
    return true;
  }
  const auto any = std::find(wide.begin(), wide.end(), kAnySegments);
  const auto prefix = static_cast<std::size_t>(any - wide.begin());
  const std::size_t after = wide.size() - prefix - 1;
  if (any == wide.end() || after > 1 || narrow.size() <= prefix ||
      !std::all_of(wide.begin(), any, is_literal) ||
      !std::equal(wide.begin(), any, narrow.begin())) {
    return false;
  }
  return after == 0 || (narrow.back() != kAnySegments && wide.back() != kAnySegments &&
                        segment_covers(wide.back(), narrow.back()));
}

}  // namespace secretfs::rules
