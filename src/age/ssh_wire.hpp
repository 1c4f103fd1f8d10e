// The SSH wire encoding shared by authorized_keys lines and openssh-key-v1 private keys:
// big-endian uint32 fields and length-prefixed strings (RFC 4251, section 5).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sodium.h>

#include "base64.hpp"
#include "secretfs/age/error.hpp"

namespace secretfs::age::ssh_wire {

inline constexpr std::string_view kEd25519KeyType = "ssh-ed25519";
inline constexpr std::size_t kEd25519PublicKeySize = 32;
inline constexpr std::size_t kUint32Size = 4;

using Ed25519PublicKey = std::array<std::uint8_t, kEd25519PublicKeySize>;

inline std::string_view as_text(std::span<const std::uint8_t> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// Reads fields front to back. Every failure is Error(key) naming `context` and the field, so
// that a truncated key file says which part is missing.
class Reader {
 public:
  Reader(std::span<const std::uint8_t> bytes, std::string context)
      : rest_(bytes), context_(std::move(context)) {}

  std::uint32_t read_uint32(std::string_view field) {
    if (rest_.size() < kUint32Size) {
      fail(std::string(field) + " is truncated");
    }
    std::uint32_t value = 0;
    for (std::size_t i = 0; i < kUint32Size; ++i) {
      value = (value << 8) | rest_[i];
    }
    rest_ = rest_.subspan(kUint32Size);
    return value;
  }

  std::span<const std::uint8_t> read_string(std::string_view field) {
    const std::uint32_t length = read_uint32(field);
    if (rest_.size() < length) {
      fail(std::string(field) + " is " + std::to_string(length) + " bytes but only " +
           std::to_string(rest_.size()) + " remain");
    }
    const auto value = rest_.first(length);
    rest_ = rest_.subspan(length);
    return value;
  }

  std::string_view read_text(std::string_view field) { return as_text(read_string(field)); }

  // Consumes `size` raw bytes (an unprefixed magic or padding).
  std::span<const std::uint8_t> read_bytes(std::size_t size, std::string_view field) {
    if (rest_.size() < size) {
      fail(std::string(field) + " is truncated");
    }
    const auto value = rest_.first(size);
    rest_ = rest_.subspan(size);
    return value;
  }

  std::span<const std::uint8_t> rest() const { return rest_; }

  void expect_end(std::string_view what) const {
    if (!rest_.empty()) {
      fail(std::to_string(rest_.size()) + " trailing bytes after " + std::string(what));
    }
  }

  [[noreturn]] void fail(const std::string& problem) const {
    throw Error(ErrorKind::key, context_ + ": " + problem);
  }

 private:
  std::span<const std::uint8_t> rest_;
  std::string context_;
};

inline void append_uint32(std::vector<std::uint8_t>& out, std::uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<std::uint8_t>(value >> shift));
  }
}

inline void append_string(std::vector<std::uint8_t>& out, std::span<const std::uint8_t> bytes) {
  append_uint32(out, static_cast<std::uint32_t>(bytes.size()));
  out.insert(out.end(), bytes.begin(), bytes.end());
}

// W = string("ssh-ed25519") || string(pk): the blob in a .pub file, fingerprinted by
// ssh-keygen and used by age as the ssh-ed25519 tag input and tweak salt.
inline std::vector<std::uint8_t> ed25519_public_blob(const Ed25519PublicKey& public_key) {
  std::vector<std::uint8_t> blob;
  const auto type = kEd25519KeyType;
  append_string(blob, {reinterpret_cast<const std::uint8_t*>(type.data()), type.size()});
  append_string(blob, public_key);
  return blob;
}

// Upper bound on the bytes that `text_size` characters of base64 can decode to.
inline std::size_t max_decoded_size(std::size_t text_size) {
  return text_size / 4 * 3 + 3;
}

// Decodes ordinary padded base64 as found in .pub files and PEM bodies, skipping the
// characters in `ignore` (line breaks in a PEM body). Returns false for malformed input.
inline bool decode_base64_padded(std::string_view text, const char* ignore,
                                 std::span<std::uint8_t> out, std::size_t& decoded_size) {
  return is_ascii(text) &&
         sodium_base642bin(out.data(), out.size(), text.data(), text.size(), ignore, &decoded_size,
                           nullptr, sodium_base64_VARIANT_ORIGINAL) == 0;
}

// Key types that are valid SSH keys but that secretfs cannot use, so that callers can
// answer "unsupported" rather than "malformed".
inline bool is_other_ssh_key_type(std::string_view type) {
  return type == "ssh-rsa" || type == "ssh-dss" || type.starts_with("ecdsa-sha2-") ||
         type.starts_with("sk-") || type.starts_with("ssh-ed448") ||
         type.find("-cert-v01@openssh.com") != std::string_view::npos;
}

}  // namespace secretfs::age::ssh_wire
