// The age v1 header parser and encoder.
//
// The parser reads line by line and accepts exactly one spelling of each header, so that the
// bytes it read are the bytes the MAC covers and a lenient re-encoding can never turn a parse
// error into a MAC error.
#include <optional>
#include <string>
#include <string_view>

#include "secretfs/age/error.hpp"
#include "secretfs/age/format.hpp"

namespace secretfs::age {

namespace {

constexpr std::string_view kVersionLine = "age-encryption.org/v1";
constexpr std::string_view kStanzaPrefix = "->";
constexpr std::string_view kMacPrefix = "---";
constexpr std::size_t kBodyLineColumns = 64;
constexpr std::size_t kEncodedMacSize = 43;
constexpr char kFirstVisible = 0x21;
constexpr char kLastVisible = 0x7e;

[[noreturn]] void fail(const std::string& message) {
  throw Error(ErrorKind::header, "header: " + message);
}

std::string stanza_name(std::size_t index) {
  return "stanza " + std::to_string(index + 1);
}

// Hands out the header one LF-terminated line at a time, never past kMaxHeaderSize.
class LineReader {
 public:
  explicit LineReader(std::span<const std::uint8_t> file)
      : text_(reinterpret_cast<const char*>(file.data()), file.size()) {}

  std::size_t offset() const { return offset_; }

  // The next line without its LF. `what` names the line in the error when there is none.
  std::string_view next(const std::string& what) {
    const auto end = text_.find('\n', offset_);
    if (end == std::string_view::npos || end >= kMaxHeaderSize) {
      if (text_.size() > kMaxHeaderSize) {
        fail("no MAC line within the first " + std::to_string(kMaxHeaderSize) + " bytes");
      }
      fail(what + " is missing or not terminated by LF");
    }
    const auto line = text_.substr(offset_, end - offset_);
    offset_ = end + 1;
    return line;
  }

 private:
  std::string_view text_;
  std::size_t offset_ = 0;
};

bool is_visible(std::string_view argument) {
  for (const char c : argument) {
    if (c < kFirstVisible || c > kLastVisible) {
      return false;
    }
  }
  return true;
}

// "-> a b c": every argument is preceded by exactly one space and is 1+ visible characters.
std::vector<std::string> parse_arguments(std::string_view line, std::size_t index) {
  if (!line.starts_with(kStanzaPrefix)) {
    fail(stanza_name(index) + ": line does not start with \"->\" or \"---\"");
  }
  auto rest = line.substr(kStanzaPrefix.size());
  if (rest.empty()) {
    fail(stanza_name(index) + ": has no type");
  }
  std::vector<std::string> arguments;
  while (!rest.empty()) {
    if (rest.front() != ' ') {
      fail(stanza_name(index) + ": arguments must be separated by one space");
    }
    rest.remove_prefix(1);
    const auto argument = rest.substr(0, rest.find(' '));
    if (argument.empty()) {
      fail(stanza_name(index) + ": empty argument (double or trailing space)");
    }
    if (!is_visible(argument)) {
      fail(stanza_name(index) + ": argument " + std::to_string(arguments.size() + 1) +
           " has a byte outside 0x21-0x7e");
    }
    arguments.emplace_back(argument);
    rest.remove_prefix(argument.size());
  }
  return arguments;
}

// Body lines are full 64-column lines until the first shorter one, which may be empty.
std::vector<std::uint8_t> parse_body(LineReader& reader, std::size_t index) {
  std::vector<std::uint8_t> body;
  for (std::size_t number = 1;; ++number) {
    const auto what = stanza_name(index) + ": body line " + std::to_string(number);
    const auto line = reader.next(what);
    if (line.size() > kBodyLineColumns) {
      fail(what + " is " + std::to_string(line.size()) + " columns, at most 64 allowed");
    }
    std::vector<std::uint8_t> bytes;
    if (!decode_base64_unpadded(line, bytes)) {
      fail(what + " is not canonical unpadded base64");
    }
    body.insert(body.end(), bytes.begin(), bytes.end());
    if (line.size() < kBodyLineColumns) {
      return body;
    }
  }
}

void parse_mac_line(std::string_view line, Header& header) {
  const auto encoded = line.substr(kMacPrefix.size());
  if (!encoded.starts_with(' ')) {
    fail("MAC line needs one space after \"---\"");
  }
  std::vector<std::uint8_t> mac;
  if (encoded.size() != 1 + kEncodedMacSize || !decode_base64_unpadded(encoded.substr(1), mac) ||
      mac.size() != kMacSize) {
    fail("MAC is not 43 characters of canonical base64 (32 bytes)");
  }
  std::copy(mac.begin(), mac.end(), header.mac.begin());
}

}  // namespace

Header parse_header(std::span<const std::uint8_t> file) {
  if (file.empty()) {
    fail("file is empty");
  }
  LineReader reader(file);
  if (reader.next("version line") != kVersionLine) {
    fail("first line is not \"age-encryption.org/v1\"");
  }

  Header header;
  for (;;) {
    const auto line_start = reader.offset();
    const auto line = reader.next("MAC line");
    if (line.starts_with(kMacPrefix)) {
      parse_mac_line(line, header);
      header.mac_input_size = line_start + kMacPrefix.size();
      header.payload_offset = reader.offset();
      break;
    }
    const auto index = header.stanzas.size();
    if (index == kMaxStanzas) {
      fail("more than " + std::to_string(kMaxStanzas) + " stanzas");
    }
    auto arguments = parse_arguments(line, index);
    Stanza stanza;
    stanza.type = std::move(arguments.front());
    stanza.args.assign(std::make_move_iterator(arguments.begin() + 1),
                       std::make_move_iterator(arguments.end()));
    stanza.body = parse_body(reader, index);
    header.stanzas.push_back(std::move(stanza));
  }

  // The grammar asks for at least one stanza; a file without any could never be opened.
  if (header.stanzas.empty()) {
    fail("no recipient stanzas");
  }
  return header;
}

std::string encode_header_without_mac(const std::vector<Stanza>& stanzas) {
  std::string text(kVersionLine);
  text += '\n';
  for (const auto& stanza : stanzas) {
    text += kStanzaPrefix;
    text += ' ';
    text += stanza.type;
    for (const auto& argument : stanza.args) {
      text += ' ';
      text += argument;
    }
    text += '\n';

    // Always end with a short line, empty when the body fills its last line exactly.
    const auto encoded = encode_base64_unpadded(stanza.body);
    std::size_t offset = 0;
    do {
      const auto line = encoded.substr(offset, kBodyLineColumns);
      text += line;
      text += '\n';
      offset += kBodyLineColumns;
    } while (offset <= encoded.size());
  }
  text += kMacPrefix;
  return text;
}

std::string encode_mac_line(std::span<const std::uint8_t, kMacSize> mac) {
  return " " + encode_base64_unpadded(mac) + "\n";
}

}  // namespace secretfs::age
