// Fuzzes the ASCII armor: detection, the strict de-armoring of hostile text, and the round
// trip of arbitrary binary through armor().
//
// Promises checked: the armor has one spelling, so text that de-armors is what armor() writes
// for its bytes, up to whitespace around it and CRLF line ends; and any binary survives armor()
// then dearmor() unchanged, and is then seen as armored.
#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "secretfs/age/armor.hpp"
#include "secretfs/age/error.hpp"

namespace {

using namespace secretfs::age;
using secretfs::fuzz::as_bytes;
using secretfs::fuzz::require;

constexpr std::string_view kWhitespace = " \t\r\n";

// The text without whitespace around it and with LF line ends.
std::string canonical_form(std::string_view text) {
  const auto first = text.find_first_not_of(kWhitespace);
  if (first == std::string_view::npos) {
    return {};
  }
  text = text.substr(first, text.find_last_not_of(kWhitespace) + 1 - first);
  std::string lines;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (!(text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n')) {
      lines += text[i];
    }
  }
  return lines;
}

void check_dearmor(std::span<const std::uint8_t> text) {
  is_armored(text);
  std::vector<std::uint8_t> binary;
  try {
    binary = dearmor(text);
  } catch (const Error&) {
    return;
  }
  require(canonical_form(secretfs::fuzz::as_text(text.data(), text.size())) ==
              canonical_form(armor(binary)),
          "text that de-armors is the one spelling armor() writes");
}

void check_round_trip(std::span<const std::uint8_t> binary) {
  const auto text = armor(binary);
  require(is_armored(as_bytes(text)), "armor() output is seen as armored");
  const auto back = dearmor(as_bytes(text));
  require(std::equal(back.begin(), back.end(), binary.begin(), binary.end()),
          "any binary survives armor() and dearmor()");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  check_dearmor(as_bytes(data, size));
  check_round_trip(as_bytes(data, size));
  return 0;
}
