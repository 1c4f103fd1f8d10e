// Native age keys: X25519 recipients "age1…" and identities "AGE-SECRET-KEY-1…" (Bech32).
#pragma once

#include <array>
#include <memory>
#include <string>
#include <string_view>

#include "secretfs/age/identity.hpp"

namespace secretfs::age {

inline constexpr std::size_t kX25519KeySize = 32;

class X25519Recipient final : public Recipient {
 public:
  explicit X25519Recipient(const std::array<std::uint8_t, kX25519KeySize>& public_key);

  // Parses "age1…"; throws Error(key) when it is not a valid lowercase age1 Bech32 string.
  static std::unique_ptr<X25519Recipient> parse(std::string_view text);

  Stanza wrap(std::span<const std::uint8_t> file_key) const override;
  std::string describe() const override;  // the "age1…" string

 private:
  std::array<std::uint8_t, kX25519KeySize> public_key_;
};

class X25519Identity final : public Identity {
 public:
  // Takes a 32-byte scalar (clamped or not: X25519 clamps it).
  explicit X25519Identity(SecretBytes scalar);

  static std::unique_ptr<X25519Identity> generate();

  // Parses "AGE-SECRET-KEY-1…" (uppercase only, as age does); throws Error(key).
  static std::unique_ptr<X25519Identity> parse(std::string_view text);

  // "AGE-SECRET-KEY-1…", in secure memory.
  SecretBytes encode() const;

  std::unique_ptr<X25519Recipient> recipient() const;

  std::optional<SecretBytes> unwrap(std::span<const Stanza> stanzas) const override;
  std::string describe() const override;  // "X25519 age1…"

 private:
  SecretBytes scalar_;
  std::array<std::uint8_t, kX25519KeySize> public_key_{};
};

}  // namespace secretfs::age
