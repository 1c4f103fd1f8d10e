#include "age/base64.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "secretfs/age/format.hpp"

using namespace secretfs::age;

namespace {

std::vector<std::uint8_t> bytes_of(std::string_view text) {
  return {text.begin(), text.end()};
}

// The decoded text, or "<invalid>" when the decoder refuses the input.
std::string unpadded(std::string_view text) {
  std::vector<std::uint8_t> out;
  return decode_base64_unpadded(text, out) ? std::string(out.begin(), out.end()) : "<invalid>";
}

std::string padded(std::string_view text) {
  std::vector<std::uint8_t> out;
  return decode_base64_padded(text, out) ? std::string(out.begin(), out.end()) : "<invalid>";
}

}  // namespace

TEST_CASE("unpadded base64 encodes without '='") {
  CHECK(encode_base64_unpadded(bytes_of("")) == "");
  CHECK(encode_base64_unpadded(bytes_of("f")) == "Zg");
  CHECK(encode_base64_unpadded(bytes_of("fo")) == "Zm8");
  CHECK(encode_base64_unpadded(bytes_of("foo")) == "Zm9v");
  CHECK(encode_base64_unpadded(bytes_of("\xfb\xff")) == "+/8");
}

TEST_CASE("unpadded base64 accepts only the canonical encoding") {
  CHECK(unpadded("") == "");
  CHECK(unpadded("Zg") == "f");
  CHECK(unpadded("Zm8") == "fo");
  CHECK(unpadded("Zm9v") == "foo");
  CHECK(unpadded("+/8") == "\xfb\xff");

  CHECK(unpadded("Zh") == "<invalid>");     // unused bits set
  CHECK(unpadded("Zm9") == "<invalid>");    // unused bits set
  CHECK(unpadded("Zg==") == "<invalid>");   // padding
  CHECK(unpadded("Z") == "<invalid>");      // length 1 mod 4
  CHECK(unpadded("Zm9vY") == "<invalid>");  // length 1 mod 4
  CHECK(unpadded("Zm 9v") == "<invalid>");  // space
  CHECK(unpadded("Zm9v\n") == "<invalid>");
  CHECK(unpadded("Zm9v\r") == "<invalid>");
  CHECK(unpadded("-_8") == "<invalid>");  // URL-safe alphabet
}

TEST_CASE("padded base64 demands exactly the right padding") {
  CHECK(encode_base64_padded(bytes_of("f")) == "Zg==");
  CHECK(encode_base64_padded(bytes_of("fo")) == "Zm8=");
  CHECK(padded("Zg==") == "f");
  CHECK(padded("Zm8=") == "fo");
  CHECK(padded("Zm9v") == "foo");

  CHECK(padded("Zg") == "<invalid>");
  CHECK(padded("Zg=") == "<invalid>");
  CHECK(padded("Zg===") == "<invalid>");
  CHECK(padded("Zh==") == "<invalid>");
  CHECK(padded("Zm9=") == "<invalid>");
  CHECK(padded("Z=g=") == "<invalid>");
}

TEST_CASE("base64 round-trips every length up to two blocks") {
  std::vector<std::uint8_t> bytes;
  for (int length = 0; length <= 6; ++length) {
    std::vector<std::uint8_t> out;
    REQUIRE(decode_base64_unpadded(encode_base64_unpadded(bytes), out));
    CHECK(out == bytes);
    REQUIRE(decode_base64_padded(encode_base64_padded(bytes), out));
    CHECK(out == bytes);
    bytes.push_back(static_cast<std::uint8_t>(0xa0 + length));
  }
}
