// Fuzzes Bech32 decoding and the key strings built on it: "age1…" recipients and
// "AGE-SECRET-KEY-1…" identities.
//
// Promises checked: what decodes encodes back to the same string (Bech32 has one spelling per
// payload, up to the case of the whole string), and decoding that again gives the same payload.
#include <algorithm>
#include <cctype>
#include <string>

#include "fuzz_support.hpp"
#include "secretfs/age/bech32.hpp"
#include "secretfs/age/error.hpp"
#include "secretfs/age/key_files.hpp"
#include "secretfs/age/x25519.hpp"

namespace {

using namespace secretfs::age;
using secretfs::fuzz::require;

bool same_ignoring_case(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}

void check_round_trip(std::string_view text) {
  const auto decoded = bech32::decode(text);
  if (!decoded) {
    return;
  }
  const auto encoded = bech32::encode(decoded->hrp, decoded->data.span());
  require(same_ignoring_case(encoded.view(), text), "a decoded string encodes back to itself");
  const auto again = bech32::decode(encoded.view());
  require(again.has_value() && again->data.view() == decoded->data.view(),
          "an encoded string decodes to its payload");
}

template <typename Parse>
void try_parse(Parse parse) {
  try {
    parse();
  } catch (const Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = secretfs::fuzz::as_text(data, size);
  check_round_trip(text);
  try_parse([&] { X25519Recipient::parse(text); });
  try_parse([&] { X25519Identity::parse(text); });
  try_parse([&] { parse_recipient(text); });
  return 0;
}
