#include "secretfs/age/scrypt.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "secretfs/age/error.hpp"

using namespace secretfs::age;
using secretfs::SecretBytes;

namespace {

// Cheap enough for unit tests (1 MiB); the format is the same at any work factor.
constexpr int kTestLogN = 10;
const std::vector<std::uint8_t> kFileKey(16, 0x5a);

SecretBytes passphrase(std::string_view text) {
  return SecretBytes::copy_of({reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
}

Stanza wrapped(std::string_view text) {
  return ScryptRecipient(passphrase(text), kTestLogN).wrap(kFileKey);
}

std::optional<ErrorKind> unwrap_error(const std::vector<Stanza>& stanzas) {
  try {
    ScryptIdentity(passphrase("hunter2")).unwrap(stanzas);
  } catch (const Error& error) {
    return error.kind();
  }
  return std::nullopt;
}

std::optional<ErrorKind> with_work_factor(const std::string& log_n) {
  auto stanza = wrapped("hunter2");
  stanza.args[1] = log_n;
  return unwrap_error({stanza});
}

}  // namespace

TEST_CASE("a passphrase stanza opens with the same passphrase only") {
  const auto stanza = wrapped("hunter2");
  CHECK(stanza.type == "scrypt");
  REQUIRE(stanza.args.size() == 2);
  CHECK(stanza.args[0].size() == 22);
  CHECK(stanza.args[1] == "10");
  CHECK(stanza.body.size() == 32);

  const auto file_key = ScryptIdentity(passphrase("hunter2")).unwrap(std::vector<Stanza>{stanza});
  REQUIRE(file_key);
  CHECK(std::vector<std::uint8_t>(file_key->span().begin(), file_key->span().end()) == kFileKey);
  CHECK_FALSE(ScryptIdentity(passphrase("hunter3")).unwrap(std::vector<Stanza>{stanza}));
}

TEST_CASE("a passphrase identity ignores files without scrypt stanzas") {
  CHECK_FALSE(ScryptIdentity(passphrase("x")).unwrap(std::vector<Stanza>{{"X25519", {}, {}}}));
}

TEST_CASE("an scrypt stanza must be alone") {
  const auto stanza = wrapped("hunter2");
  CHECK(unwrap_error({stanza, stanza}) == ErrorKind::header);
  CHECK(unwrap_error({Stanza{"X25519", {"a"}, {}}, stanza}) == ErrorKind::header);
  CHECK_FALSE(unwrap_error({stanza}).has_value());
}

TEST_CASE("scrypt arguments are checked before scrypt runs") {
  auto stanza = wrapped("hunter2");

  auto extra = stanza;
  extra.args.push_back("x");
  CHECK(unwrap_error({extra}) == ErrorKind::header);

  auto short_salt = stanza;
  short_salt.args[0] = encode_base64_unpadded(std::vector<std::uint8_t>(15, 1));
  CHECK(unwrap_error({short_salt}) == ErrorKind::header);

  auto padded_salt = stanza;
  padded_salt.args[0] += "==";
  CHECK(unwrap_error({padded_salt}) == ErrorKind::header);

  auto long_body = stanza;
  long_body.body.push_back(0);
  CHECK(unwrap_error({long_body}) == ErrorKind::header);
}

TEST_CASE("the work factor is a plain decimal within the cap") {
  for (const std::string bad : {"", "0", "010", "0xa", "+10", "-10", "10 ", "1e1", "10x", "x10",
                                "99999999999999999999", "23", "64"}) {
    CAPTURE(bad);
    CHECK(with_work_factor(bad) == ErrorKind::header);
  }
  CHECK_FALSE(with_work_factor("10").has_value());
}

TEST_CASE("a lower cap refuses work factors above it") {
  const auto stanza = wrapped("hunter2");
  CHECK_THROWS_AS(
      ScryptIdentity(passphrase("hunter2"), kTestLogN - 1).unwrap(std::vector<Stanza>{stanza}),
      Error);
}

TEST_CASE("a passphrase recipient needs a work factor within the cap") {
  CHECK_THROWS_AS(ScryptRecipient(passphrase("x"), 0), Error);
  CHECK_THROWS_AS(ScryptRecipient(passphrase("x"), kMaxScryptLogN + 1), Error);
  CHECK(ScryptRecipient(passphrase("x")).describe() == "scrypt passphrase");
}
