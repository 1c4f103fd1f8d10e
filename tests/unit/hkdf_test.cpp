#include "age/hkdf.hpp"

#include <sodium.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace {

std::string hex(std::span<const std::uint8_t> bytes) {
  std::string text(bytes.size() * 2 + 1, '\0');
  sodium_bin2hex(text.data(), text.size(), bytes.data(), bytes.size());
  text.pop_back();
  return text;
}

std::vector<std::uint8_t> counting(std::uint8_t first, std::size_t count) {
  std::vector<std::uint8_t> bytes(count);
  for (std::size_t i = 0; i < count; ++i) {
    bytes[i] = static_cast<std::uint8_t>(first + i);
  }
  return bytes;
}

constexpr std::size_t kRfcIkmSize = 22;
constexpr std::uint8_t kRfcIkmByte = 0x0b;

}  // namespace

TEST_CASE("HKDF-SHA-256 matches RFC 5869 test case 1 (first 32 bytes)") {
  const std::vector<std::uint8_t> ikm(kRfcIkmSize, kRfcIkmByte);
  const auto salt = counting(0x00, 13);
  const auto info_bytes = counting(0xf0, 10);
  const std::string info(info_bytes.begin(), info_bytes.end());

  const auto okm = secretfs::age::hkdf_sha256(ikm, salt, info);
  CHECK(hex(okm.span()) == "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf");
}

TEST_CASE("HKDF-SHA-256 matches RFC 5869 test case 3 (empty salt and info)") {
  const std::vector<std::uint8_t> ikm(kRfcIkmSize, kRfcIkmByte);
  const auto okm = secretfs::age::hkdf_sha256(ikm, {}, "");
  CHECK(hex(okm.span()) == "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d");
}

TEST_CASE("HKDF-SHA-256 depends on which input is the salt") {
  const std::vector<std::uint8_t> a(kRfcIkmSize, kRfcIkmByte);
  const auto swapped = secretfs::age::hkdf_sha256({}, a, "info");
  const auto straight = secretfs::age::hkdf_sha256(a, {}, "info");
  CHECK(hex(swapped.span()) != hex(straight.span()));
}
