#include "secretfs/age/x25519.hpp"

#include <sodium.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "secretfs/age/error.hpp"

using namespace secretfs::age;
using secretfs::SecretBytes;

namespace {

const std::vector<std::uint8_t> kFileKey = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

std::vector<std::uint8_t> bytes_of(const SecretBytes& secret) {
  return {secret.span().begin(), secret.span().end()};
}

// The kind of error unwrap throws for `stanza`, or nullopt when it throws nothing.
std::optional<ErrorKind> unwrap_error(const Identity& identity, const Stanza& stanza) {
  try {
    identity.unwrap(std::vector<Stanza>{stanza});
  } catch (const Error& error) {
    return error.kind();
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("an X25519 stanza opens with its identity only") {
  const auto identity = X25519Identity::generate();
  const auto other = X25519Identity::generate();
  const auto stanza = identity->recipient()->wrap(kFileKey);

  CHECK(stanza.type == "X25519");
  REQUIRE(stanza.args.size() == 1);
  CHECK(stanza.args[0].size() == 43);
  CHECK(stanza.body.size() == 32);

  const auto file_key = identity->unwrap(std::vector<Stanza>{stanza});
  REQUIRE(file_key);
  CHECK(bytes_of(*file_key) == kFileKey);
  CHECK_FALSE(other->unwrap(std::vector<Stanza>{stanza}).has_value());
}

TEST_CASE("an X25519 identity finds its stanza among others") {
  const auto identity = X25519Identity::generate();
  const auto other = X25519Identity::generate();
  const std::vector<Stanza> stanzas = {other->recipient()->wrap(kFileKey),
                                       Stanza{"x25519", {"lowercase"}, {}},
                                       identity->recipient()->wrap(kFileKey)};
  const auto file_key = identity->unwrap(stanzas);
  REQUIRE(file_key);
  CHECK(bytes_of(*file_key) == kFileKey);
}

TEST_CASE("two wraps for one recipient use fresh shares") {
  const auto recipient = X25519Identity::generate()->recipient();
  CHECK(recipient->wrap(kFileKey).args != recipient->wrap(kFileKey).args);
}

TEST_CASE("malformed X25519 stanzas are header failures") {
  const auto identity = X25519Identity::generate();
  const auto good = identity->recipient()->wrap(kFileKey);

  auto extra = good;
  extra.args.push_back("x");
  CHECK(unwrap_error(*identity, extra) == ErrorKind::header);

  auto none = good;
  none.args.clear();
  CHECK(unwrap_error(*identity, none) == ErrorKind::header);

  auto short_share = good;
  short_share.args[0] = encode_base64_unpadded(std::vector<std::uint8_t>(31, 9));
  CHECK(unwrap_error(*identity, short_share) == ErrorKind::header);

  auto long_share = good;
  long_share.args[0] = encode_base64_unpadded(std::vector<std::uint8_t>(33, 9));
  CHECK(unwrap_error(*identity, long_share) == ErrorKind::header);

  auto padded_share = good;
  padded_share.args[0] += "=";
  CHECK(unwrap_error(*identity, padded_share) == ErrorKind::header);

  auto long_body = good;
  long_body.body.push_back(0);
  CHECK(unwrap_error(*identity, long_body) == ErrorKind::header);

  auto short_body = good;
  short_body.body.pop_back();
  CHECK(unwrap_error(*identity, short_body) == ErrorKind::header);

  CHECK_FALSE(unwrap_error(*identity, good).has_value());
}

TEST_CASE("a share that makes the shared secret zero is a header failure") {
  const auto identity = X25519Identity::generate();
  auto stanza = identity->recipient()->wrap(kFileKey);
  stanza.args[0] = encode_base64_unpadded(std::vector<std::uint8_t>(32, 0));
  CHECK(unwrap_error(*identity, stanza) == ErrorKind::header);
}

TEST_CASE("a changed body is not a match but not an error either") {
  const auto identity = X25519Identity::generate();
  auto stanza = identity->recipient()->wrap(kFileKey);
  stanza.body[0] ^= 1;
  CHECK_FALSE(identity->unwrap(std::vector<Stanza>{stanza}).has_value());
}

TEST_CASE("X25519 identities round-trip through their text and need 32 bytes") {
  const auto identity = X25519Identity::generate();
  const auto text = identity->encode();
  CHECK(text.view().starts_with("AGE-SECRET-KEY-1"));
  CHECK(text.size() == 74);
  const auto again = X25519Identity::parse(text.view());
  CHECK(again->describe() == identity->describe());
  CHECK(identity->recipient()->describe().size() == 62);

  CHECK_THROWS_AS(X25519Identity(SecretBytes(31)), Error);
  CHECK_THROWS_AS(X25519Identity::parse(""), Error);
}

TEST_CASE("an unclamped scalar is accepted and clamped by X25519") {
  auto scalar = SecretBytes(32);
  for (std::size_t i = 0; i < scalar.size(); ++i) {
    scalar.data()[i] = 0xff;
  }
  auto clamped = SecretBytes::copy_of(scalar.span());
  clamped.data()[0] &= 0xf8;
  clamped.data()[31] = (clamped.data()[31] & 0x7f) | 0x40;

  const X25519Identity raw(std::move(scalar));
  const X25519Identity tidy(std::move(clamped));
  CHECK(raw.describe() == tidy.describe());
  const auto file_key = tidy.unwrap(std::vector<Stanza>{raw.recipient()->wrap(kFileKey)});
  REQUIRE(file_key);
  CHECK(bytes_of(*file_key) == kFileKey);
}
