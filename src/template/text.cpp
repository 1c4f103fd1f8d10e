// Whether secret bytes may be inserted into a template as they are: a template renders to a
// text file, and a NUL or a broken UTF-8 sequence in one would break the program that reads it
// in ways that are hard to trace back to the secret.
#include <algorithm>
#include <array>

#include "secretfs/template.hpp"

namespace secretfs::templates {

namespace {

// UTF-8 as RFC 3629 allows it: the shortest form only, no surrogates, nothing past U+10FFFF.
constexpr std::uint8_t kContinuationMask = 0xc0;
constexpr std::uint8_t kContinuationBits = 0x80;
constexpr std::uint8_t kContinuationPayload = 0x3f;
constexpr int kContinuationShift = 6;
constexpr std::uint32_t kFirstSurrogate = 0xd800;
constexpr std::uint32_t kLastSurrogate = 0xdfff;
constexpr std::uint32_t kLastCodePoint = 0x10ffff;
constexpr std::uint8_t kLastAscii = 0x7f;

// A lead byte: the mask and bits that identify it, its payload bits, the sequence's length and
// the smallest code point that needs that length.
struct Lead {
  std::uint8_t mask;
  std::uint8_t bits;
  std::size_t length;
  std::uint32_t smallest;
};
constexpr std::array kLeads = {
    Lead{0xe0, 0xc0, 2, 0x80},
    Lead{0xf0, 0xe0, 3, 0x800},
    Lead{0xf8, 0xf0, 4, 0x10000},
};

// The length of the valid UTF-8 sequence at the start of `bytes`, or 0.
std::size_t sequence_length(std::span<const std::uint8_t> bytes) {
  const std::uint8_t first = bytes[0];
  const auto lead = std::find_if(kLeads.begin(), kLeads.end(), [&](const Lead& known) {
    return (first & known.mask) == known.bits;
  });
  if (lead == kLeads.end() || bytes.size() < lead->length) {
    return 0;
  }
  std::uint32_t code_point = first & static_cast<std::uint8_t>(~lead->mask);
  for (std::size_t i = 1; i < lead->length; ++i) {
    if ((bytes[i] & kContinuationMask) != kContinuationBits) {
      return 0;
    }
    code_point = (code_point << kContinuationShift) | (bytes[i] & kContinuationPayload);
  }
  const bool surrogate = code_point >= kFirstSurrogate && code_point <= kLastSurrogate;
  if (code_point < lead->smallest || code_point > kLastCodePoint || surrogate) {
    return 0;
  }
  return lead->length;
}

}  // namespace

bool is_text(std::span<const std::uint8_t> bytes) {
  std::size_t position = 0;
  while (position < bytes.size()) {
    const std::uint8_t byte = bytes[position];
    if (byte == 0) {
      return false;
    }
    if (byte <= kLastAscii) {
      ++position;
      continue;
    }
    const std::size_t length = sequence_length(bytes.subspan(position));
    if (length == 0) {
      return false;
    }
    position += length;
  }
  return true;
}

}  // namespace secretfs::templates
