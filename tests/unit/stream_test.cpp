#include "secretfs/age/stream.hpp"

#include <sodium.h>

#include <array>
#include <catch2/catch.hpp>
#include <vector>

#include "secretfs/age/error.hpp"

using namespace secretfs::age;

namespace {

constexpr std::size_t kChunkOverhead = kTagSize;
const std::array<std::uint8_t, 16> kFileKey = {'Y', 'E', 'L', 'L', 'O', 'W', ' ', 'S',
                                               'U', 'B', 'M', 'A', 'R', 'I', 'N', 'E'};

std::vector<std::uint8_t> random_bytes(std::size_t size) {
  secretfs::initialize_sodium();
  std::vector<std::uint8_t> bytes(size);
  if (!bytes.empty()) {  // an empty vector's data() may be null, which libsodium must not get
    randombytes_buf(bytes.data(), bytes.size());
  }
  return bytes;
}

ErrorKind failure_of(std::span<const std::uint8_t> payload) {
  try {
    decrypt_payload(kFileKey, payload);
  } catch (const Error& error) {
    return error.kind();
  }
  FAIL("the payload decrypted");
  return ErrorKind::io;
}

}  // namespace

TEST_CASE("payloads round-trip at chunk boundaries") {
  const std::size_t size =
      GENERATE(0, 1, kChunkSize - 1, kChunkSize, kChunkSize + 1, 3 * kChunkSize);
  CAPTURE(size);
  const auto plaintext = random_bytes(size);
  const auto payload = encrypt_payload(kFileKey, plaintext);

  const auto chunks = size == 0 ? 1 : (size + kChunkSize - 1) / kChunkSize;
  CHECK(payload.size() == kPayloadNonceSize + size + chunks * kChunkOverhead);
  CHECK(plaintext_size(payload.size()) == size);

  const auto decrypted = decrypt_payload(kFileKey, payload);
  CHECK(std::vector<std::uint8_t>(decrypted.span().begin(), decrypted.span().end()) == plaintext);
}

TEST_CASE("a given nonce gives the same payload every time") {
  const std::array<std::uint8_t, kPayloadNonceSize> nonce{1, 2, 3};
  const auto plaintext = random_bytes(kChunkSize + 5);
  CHECK(encrypt_payload(kFileKey, nonce, plaintext) == encrypt_payload(kFileKey, nonce, plaintext));
  CHECK(encrypt_payload(kFileKey, plaintext) != encrypt_payload(kFileKey, plaintext));
}

TEST_CASE("any changed byte makes the payload fail") {
  const std::size_t size = GENERATE(0, 1, kChunkSize, kChunkSize + 1, 3 * kChunkSize);
  CAPTURE(size);
  const auto payload = encrypt_payload(kFileKey, random_bytes(size));
  for (const std::size_t offset : {std::size_t{0}, kPayloadNonceSize, payload.size() - 1}) {
    auto tampered = payload;
    tampered[offset] ^= 1;
    CAPTURE(offset);
    CHECK(failure_of(tampered) == ErrorKind::payload);
  }
}

TEST_CASE("truncated, extended and chunkless payloads fail") {
  const auto payload = encrypt_payload(kFileKey, random_bytes(2 * kChunkSize));

  auto truncated = payload;
  truncated.resize(kPayloadNonceSize + kChunkSize + kChunkOverhead);  // the first chunk only
  CHECK(failure_of(truncated) == ErrorKind::payload);

  auto extended = payload;
  extended.push_back(0);
  CHECK(failure_of(extended) == ErrorKind::payload);

  const std::vector<std::uint8_t> nonce_only(kPayloadNonceSize);
  CHECK(failure_of(nonce_only) == ErrorKind::payload);

  const std::vector<std::uint8_t> short_nonce(kPayloadNonceSize - 1);
  CHECK(failure_of(short_nonce) == ErrorKind::header);
}

TEST_CASE("a wrong file key fails the payload") {
  const auto payload = encrypt_payload(kFileKey, random_bytes(10));
  auto other_key = kFileKey;
  other_key[0] ^= 1;
  CHECK_THROWS_MATCHES(
      decrypt_payload(other_key, payload), Error,
      Catch::Predicate<Error>([](const Error& e) { return e.kind() == ErrorKind::payload; }));
}

TEST_CASE("plaintext_size knows which payload sizes are possible") {
  const std::uint64_t full = kChunkSize + kChunkOverhead;
  CHECK_FALSE(plaintext_size(0).has_value());
  CHECK_FALSE(plaintext_size(kPayloadNonceSize - 1).has_value());
  CHECK_FALSE(plaintext_size(kPayloadNonceSize).has_value());  // no chunk
  CHECK_FALSE(plaintext_size(kPayloadNonceSize + kChunkOverhead - 1).has_value());
  CHECK(plaintext_size(kPayloadNonceSize + kChunkOverhead) == 0u);
  CHECK(plaintext_size(kPayloadNonceSize + kChunkOverhead + 1) == 1u);
  CHECK(plaintext_size(kPayloadNonceSize + full) == kChunkSize);
  CHECK(plaintext_size(kPayloadNonceSize + full + kChunkOverhead + 1) == kChunkSize + 1);
  // An empty chunk may only stand alone.
  CHECK_FALSE(plaintext_size(kPayloadNonceSize + full + kChunkOverhead).has_value());
  // A chunk shorter than its tag.
  CHECK_FALSE(plaintext_size(kPayloadNonceSize + full + kChunkOverhead - 1).has_value());
}
