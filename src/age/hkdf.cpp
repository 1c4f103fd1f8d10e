#include "hkdf.hpp"

#include <sodium.h>

namespace secretfs::age {

namespace {

// libsodium's HMAC takes a key pointer even for an empty key; an empty salt must not be
// passed as a null pointer.
const std::uint8_t* non_null(std::span<const std::uint8_t> bytes) {
  static const std::uint8_t kEmpty = 0;
  return bytes.empty() ? &kEmpty : bytes.data();
}

}  // namespace

SecretBytes hkdf_sha256(std::span<const std::uint8_t> ikm, std::span<const std::uint8_t> salt,
                        std::string_view info) {
  initialize_sodium();
  crypto_auth_hmacsha256_state state;

  // Extract: PRK = HMAC(salt, ikm). An empty salt gives the same HMAC key as RFC 5869's
  // "32 zero bytes", because HMAC pads short keys with zeros.
  SecretBytes prk(crypto_auth_hmacsha256_BYTES);
  crypto_auth_hmacsha256_init(&state, non_null(salt), salt.size());
  crypto_auth_hmacsha256_update(&state, non_null(ikm), ikm.size());
  crypto_auth_hmacsha256_final(&state, prk.data());

  // Expand, one block: T(1) = HMAC(PRK, info || 0x01) is all 32 bytes we ever need.
  static const std::uint8_t kFirstBlock = 0x01;
  SecretBytes okm(kHkdfOutputSize);
  crypto_auth_hmacsha256_init(&state, prk.data(), prk.size());
  crypto_auth_hmacsha256_update(&state, non_null(as_bytes(info)), info.size());
  crypto_auth_hmacsha256_update(&state, &kFirstBlock, 1);
  crypto_auth_hmacsha256_final(&state, okm.data());

  sodium_memzero(&state, sizeof state);
  return okm;
}

}  // namespace secretfs::age
