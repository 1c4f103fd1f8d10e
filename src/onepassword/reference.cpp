// Secret references, checked as strictly as 1Password documents them: a name with a character
// outside the documented set must be written as its ID, so nothing here has to guess how `op`
// would read it.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <string>
#include <vector>

#include "secretfs/onepassword.hpp"

namespace secretfs::onepassword {

namespace {

constexpr std::string_view kScheme = "op://";
constexpr std::string_view kForm = "op://<vault>/<item>[/<section>]/<field>";
constexpr std::size_t kShortForm = 3;  // vault, item, field
constexpr std::size_t kLongForm = 4;   // vault, item, section, field

bool allowed(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == ' ';
}

// How a refused character appears in a message: itself when printable, else its code.
std::string shown(char c) {
  const auto code = static_cast<unsigned char>(c);
  if (code > ' ' && code < 0x7f) {
    return std::string("'") + c + "'";
  }
  char text[8];
  std::snprintf(text, sizeof text, "0x%02x", code);
  return text;
}

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> segments;
  while (true) {
    const auto slash = path.find('/');
    segments.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) {
      return segments;
    }
    path.remove_prefix(slash + 1);
  }
}

// Why `segment`, the reference's `role`, cannot be used, or nothing when it can.
std::string segment_problem(std::string_view segment, std::string_view role) {
  if (segment.empty()) {
    return "The " + std::string(role) + " is empty.";
  }
  for (const char c : segment) {
    if (!allowed(c)) {
      return "The " + std::string(role) + " contains " + shown(c) +
             ", which a secret reference cannot hold; write the " + std::string(role) +
             "'s ID instead.";
    }
  }
  return {};
}

}  // namespace

std::variant<Reference, std::string> parse_reference(std::string_view text) {
  if (!text.starts_with(kScheme)) {
    return "A secret reference starts with op:// and has the form " + std::string(kForm) + ".";
  }
  Reference reference;
  reference.text = text;
  std::string_view path = text.substr(kScheme.size());
  if (const auto mark = path.find('?'); mark != std::string_view::npos) {
    reference.query = path.substr(mark + 1);
    path = path.substr(0, mark);
    if (reference.query.empty()) {
      return std::string("The query after '?' is empty.");
    }
    // 1Password's queries are words (attribute=otp, ssh-format=openssh): an escape or a space
    // would only hide from the checks here what `op` may decode.
    for (const char c : reference.query) {
      if (!(allowed(c) && c != ' ') && c != '=' && c != '&') {
        return "The query contains " + shown(c) +
               ", which a secret reference query cannot hold; write it as attribute=value.";
      }
    }
  }

  const std::vector<std::string_view> segments = split_path(path);
  if (segments.size() > kLongForm) {
    return "too many '/': secret references should match " + std::string(kForm) + ".";
  }
  if (segments.size() < kShortForm) {
    return "too few '/': secret references should match " + std::string(kForm) + ".";
  }
  const bool has_section = segments.size() == kLongForm;
  const std::vector<std::string_view> roles =
      has_section ? std::vector<std::string_view>{"vault", "item", "section", "field"}
                  : std::vector<std::string_view>{"vault", "item", "field"};
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (std::string problem = segment_problem(segments[i], roles[i]); !problem.empty()) {
      return problem;
    }
  }

  // The vault and item become arguments of `op item get`, where a leading '-' reads as an option.
  for (std::size_t i = 0; i < 2; ++i) {
    if (segments[i].starts_with('-')) {
      return "The " + std::string(roles[i]) + " starts with '-', which `op` would take for an " +
             "option; write the " + std::string(roles[i]) + "'s ID instead.";
    }
  }

  reference.vault = segments[0];
  reference.item = segments[1];
  reference.section = has_section ? segments[2] : std::string_view{};
  reference.field = segments.back();
  return reference;
}

// Any parameter of the query that asks for a one-time code, however it is spelt.
bool is_one_time_password(const Reference& reference) {
  const auto lower = [](std::string_view text) {
    std::string folded(text);
    std::transform(folded.begin(), folded.end(), folded.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return folded;
  };
  std::string_view query = reference.query;
  while (!query.empty()) {
    const auto end = query.find('&');
    const std::string parameter = lower(query.substr(0, end));
    if (parameter == "attribute=otp" || parameter == "attribute=totp") {
      return true;
    }
    query = end == std::string_view::npos ? std::string_view{} : query.substr(end + 1);
  }
  return false;
}

std::string_view to_string(Failure failure) {
  switch (failure) {
    case Failure::not_found:
      return "not found";
    case Failure::ambiguous:
      return "ambiguous";
    case Failure::auth:
      return "authentication failed";
    case Failure::rate_limited:
      return "rate limited";
    case Failure::timeout:
      return "timed out";
    case Failure::unusable:
      return "cannot run op";
    case Failure::too_large:
      return "too large";
    case Failure::failed:
      return "failed";
  }
  return "failed";
}

}  // namespace secretfs::onepassword
