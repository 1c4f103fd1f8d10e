// Native age keys. A recipient is a Curve25519 point, an identity the scalar behind it; each
// stanza carries a fresh ephemeral share and the file key sealed under a key derived from
// the Diffie-Hellman result.
#include "secretfs/age/x25519.hpp"

#include <sodium.h>

#include "hkdf.hpp"
#include "secretfs/age/bech32.hpp"
#include "secretfs/age/error.hpp"
#include "x25519_wrap.hpp"

namespace secretfs::age {

namespace {

constexpr std::string_view kStanzaType = "X25519";
constexpr std::string_view kLabel = "age-encryption.org/v1/X25519";
constexpr std::string_view kRecipientHrp = "age";
constexpr std::string_view kIdentityHrp = "AGE-SECRET-KEY-";

// HKDF(ikm = shared secret, salt = share || recipient, info = label).
SecretBytes wrap_key(const SecretBytes& shared, const Curve25519Point& share,
                     const Curve25519Point& recipient) {
  std::array<std::uint8_t, 2 * kCurve25519Size> salt{};
  std::copy(share.begin(), share.end(), salt.begin());
  std::copy(recipient.begin(), recipient.end(), salt.begin() + kCurve25519Size);
  return hkdf_sha256(shared.span(), salt, kLabel);
}

std::string encode_recipient(const Curve25519Point& public_key) {
  return std::string(bech32::encode(kRecipientHrp, public_key).view());
}

}  // namespace

X25519Recipient::X25519Recipient(const std::array<std::uint8_t, kX25519KeySize>& public_key)
    : public_key_(public_key) {}

std::unique_ptr<X25519Recipient> X25519Recipient::parse(std::string_view text) {
  // The HRP is compared as written: age accepts only the lowercase spelling.
  const auto decoded = bech32::decode(text);
  if (!decoded || decoded->hrp != kRecipientHrp || decoded->data.size() != kX25519KeySize) {
    throw Error(ErrorKind::key, "\"" + std::string(text) + "\" is not an age1 X25519 recipient");
  }
  std::array<std::uint8_t, kX25519KeySize> public_key{};
  std::copy(decoded->data.span().begin(), decoded->data.span().end(), public_key.begin());
  return std::make_unique<X25519Recipient>(public_key);
}

Stanza X25519Recipient::wrap(std::span<const std::uint8_t> file_key) const {
  initialize_sodium();
  SecretBytes ephemeral(kCurve25519Size);
  randombytes_buf(ephemeral.data(), ephemeral.size());
  const auto share = x25519_public_key(ephemeral.span());
  const auto shared = x25519_shared_secret(ephemeral.span(), public_key_);
  if (!shared) {
    throw Error(ErrorKind::key, "recipient " + describe() + " is a low-order point");
  }

  Stanza stanza;
  stanza.type = kStanzaType;
  stanza.args.push_back(encode_base64_unpadded(share));
  stanza.body = seal_file_key(wrap_key(*shared, share, public_key_), file_key);
  return stanza;
}

std::string X25519Recipient::describe() const {
  return encode_recipient(public_key_);
}

X25519Identity::X25519Identity(SecretBytes scalar) : scalar_(std::move(scalar)) {
  if (scalar_.size() != kX25519KeySize) {
    throw Error(ErrorKind::key,
                "X25519 identity is " + std::to_string(scalar_.size()) + " bytes, want 32");
  }
  public_key_ = x25519_public_key(scalar_.span());
}

std::unique_ptr<X25519Identity> X25519Identity::generate() {
  initialize_sodium();
  SecretBytes scalar(kX25519KeySize);
  randombytes_buf(scalar.data(), scalar.size());
  return std::make_unique<X25519Identity>(std::move(scalar));
}

std::unique_ptr<X25519Identity> X25519Identity::parse(std::string_view text) {
  // The text is a secret: the message must not quote it.
  auto decoded = bech32::decode(text);
  if (!decoded || decoded->hrp != kIdentityHrp || decoded->data.size() != kX25519KeySize) {
    throw Error(ErrorKind::key, "not an AGE-SECRET-KEY-1 identity (uppercase Bech32, 32 bytes)");
  }
  return std::make_unique<X25519Identity>(std::move(decoded->data));
}

SecretBytes X25519Identity::encode() const {
  return bech32::encode(kIdentityHrp, scalar_.span());
}

std::unique_ptr<X25519Recipient> X25519Identity::recipient() const {
  return std::make_unique<X25519Recipient>(public_key_);
}

std::optional<SecretBytes> X25519Identity::unwrap(std::span<const Stanza> stanzas) const {
  for (std::size_t index = 0; index < stanzas.size(); ++index) {
    const auto& stanza = stanzas[index];
    if (stanza.type != kStanzaType) {
      continue;
    }
    if (stanza.args.size() != 1) {
      throw Error(ErrorKind::header, stanza_name(index) + ": X25519 stanza has " +
                                         std::to_string(stanza.args.size()) + " arguments, want 1");
    }
    const auto share = decode_share(stanza, 0, index);
    require_wrapped_file_key(stanza, index);
    const auto shared = x25519_shared_secret(scalar_.span(), share);
    if (!shared) {
      throw Error(ErrorKind::header, stanza_name(index) + ": X25519 share is a low-order point");
    }
    // A body that does not open was sealed for another recipient.
    if (auto file_key = open_file_key(wrap_key(*shared, share, public_key_), stanza.body)) {
      return file_key;
    }
  }
  return std::nullopt;
}

std::string X25519Identity::describe() const {
  return "X25519 " + encode_recipient(public_key_);
}

}  // namespace secretfs::age
