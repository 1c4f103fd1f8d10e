#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "secretfs/age/error.hpp"
#include "secretfs/age/format.hpp"

using namespace secretfs::age;

namespace {

// 43 characters: the canonical encoding of 32 zero bytes.
const std::string kZeroMac = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
const std::string kVersion = "age-encryption.org/v1\n";
const std::string kStanza = "-> X25519 AAAA\nAAAA\n";
const std::string kMacLine = "--- " + kZeroMac + "\n";

std::vector<std::uint8_t> bytes_of(const std::string& text) {
  return {text.begin(), text.end()};
}

Header parse(const std::string& text) {
  return parse_header(bytes_of(text));
}

// The kind of error parse_header throws, checked to be a header failure.
bool fails(const std::string& text) {
  try {
    parse(text);
  } catch (const Error& error) {
    return error.kind() == ErrorKind::header;
  }
  return false;
}

}  // namespace

TEST_CASE("a well-formed header parses into stanzas, MAC and offsets") {
  const auto text = kVersion + kStanza + "-> grease !x\n\n" + kMacLine + "payload";
  const auto header = parse(text);

  REQUIRE(header.stanzas.size() == 2);
  CHECK(header.stanzas[0].type == "X25519");
  CHECK(header.stanzas[0].args == std::vector<std::string>{"AAAA"});
  CHECK(header.stanzas[0].body == std::vector<std::uint8_t>{0, 0, 0});
  CHECK(header.stanzas[1].type == "grease");
  CHECK(header.stanzas[1].args == std::vector<std::string>{"!x"});
  CHECK(header.stanzas[1].body.empty());
  CHECK(header.mac == std::array<std::uint8_t, kMacSize>{});
  CHECK(header.mac_input_size == text.find("---") + 3);
  CHECK(header.payload_offset == text.size() - std::string("payload").size());
}

TEST_CASE("a body of 48 bytes takes a full line and an empty one") {
  Stanza stanza{"t", {}, std::vector<std::uint8_t>(48, 0xff)};
  const auto text = encode_header_without_mac({stanza});
  CHECK(text == kVersion + "-> t\n" + std::string(64, '/') + "\n\n---");

  const auto header = parse(text + " " + kZeroMac + "\n");
  REQUIRE(header.stanzas.size() == 1);
  CHECK(header.stanzas[0] == stanza);
}

TEST_CASE("encoding reproduces a parsed header byte for byte") {
  const auto text = kVersion + kStanza + "-> a b c\n" + std::string(64, 'A') + "\nAA\n---";
  const auto header = parse(text + " " + kZeroMac + "\n");
  CHECK(encode_header_without_mac(header.stanzas) == text);
  CHECK(encode_mac_line(header.mac) == " " + kZeroMac + "\n");
}

TEST_CASE("the version line must be exact") {
  CHECK(fails(""));
  CHECK(fails("age-encryption.org/v2\n" + kStanza + kMacLine));
  CHECK(fails("age-encryption.org/v1\r\n" + kStanza + kMacLine));
  CHECK(fails("age-encryption.org/v1"));
}

TEST_CASE("stanza argument lines follow the grammar") {
  CHECK(fails(kVersion + "->\n\n" + kMacLine));              // no type
  CHECK(fails(kVersion + "-> \n\n" + kMacLine));             // empty type
  CHECK(fails(kVersion + "->  X25519\n\n" + kMacLine));      // double space
  CHECK(fails(kVersion + "-> X25519 \n\n" + kMacLine));      // trailing space
  CHECK(fails(kVersion + "->X25519\n\n" + kMacLine));        // no space
  CHECK(fails(kVersion + "-> X25519\r\n\n" + kMacLine));     // CR
  CHECK(fails(kVersion + "-> caf\xc3\xa9\n\n" + kMacLine));  // not ASCII
  CHECK(fails(kVersion + "- X25519\n\n" + kMacLine));        // not "->"
  CHECK_FALSE(fails(kVersion + "-> ~}|\n\n" + kMacLine));
}

TEST_CASE("stanza bodies are canonical and end with a short line") {
  CHECK(fails(kVersion + "-> t\n" + kMacLine));                                // no body line
  CHECK(fails(kVersion + "-> t\n" + std::string(64, 'A') + "\n" + kMacLine));  // no final line
  CHECK(fails(kVersion + "-> t\n" + std::string(68, 'A') + "\n\n" + kMacLine));
  CHECK(fails(kVersion + "-> t\nAB\n" + kMacLine));      // stray bits
  CHECK(fails(kVersion + "-> t\nAA==\n" + kMacLine));    // padding
  CHECK(fails(kVersion + "-> t\nAA\nAA\n" + kMacLine));  // second short line
  CHECK(fails(kVersion + "-> t\nAA\r\n" + kMacLine));
}

TEST_CASE("the MAC line is three dashes, one space and 43 canonical characters") {
  CHECK(fails(kVersion + kStanza));
  CHECK(fails(kVersion + kStanza + "---\n"));
  CHECK(fails(kVersion + kStanza + "---" + kZeroMac + "\n"));
  CHECK(fails(kVersion + kStanza + "---  " + kZeroMac + "\n"));
  CHECK(fails(kVersion + kStanza + "--- " + kZeroMac + " \n"));
  CHECK(fails(kVersion + kStanza + "--- " + kZeroMac.substr(1) + "\n"));
  CHECK(fails(kVersion + kStanza + "--- " + kZeroMac.substr(1) + "B\n"));  // stray bits
  CHECK(fails(kVersion + kStanza + "--- " + kZeroMac));                    // no LF
}

TEST_CASE("a header needs a stanza and stays within the size caps") {
  CHECK(fails(kVersion + kMacLine));

  std::string many = kVersion;
  for (std::size_t i = 0; i <= kMaxStanzas; ++i) {
    many += "-> t\n\n";
  }
  CHECK(fails(many + kMacLine));

  const auto huge = kVersion + "-> t " + std::string(kMaxHeaderSize, 'x') + "\n\n" + kMacLine;
  CHECK(fails(huge));

  std::string at_cap = kVersion;
  for (std::size_t i = 0; i < kMaxStanzas; ++i) {
    at_cap += "-> t\n\n";
  }
  CHECK(parse(at_cap + kMacLine).stanzas.size() == kMaxStanzas);
}

TEST_CASE("header errors name the stanza") {
  try {
    parse(kVersion + kStanza + "-> t\nAB\n" + kMacLine);
    FAIL("no error");
  } catch (const Error& error) {
    CHECK(std::string(error.what()) ==
          "header: stanza 2: body line 1 is not canonical unpadded base64");
  }
}
