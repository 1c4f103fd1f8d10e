#include "fs/audit_record.hpp"

#include <algorithm>
#include <array>
#include <iterator>
#include <nlohmann/json.hpp>

#include "secretfs/log.hpp"

namespace secretfs::fs {

namespace {

constexpr int kMillisecondsPerSecond = 1000;

const char* to_string(Outcome outcome) {
  switch (outcome) {
    case Outcome::granted:
      return "granted";
    case Outcome::denied:
      return "denied";
    case Outcome::failed:
      return "failed";
    case Outcome::refreshed:
      return "refreshed";
  }
  return "unknown";
}

// Characters a JSON string may hold as they are, but that act on whoever reads the line: DEL
// and the C1 controls (U+009B starts a terminal command as ESC [ does); the bidirectional
// controls (U+061C, U+200E, U+200F, U+202A to U+202E, U+2066 to U+2069), which reorder the text
// after them on screen; and the line and paragraph separators (U+2028, U+2029), which some
// readers take for the end of a line. A process chooses its own name, so it could otherwise
// forge or hide what an admin sees of a record.
bool needs_escape(char32_t code) {
  constexpr char32_t kDelete = 0x7f;
  constexpr char32_t kLastC1 = 0x9f;
  constexpr char32_t kArabicLetterMark = 0x061c;
  constexpr char32_t kLeftToRightMark = 0x200e;
  constexpr char32_t kRightToLeftMark = 0x200f;
  constexpr char32_t kLineSeparator = 0x2028;
  constexpr char32_t kRightToLeftOverride = 0x202e;
  constexpr char32_t kFirstIsolate = 0x2066;
  constexpr char32_t kLastIsolate = 0x2069;
  return (code >= kDelete && code <= kLastC1) || code == kArabicLetterMark ||
         code == kLeftToRightMark || code == kRightToLeftMark ||
         (code >= kLineSeparator && code <= kRightToLeftOverride) ||
         (code >= kFirstIsolate && code <= kLastIsolate);
}

struct Decoded {
  char32_t code;
  std::size_t length;  // in bytes
};

// The character at the start of `text`, which is UTF-8 (nlohmann::json writes nothing else).
Decoded decode(std::string_view text) {
  constexpr unsigned char kTwoBytes = 0xc0;
  constexpr unsigned char kThreeBytes = 0xe0;
  constexpr unsigned char kFourBytes = 0xf0;
  constexpr unsigned kFollowBits = 0x3f;  // of each byte after the first, 6 of them
  constexpr unsigned kBitsPerFollow = 6;
  const auto lead = static_cast<unsigned char>(text[0]);
  const std::size_t length = lead < kTwoBytes     ? 1
                             : lead < kThreeBytes ? 2
                             : lead < kFourBytes  ? 3
                                                  : 4;
  if (length == 1 || length > text.size()) {
    return {lead, 1};
  }
  // The first byte of an n-byte character holds 7 - n bits of it.
  char32_t code = lead & (0x7fU >> length);
  for (std::size_t i = 1; i < length; ++i) {
    code = code << kBitsPerFollow | (static_cast<unsigned char>(text[i]) & kFollowBits);
  }
  return {code, length};
}

// `json` with each character needs_escape() names written as \uXXXX instead. Inside a JSON
// string such a character can only stand for itself, so the meaning is the same.
std::string escape_deceptive(std::string json) {
  constexpr unsigned char kDelete = 0x7f;
  if (std::none_of(json.begin(), json.end(),
                   [](char c) { return static_cast<unsigned char>(c) >= kDelete; })) {
    return json;  // ASCII without DEL: most names
  }
  std::string escaped;
  escaped.reserve(json.size());
  std::string_view rest(json);
  while (!rest.empty()) {
    const Decoded character = decode(rest);
    if (needs_escape(character.code)) {
      fmt::format_to(std::back_inserter(escaped), "\\u{:04x}",
                     static_cast<std::uint32_t>(character.code));
    } else {
      escaped.append(rest.substr(0, character.length));
    }
    rest.remove_prefix(character.length);
  }
  return escaped;
}

// A JSON string of `text`, quotes included. Names are bytes: anything that is not UTF-8 is
// replaced rather than breaking the line.
std::string json_string(std::string_view text) {
  return escape_deceptive(
      nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

}  // namespace

std::string to_json_line(const AuditEvent& event, std::string_view process_name,
                         std::string_view time) {
  std::string line;
  fmt::format_to(std::back_inserter(line),
                 R"({{"time":"{}","secret":{},"generation":{},"uid":{},"gid":{},"pid":{},)"
                 R"("process":{},"result":"{}")",
                 time, json_string(event.secret), event.generation, event.uid, event.gid, event.pid,
                 json_string(process_name), to_string(event.outcome));
  if (event.outcome == Outcome::denied || event.outcome == Outcome::failed) {
    fmt::format_to(std::back_inserter(line), R"(,"errno":{})", event.error);
  }
  line += '}';
  return line;
}

std::string UtcText::of(std::chrono::system_clock::time_point time) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(time);
  if (seconds != second_) {
    std::tm utc{};
    ::gmtime_r(&seconds, &utc);
    std::array<char, sizeof "2026-12-03T19:04:13"> text{};
    std::strftime(text.data(), text.size(), "%Y-%m-%dT%H:%M:%S", &utc);
    second_ = seconds;
    second_text_ = text.data();
  }
  const auto milliseconds =
      std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count() %
      kMillisecondsPerSecond;
  return fmt::format("{}.{:03}Z", second_text_, milliseconds);
}

}  // namespace secretfs::fs
