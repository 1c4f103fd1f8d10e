// Both base64 flavours age uses, on top of libsodium's codec. With no "ignore" set and no end
// pointer, sodium_base642bin accepts only the canonical encoding: it fails on characters
// outside the alphabet, on non-zero unused bits, on a length of 1 mod 4 and on wrong padding.
#include <sodium.h>

#include <string>

#include "base64.hpp"
#include "secretfs/age/format.hpp"
#include "secretfs/secret_bytes.hpp"

namespace secretfs::age {

namespace {

std::string encode(std::span<const std::uint8_t> bytes, int variant) {
  initialize_sodium();
  // sodium_base64_ENCODED_LEN counts the terminating NUL, which the string must not keep.
  std::string text(sodium_base64_ENCODED_LEN(bytes.size(), variant), '\0');
  sodium_bin2base64(text.data(), text.size(), bytes.data(), bytes.size(), variant);
  text.resize(text.size() - 1);
  return text;
}

bool decode(std::string_view text, int variant, std::vector<std::uint8_t>& out) {
  if (!is_ascii(text)) {
    return false;
  }
  initialize_sodium();
  // Every 4 characters carry at most 3 bytes; one spare byte keeps the buffer non-empty.
  std::vector<std::uint8_t> bytes(text.size() / 4 * 3 + 3);
  std::size_t size = 0;
  if (sodium_base642bin(bytes.data(), bytes.size(), text.data(), text.size(), nullptr, &size,
                        nullptr, variant) != 0) {
    return false;
  }
  bytes.resize(size);
  out = std::move(bytes);
  return true;
}

}  // namespace

std::string encode_base64_unpadded(std::span<const std::uint8_t> bytes) {
  return encode(bytes, sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
}

bool decode_base64_unpadded(std::string_view text, std::vector<std::uint8_t>& out) {
  return decode(text, sodium_base64_VARIANT_ORIGINAL_NO_PADDING, out);
}

std::string encode_base64_padded(std::span<const std::uint8_t> bytes) {
  return encode(bytes, sodium_base64_VARIANT_ORIGINAL);
}

bool decode_base64_padded(std::string_view text, std::vector<std::uint8_t>& out) {
  return decode(text, sodium_base64_VARIANT_ORIGINAL, out);
}

}  // namespace secretfs::age
