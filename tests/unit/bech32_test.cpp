#include "secretfs/age/bech32.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "secretfs/age/error.hpp"
#include "secretfs/age/x25519.hpp"

using namespace secretfs::age;

namespace {

// The age specification's example: the identity with scalar 32 x 0x42 and its recipient.
const std::string kSpecIdentity =
    "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX";
const std::string kSpecRecipient = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj";
constexpr std::uint8_t kSpecScalarByte = 0x42;

std::string lowercase(std::string text) {
  for (auto& c : text) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return text;
}

std::string uppercase(std::string text) {
  for (auto& c : text) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return text;
}

}  // namespace

TEST_CASE("Bech32 reproduces the age specification's key pair") {
  const std::vector<std::uint8_t> scalar(kX25519KeySize, kSpecScalarByte);
  CHECK(bech32::encode("AGE-SECRET-KEY-", scalar).view() == kSpecIdentity);

  const auto decoded = bech32::decode(kSpecIdentity);
  REQUIRE(decoded);
  CHECK(decoded->hrp == "AGE-SECRET-KEY-");
  CHECK(std::vector<std::uint8_t>(decoded->data.span().begin(), decoded->data.span().end()) ==
        scalar);

  const auto identity = X25519Identity::parse(kSpecIdentity);
  CHECK(identity->recipient()->describe() == kSpecRecipient);
  CHECK(identity->describe() == "X25519 " + kSpecRecipient);
  CHECK(identity->encode().view() == kSpecIdentity);
}

TEST_CASE("Bech32 accepts the BIP-173 valid strings") {
  for (const std::string text :
       {"A12UEL5L", "a12uel5l", "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
        "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w", "?1ezyfcl"}) {
    CAPTURE(text);
    CHECK(bech32::decode(text).has_value());
  }
  CHECK(bech32::decode("A12UEL5L")->hrp == "A");
  CHECK(bech32::decode("abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw")->data.size() == 20);
}

TEST_CASE("Bech32 rejects the BIP-173 invalid strings and mixed case") {
  for (const std::string text : {"\x20"
                                 "1nwldj5",
                                 "\x7f"
                                 "1axkwrx",
                                 "pzry9x0s0muk", "1pzry9x0s0muk", "x1b4n0q5v", "li1dgmt3",
                                 "de1lg7wt\xff", "A1G7SGD8", "10a06t8", "1qzzfhee", "A12uEL5L"}) {
    CAPTURE(text);
    CHECK_FALSE(bech32::decode(text).has_value());
  }
}

TEST_CASE("Bech32 rejects a changed checksum character and bad padding") {
  auto broken = kSpecRecipient;
  broken.back() = broken.back() == 'q' ? 'p' : 'q';
  CHECK_FALSE(bech32::decode(broken).has_value());
  // Valid checksums over bad data: a lone 5-bit group, and two groups whose two padding
  // bits are not zero. The last string is the same with zero padding: one zero byte.
  CHECK_FALSE(bech32::decode("age1psm9pam").has_value());
  CHECK_FALSE(bech32::decode("age1qpu0j2ex").has_value());
  REQUIRE(bech32::decode("age1qqpexly5").has_value());
  CHECK(bech32::decode("age1qqpexly5")->data.size() == 1);
}

TEST_CASE("Bech32 round-trips every length and keeps the case of the HRP") {
  std::vector<std::uint8_t> data;
  for (int length = 0; length < 40; ++length) {
    const auto lower = bech32::encode("age", data);
    const auto upper = bech32::encode("AGE", data);
    CHECK(std::string(upper.view()) == uppercase(std::string(lower.view())));
    const auto decoded = bech32::decode(lower.view());
    REQUIRE(decoded);
    CHECK(std::vector<std::uint8_t>(decoded->data.span().begin(), decoded->data.span().end()) ==
          data);
    data.push_back(static_cast<std::uint8_t>(length * 37));
  }
}

TEST_CASE("age keys are case-sensitive by kind") {
  CHECK_THROWS_AS(X25519Identity::parse(lowercase(kSpecIdentity)), Error);
  CHECK_THROWS_AS(X25519Recipient::parse(uppercase(kSpecRecipient)), Error);
  CHECK_THROWS_AS(X25519Recipient::parse(kSpecIdentity), Error);
  CHECK_THROWS_AS(X25519Identity::parse(kSpecRecipient), Error);
  CHECK(X25519Recipient::parse(kSpecRecipient)->describe() == kSpecRecipient);
}
