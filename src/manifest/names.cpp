// What a secret's name may be. Names become paths under the mount point, so anything that could
// leave the mount, alias another name, or fool a terminal is refused here.
#include "manifest/names.hpp"

#include <algorithm>
#include <array>
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

// U+0080 to U+009F, the C1 controls, are written in UTF-8 as 0xc2 followed by 0x80 to 0x9f.
constexpr unsigned char kC1Lead = 0xc2;
constexpr unsigned char kC1First = 0x80;
constexpr unsigned char kC1Last = 0x9f;

std::optional<std::size_t> find_c1_control(std::string_view name) {
  for (std::size_t i = 0; i + 1 < name.size(); ++i) {
    const auto lead = static_cast<unsigned char>(name[i]);
    const auto next = static_cast<unsigned char>(name[i + 1]);
    if (lead == kC1Lead && next >= kC1First && next <= kC1Last) {
      return i;
    }
  }
  return std::nullopt;
}

// The bidirectional embeddings and overrides (U+202A to U+202E) and isolates (U+2066 to U+2069)
// reorder the text after them on screen, so that a name can show as another name. In UTF-8 they
// are 0xe2, then 0x80 followed by 0xaa to 0xae, or 0x81 followed by 0xa6 to 0xa9.
constexpr unsigned char kBidiLead = 0xe2;
constexpr std::size_t kBidiLength = 3;
struct BidiRange {
  unsigned char middle;
  unsigned char first;
  unsigned char last;
};
constexpr std::array<BidiRange, 2> kBidiRanges{{{0x80, 0xaa, 0xae}, {0x81, 0xa6, 0xa9}}};

bool is_bidi_control(std::string_view text) {
  if (text.size() < kBidiLength || static_cast<unsigned char>(text[0]) != kBidiLead) {
    return false;
  }
  const auto middle = static_cast<unsigned char>(text[1]);
  const auto last = static_cast<unsigned char>(text[2]);
  return std::any_of(kBidiRanges.begin(), kBidiRanges.end(), [&](const BidiRange& range) {
    return middle == range.middle && last >= range.first && last <= range.last;
  });
}

std::optional<std::size_t> find_bidi_control(std::string_view name) {
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (is_bidi_control(name.substr(i))) {
      return i;
    }
  }
  return std::nullopt;
}

// "U+202e" for the three bytes at the start of `text`, a bidirectional control.
std::string code_point_of_bidi(std::string_view text) {
  constexpr unsigned kLeadBits = 0x0f;
  constexpr unsigned kFollowBits = 0x3f;
  const unsigned code = (static_cast<unsigned char>(text[0]) & kLeadBits) << 12 |
                        (static_cast<unsigned char>(text[1]) & kFollowBits) << 6 |
                        (static_cast<unsigned char>(text[2]) & kFollowBits);
  char out[sizeof "U+0000"];
  std::snprintf(out, sizeof out, "U+%04x", code);
  return out;
}

std::optional<std::string> check_characters(std::string_view name) {
  const auto control = std::find_if(name.begin(), name.end(), is_control);
  if (control != name.end()) {
    const auto offset = control - name.begin();
    return "name has control character " + hex_byte(*control) + " at byte " +
           std::to_string(offset);
  }
  if (const auto offset = find_c1_control(name)) {
    return "name has control character U+00" + hex_byte(name[*offset + 1]).substr(2) + " at byte " +
           std::to_string(*offset);
  }
  if (const auto offset = find_bidi_control(name)) {
    return "name has bidirectional control character " + code_point_of_bidi(name.substr(*offset)) +
           " at byte " + std::to_string(*offset);
  }
  return std::nullopt;
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
  for (std::size_t i = 0; i < name.size(); ++i) {
    const bool c1 = find_c1_control(name.substr(i, 2)).has_value();
    if (c1) {
      printable += hex_byte(name[i]) + hex_byte(name[i + 1]);
      ++i;
    } else if (is_bidi_control(name.substr(i))) {
      for (std::size_t byte = 0; byte < kBidiLength; ++byte) {
        printable += hex_byte(name[i + byte]);
      }
      i += kBidiLength - 1;
    } else {
      printable += is_control(name[i]) ? hex_byte(name[i]) : std::string(1, name[i]);
    }
  }
  return printable;
}

std::string entry_problem(std::string_view source, int line, EntryKind kind, std::string_view name,
                          std::string_view reason) {
  std::string message(source);
  if (line > 0) {
    message += ":" + std::to_string(line);
  }
  message += kind == EntryKind::template_ ? ": template `" : ": secret `";
  return message + printable_name(name) + "`: " + std::string(reason);
}

}  // namespace secretfs::manifest
