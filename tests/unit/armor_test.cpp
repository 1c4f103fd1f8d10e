#include "secretfs/age/armor.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "secretfs/age/error.hpp"

using namespace secretfs::age;

namespace {

const std::string kBegin = "-----BEGIN AGE ENCRYPTED FILE-----\n";
const std::string kEnd = "-----END AGE ENCRYPTED FILE-----\n";
// 48 bytes "000...0" and its one full line; "ab" and its padded line.
const std::string kFullLine = "MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAw";
const std::string kShortLine = "YWI=";

std::vector<std::uint8_t> bytes_of(const std::string& text) {
  return {text.begin(), text.end()};
}

std::string dearmored(const std::string& text) {
  const auto binary = dearmor(bytes_of(text));
  return {binary.begin(), binary.end()};
}

bool fails(const std::string& text) {
  try {
    dearmor(bytes_of(text));
  } catch (const Error& error) {
    return error.kind() == ErrorKind::armor;
  }
  return false;
}

}  // namespace

TEST_CASE("armor wraps at 64 columns with a short or no last line") {
  CHECK(armor({}) == kBegin + kEnd);
  CHECK(armor(bytes_of(std::string(48, '0'))) == kBegin + kFullLine + "\n" + kEnd);
  CHECK(armor(bytes_of("ab")) == kBegin + kShortLine + "\n" + kEnd);
  CHECK(armor(bytes_of(std::string(48, '0') + "ab")) ==
        kBegin + kFullLine + "\n" + kShortLine + "\n" + kEnd);
}

TEST_CASE("armor round-trips around one line") {
  const std::size_t size = GENERATE(0, 1, 47, 48, 49, 96, 1000);
  CAPTURE(size);
  std::string binary;
  for (std::size_t i = 0; i < size; ++i) {
    binary += static_cast<char>(i * 7);
  }
  const auto text = armor(bytes_of(binary));
  CHECK(is_armored(bytes_of(text)));
  CHECK(dearmored(text) == binary);
}

TEST_CASE("armor tolerates CRLF, a missing final newline and whitespace outside") {
  CHECK(dearmored(kBegin + kShortLine + "\n" + kEnd) == "ab");
  CHECK(dearmored("-----BEGIN AGE ENCRYPTED FILE-----\r\n" + kShortLine +
                  "\r\n-----END AGE ENCRYPTED FILE-----\r\n") == "ab");
  CHECK(dearmored(kBegin + kShortLine + "\n-----END AGE ENCRYPTED FILE-----") == "ab");
  CHECK(dearmored(" \n\t\r\n" + kBegin + kShortLine + "\n" + kEnd + "\n \t\n") == "ab");
}

TEST_CASE("armor rejects everything else") {
  CHECK(fails("garbage\n" + kBegin + kShortLine + "\n" + kEnd));
  CHECK(fails(kBegin + kShortLine + "\n" + kEnd + "garbage\n"));
  CHECK(fails("-----BEGIN age ENCRYPTED FILE-----\n" + kShortLine + "\n" + kEnd));
  CHECK(fails(kBegin + kShortLine + "\n-----END AGE ENCRYPTED MESSAGE-----\n"));
  CHECK(fails("----- BEGIN AGE ENCRYPTED FILE -----\n" + kShortLine + "\n" + kEnd));
  CHECK(fails(kBegin + kShortLine + "\n"));                             // no END
  CHECK(fails(kBegin + "\n" + kShortLine + "\n" + kEnd));               // empty line
  CHECK(fails(kBegin + kFullLine + "\n\n" + kEnd));                     // empty last line
  CHECK(fails(kBegin + kShortLine + " \n" + kEnd));                     // trailing space
  CHECK(fails(kBegin + " " + kShortLine + "\n" + kEnd));                // leading space
  CHECK(fails(kBegin + "YWI\n" + kEnd));                                // no padding
  CHECK(fails(kBegin + "YWJ=\n" + kEnd));                               // stray bits
  CHECK(fails(kBegin + "YW*=\n" + kEnd));                               // not base64
  CHECK(fails(kBegin + kShortLine + "\n" + kShortLine + "\n" + kEnd));  // short, then more
  CHECK(fails(kBegin + kFullLine + "AAAA\n" + kEnd));                   // 68 columns
  CHECK(fails(kBegin + "Key: value\n" + kShortLine + "\n" + kEnd));     // PEM header
  CHECK(fails(kBegin + kShortLine + "\n=AAAA\n" + kEnd));               // PGP checksum
}

TEST_CASE("armor detection skips whitespace and stops at binary headers") {
  CHECK(is_armored(bytes_of(kBegin)));
  CHECK(is_armored(bytes_of("\n\t " + kBegin)));
  CHECK(is_armored(bytes_of("-----BEGIN age ENCRYPTED FILE-----\n")));
  CHECK(is_armored(bytes_of("garbage\n" + kBegin)));
  CHECK_FALSE(is_armored(bytes_of("age-encryption.org/v1\n-> t\n\n" + kBegin)));
  CHECK_FALSE(is_armored(bytes_of("")));
  CHECK_FALSE(is_armored(bytes_of("age-encryption.org/v1\n")));
}
