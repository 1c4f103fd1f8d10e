#include "x25519_wrap.hpp"

#include <sodium.h>

#include "secretfs/age/error.hpp"

namespace secretfs::age {

namespace {

constexpr std::array<std::uint8_t, crypto_aead_chacha20poly1305_ietf_NPUBBYTES> kZeroNonce{};

static_assert(kCurve25519Size == crypto_scalarmult_BYTES);
static_assert(kCurve25519Size == crypto_scalarmult_SCALARBYTES);

}  // namespace

std::string stanza_name(std::size_t index) {
  return "stanza " + std::to_string(index + 1);
}

Curve25519Point x25519_public_key(std::span<const std::uint8_t> scalar) {
  initialize_sodium();
  Curve25519Point point{};
  crypto_scalarmult_base(point.data(), scalar.data());
  return point;
}

std::optional<SecretBytes> x25519_shared_secret(std::span<const std::uint8_t> scalar,
                                                std::span<const std::uint8_t> point) {
  initialize_sodium();
  SecretBytes shared(kCurve25519Size);
  // libsodium returns -1 exactly when the result is all zero.
  if (crypto_scalarmult(shared.data(), scalar.data(), point.data()) != 0) {
    return std::nullopt;
  }
  return shared;
}

Curve25519Point decode_share(const Stanza& stanza, std::size_t argument, std::size_t index) {
  const auto where = stanza_name(index) + ": " + stanza.type + " share";
  std::vector<std::uint8_t> bytes;
  if (!decode_base64_unpadded(stanza.args.at(argument), bytes)) {
    throw Error(ErrorKind::header, where + " is not canonical unpadded base64");
  }
  if (bytes.size() != kCurve25519Size) {
    throw Error(ErrorKind::header,
                where + " is " + std::to_string(bytes.size()) + " bytes, want 32");
  }
  Curve25519Point share{};
  std::copy(bytes.begin(), bytes.end(), share.begin());
  return share;
}

void require_wrapped_file_key(const Stanza& stanza, std::size_t index) {
  if (stanza.body.size() != kWrappedFileKeySize) {
    throw Error(ErrorKind::header, stanza_name(index) + ": " + stanza.type + " body is " +
                                       std::to_string(stanza.body.size()) + " bytes, want 32");
  }
}

std::vector<std::uint8_t> seal_file_key(const SecretBytes& wrap_key,
                                        std::span<const std::uint8_t> file_key) {
  std::vector<std::uint8_t> body(file_key.size() + kTagSize);
  crypto_aead_chacha20poly1305_ietf_encrypt(body.data(), nullptr, file_key.data(), file_key.size(),
                                            nullptr, 0, nullptr, kZeroNonce.data(),
                                            wrap_key.data());
  return body;
}

std::optional<SecretBytes> open_file_key(const SecretBytes& wrap_key,
                                         std::span<const std::uint8_t> body) {
  if (body.size() != kWrappedFileKeySize) {
    return std::nullopt;
  }
  SecretBytes file_key(kFileKeySize);
  if (crypto_aead_chacha20poly1305_ietf_decrypt(file_key.data(), nullptr, nullptr, body.data(),
                                                body.size(), nullptr, 0, kZeroNonce.data(),
                                                wrap_key.data()) != 0) {
    return std::nullopt;
  }
  return file_key;
}

}  // namespace secretfs::age
