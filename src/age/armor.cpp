// ASCII armor, read strictly: one spelling of the BEGIN and END lines, lines of exactly 64
// columns until a shorter last one, each line canonical padded base64 on its own, and
// nothing but whitespace around the armor.
#include <string>
#include <string_view>

#include "base64.hpp"
#include "secretfs/age/armor.hpp"
#include "secretfs/age/error.hpp"

namespace secretfs::age {

namespace {

constexpr std::string_view kBeginLine = "-----BEGIN AGE ENCRYPTED FILE-----";
constexpr std::string_view kEndLine = "-----END AGE ENCRYPTED FILE-----";
// Detection looks only for a PEM-style opening, so that a wrong label or a mangled BEGIN line
// is reported as bad armor rather than as a bad binary header.
constexpr std::string_view kPemOpening = "-----BEGIN";
// Text before a BEGIN line that sits this close to the start is taken for armor with garbage
// in front, so that it is reported as bad armor rather than as a bad binary header.
constexpr std::size_t kSniffSize = 1024;
constexpr std::string_view kBinaryIntro = "age-encryption.org/";
constexpr std::string_view kWhitespace = " \t\r\n";
constexpr std::size_t kLineColumns = 64;
constexpr std::size_t kBytesPerLine = 48;

[[noreturn]] void fail(const std::string& message) {
  throw Error(ErrorKind::armor, "armor: " + message);
}

std::string_view as_text(std::span<const std::uint8_t> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

std::string_view skip_whitespace(std::string_view text) {
  const auto start = text.find_first_not_of(kWhitespace);
  return start == std::string_view::npos ? std::string_view{} : text.substr(start);
}

// Takes the next line off `text`, without its LF and one CR before it.
std::string_view take_line(std::string_view& text) {
  const auto end = text.find('\n');
  auto line = text.substr(0, end);
  text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
  if (line.ends_with('\r')) {
    line.remove_suffix(1);
  }
  return line;
}

// Appends the bytes of one armor line and returns how many there were.
std::size_t decode_line(std::string_view line, std::size_t number,
                        std::vector<std::uint8_t>& binary) {
  const auto where = "line " + std::to_string(number);
  if (line.empty()) {
    fail(where + " is empty");
  }
  if (line.size() > kLineColumns) {
    fail(where + " is " + std::to_string(line.size()) + " columns, at most 64 allowed");
  }
  std::vector<std::uint8_t> bytes;
  if (!decode_base64_padded(line, bytes)) {
    fail(where + " is not canonical padded base64");
  }
  binary.insert(binary.end(), bytes.begin(), bytes.end());
  return bytes.size();
}

}  // namespace

bool is_armored(std::span<const std::uint8_t> file) {
  const auto text = skip_whitespace(as_text(file));
  if (text.starts_with(kPemOpening)) {
    return true;
  }
  const auto top = text.substr(0, kSniffSize + 1 + kBeginLine.size());
  return !text.starts_with(kBinaryIntro) && top.find("\n" + std::string(kBeginLine)) != top.npos;
}

std::vector<std::uint8_t> dearmor(std::span<const std::uint8_t> file) {
  auto text = skip_whitespace(as_text(file));
  if (take_line(text) != kBeginLine) {
    fail("first line is not \"-----BEGIN AGE ENCRYPTED FILE-----\"");
  }

  std::vector<std::uint8_t> binary;
  bool last_line_seen = false;
  for (std::size_t number = 2;; ++number) {
    if (text.empty()) {
      fail("no \"-----END AGE ENCRYPTED FILE-----\" line");
    }
    const auto line = take_line(text);
    if (line == kEndLine) {
      break;
    }
    if (last_line_seen) {
      fail("line " + std::to_string(number) + " follows a short line but is not the END line");
    }
    // Only a full line of 48 bytes may be followed by more base64.
    last_line_seen = decode_line(line, number, binary) < kBytesPerLine;
  }

  if (!skip_whitespace(text).empty()) {
    fail("text after the END line");
  }
  return binary;
}

std::string armor(std::span<const std::uint8_t> binary) {
  std::string text(kBeginLine);
  text += '\n';
  for (std::size_t offset = 0; offset < binary.size(); offset += kBytesPerLine) {
    text += encode_base64_padded(
        binary.subspan(offset, std::min(kBytesPerLine, binary.size() - offset)));
    text += '\n';
  }
  text += kEndLine;
  text += '\n';
  return text;
}

}  // namespace secretfs::age
