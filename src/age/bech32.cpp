// Bech32 (BIP-173) as age uses it: checksum constant 1 and no length limit.
//
// Identities pass through here, so every buffer that holds key bits, in 5-bit groups or as
// characters, is SecretBytes.
#include "secretfs/age/bech32.hpp"

#include <sodium.h>

#include <array>
#include <cctype>
#include <cstring>

namespace secretfs::age::bech32 {

namespace {

constexpr std::string_view kCharset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
constexpr std::array<std::uint32_t, 5> kGenerator = {0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd,
                                                     0x2a1462b3};
constexpr std::uint32_t kChecksumConstant = 1;
constexpr std::size_t kChecksumSize = 6;
constexpr int kGroupBits = 5;
constexpr int kByteBits = 8;
constexpr std::uint32_t kGroupMask = (1u << kGroupBits) - 1;
constexpr int kPolymodShift = 25;
constexpr std::uint32_t kPolymodMask = 0x1ffffff;
constexpr char kSeparator = '1';
constexpr char kFirstPrintable = 33;
constexpr char kLastPrintable = 126;

std::uint32_t polymod_step(std::uint32_t checksum, std::uint8_t value) {
  const auto top = checksum >> kPolymodShift;
  checksum = ((checksum & kPolymodMask) << kGroupBits) ^ value;
  for (std::size_t i = 0; i < kGenerator.size(); ++i) {
    if ((top >> i) & 1) {
      checksum ^= kGenerator[i];
    }
  }
  return checksum;
}

// The checksum state after the expanded, lowercase HRP: high bits, a zero, low bits.
std::uint32_t polymod_hrp(std::string_view hrp) {
  std::uint32_t checksum = 1;
  for (const char c : hrp) {
    checksum = polymod_step(checksum, static_cast<std::uint8_t>(std::tolower(c)) >> kGroupBits);
  }
  checksum = polymod_step(checksum, 0);
  for (const char c : hrp) {
    checksum = polymod_step(checksum, static_cast<std::uint8_t>(std::tolower(c)) & kGroupMask);
  }
  return checksum;
}

bool has_upper(std::string_view text) {
  for (const char c : text) {
    if (std::isupper(static_cast<unsigned char>(c))) {
      return true;
    }
  }
  return false;
}

bool has_lower(std::string_view text) {
  for (const char c : text) {
    if (std::islower(static_cast<unsigned char>(c))) {
      return true;
    }
  }
  return false;
}

// Regroups 8-bit bytes into 5-bit groups, padding the last group with zero bits.
SecretBytes to_groups(std::span<const std::uint8_t> data) {
  SecretBytes groups((data.size() * kByteBits + kGroupBits - 1) / kGroupBits);
  std::uint32_t accumulator = 0;
  int bits = 0;
  std::size_t out = 0;
  for (const auto byte : data) {
    accumulator = (accumulator << kByteBits) | byte;
    bits += kByteBits;
    while (bits >= kGroupBits) {
      bits -= kGroupBits;
      groups.data()[out++] = (accumulator >> bits) & kGroupMask;
    }
  }
  if (bits > 0) {
    groups.data()[out++] = (accumulator << (kGroupBits - bits)) & kGroupMask;
  }
  sodium_memzero(&accumulator, sizeof accumulator);
  return groups;
}

// Regroups 5-bit groups into bytes; fails on a whole leftover group or non-zero padding.
std::optional<SecretBytes> from_groups(std::span<const std::uint8_t> groups) {
  SecretBytes data(groups.size() * kGroupBits / kByteBits);
  std::uint32_t accumulator = 0;
  int bits = 0;
  std::size_t out = 0;
  for (const auto group : groups) {
    accumulator = (accumulator << kGroupBits) | group;
    bits += kGroupBits;
    if (bits >= kByteBits) {
      bits -= kByteBits;
      data.data()[out++] = static_cast<std::uint8_t>(accumulator >> bits);
    }
  }
  const bool clean_padding = bits < kGroupBits && (accumulator & ((1u << bits) - 1)) == 0;
  sodium_memzero(&accumulator, sizeof accumulator);
  if (!clean_padding) {
    return std::nullopt;
  }
  return data;
}

}  // namespace

SecretBytes encode(std::string_view hrp, std::span<const std::uint8_t> data) {
  const auto groups = to_groups(data);
  auto checksum = polymod_hrp(hrp);
  for (const auto group : groups.span()) {
    checksum = polymod_step(checksum, group);
  }
  for (std::size_t i = 0; i < kChecksumSize; ++i) {
    checksum = polymod_step(checksum, 0);
  }
  checksum ^= kChecksumConstant;

  const bool upper = has_upper(hrp);
  SecretBytes text(hrp.size() + 1 + groups.size() + kChecksumSize);
  auto* out = text.data();
  for (const char c : hrp) {
    *out++ = static_cast<std::uint8_t>(upper ? std::toupper(c) : std::tolower(c));
  }
  *out++ = kSeparator;
  const auto put = [&](std::uint32_t group) {
    const char c = kCharset[group];
    *out++ = static_cast<std::uint8_t>(upper ? std::toupper(c) : c);
  };
  for (const auto group : groups.span()) {
    put(group);
  }
  for (std::size_t i = 0; i < kChecksumSize; ++i) {
    put((checksum >> (kGroupBits * (kChecksumSize - 1 - i))) & kGroupMask);
  }
  return text;
}

std::optional<Decoded> decode(std::string_view text) {
  for (const char c : text) {
    if (c < kFirstPrintable || c > kLastPrintable) {
      return std::nullopt;
    }
  }
  if (has_upper(text) && has_lower(text)) {
    return std::nullopt;
  }
  const auto separator = text.rfind(kSeparator);
  if (separator == std::string_view::npos || separator == 0 ||
      text.size() - separator - 1 < kChecksumSize) {
    return std::nullopt;
  }
  const auto hrp = text.substr(0, separator);
  const auto encoded = text.substr(separator + 1);

  SecretBytes groups(encoded.size());
  auto checksum = polymod_hrp(hrp);
  for (std::size_t i = 0; i < encoded.size(); ++i) {
    const auto position =
        kCharset.find(static_cast<char>(std::tolower(static_cast<unsigned char>(encoded[i]))));
    if (position == std::string_view::npos) {
      return std::nullopt;
    }
    groups.data()[i] = static_cast<std::uint8_t>(position);
    checksum = polymod_step(checksum, groups.data()[i]);
  }
  if (checksum != kChecksumConstant) {
    return std::nullopt;
  }

  auto data = from_groups(groups.span().first(encoded.size() - kChecksumSize));
  if (!data) {
    return std::nullopt;
  }
  return Decoded{std::string(hrp), std::move(*data)};
}

}  // namespace secretfs::age::bech32
