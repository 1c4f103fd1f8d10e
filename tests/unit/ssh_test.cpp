#include "secretfs/age/ssh.hpp"

#include <sodium.h>

#include <catch2/catch.hpp>

#include "secretfs/age/error.hpp"
#include "secretfs/age/format.hpp"
#include "secretfs/age/x25519.hpp"
#include "ssh_test_support.hpp"

using namespace secretfs;
using namespace secretfs::age;
using namespace secretfs::age::test;
using Catch::Matchers::Contains;

namespace {

constexpr std::string_view kSource = "/keys/id";

struct SshKey {
  std::unique_ptr<SshEd25519Identity> identity;
  std::unique_ptr<SshEd25519Recipient> recipient;
  std::string public_line;  // the .pub file's line without its newline
  std::string fingerprint;  // "SHA256:..." from ssh-keygen -l
};

SshKey make_key(const TempDir& dir, std::string_view name) {
  const auto path = make_ssh_key(dir, name);
  const auto public_path = path.string() + ".pub";
  SshKey key;
  key.identity = parse_openssh_private_key(read_text(path), kSource);
  key.public_line = trim_newline(read_text(public_path));
  key.recipient = SshEd25519Recipient::parse(key.public_line);
  key.fingerprint = ssh_fingerprint(public_path);
  return key;
}

std::vector<std::uint8_t> random_file_key() {
  std::vector<std::uint8_t> file_key(kFileKeySize);
  randombytes_buf(file_key.data(), file_key.size());
  return file_key;
}

std::vector<std::uint8_t> as_vector(const SecretBytes& bytes) {
  return {bytes.data(), bytes.data() + bytes.size()};
}

// The age tag: the first four bytes of SHA-256(W), which is what the ssh-keygen fingerprint
// is the base64 of, so this derives the tag without using any code under test.
std::string expected_tag(const std::string& fingerprint) {
  const std::string digest_base64 = fingerprint.substr(std::string_view("SHA256:").size()) + "=";
  const auto digest = base64_decode(digest_base64);
  return base64_encode(std::span(digest).first(4)).substr(0, 6);
}

std::string base64_unpadded(std::span<const std::uint8_t> bytes) {
  std::string text = base64_encode(bytes);
  while (text.ends_with('=')) {
    text.pop_back();
  }
  return text;
}

void require_header_error(const SshEd25519Identity& identity, const Stanza& stanza,
                          const std::string& detail) {
  const std::vector<Stanza> stanzas{stanza};
  try {
    identity.unwrap(stanzas);
    FAIL("the stanza was accepted");
  } catch (const Error& error) {
    CHECK(error.kind() == ErrorKind::header);
    CHECK_THAT(error.what(), Contains("stanza 1: ssh-ed25519"));
    CHECK_THAT(error.what(), Contains(detail));
  }
}

// "ssh-ed25519 <base64 of blob>" for a hand-made wire blob.
std::string public_line_of(std::span<const std::uint8_t> blob) {
  return "ssh-ed25519 " + base64_encode(blob);
}

// string(type) || string(key_size bytes of 0x42), with lengths below 256.
std::vector<std::uint8_t> wire_blob(std::string_view type, std::size_t key_size) {
  std::string blob;
  blob += std::string(3, '\0') + static_cast<char>(type.size()) + std::string(type);
  blob += std::string(3, '\0') + static_cast<char>(key_size) + std::string(key_size, '\x42');
  return {blob.begin(), blob.end()};
}

void require_recipient_refused(const std::string& line, ErrorKind kind, const std::string& detail) {
  try {
    SshEd25519Recipient::parse(line);
    FAIL("the recipient was accepted");
  } catch (const Error& error) {
    CHECK(error.kind() == kind);
    CHECK_THAT(error.what(), Contains(detail));
  }
}

}  // namespace

TEST_CASE("ssh-ed25519 recipients parse from .pub lines and describe themselves", "[ssh]") {
  TempDir dir;
  const auto key = make_key(dir, "id");
  const std::string without_comment = key.public_line.substr(0, key.public_line.rfind(' '));

  CHECK(key.recipient->describe() == without_comment);
  CHECK(SshEd25519Recipient::parse(without_comment)->describe() == without_comment);
  CHECK(SshEd25519Recipient::parse(without_comment + "\tcomment with spaces")->describe() ==
        without_comment);
}

TEST_CASE("other SSH public key types are unsupported and named", "[ssh]") {
  TempDir dir;
  const auto rsa = make_ssh_key(dir, "rsa", "rsa", "", "-b 2048");
  const auto ecdsa = make_ssh_key(dir, "ecdsa", "ecdsa");

  require_recipient_refused(read_text(rsa.string() + ".pub"), ErrorKind::unsupported,
                            "SSH key type ssh-rsa is not supported");
  require_recipient_refused(trim_newline(read_text(ecdsa.string() + ".pub")),
                            ErrorKind::unsupported,
                            "SSH key type ecdsa-sha2-nistp256 is not supported");
  require_recipient_refused("sk-ssh-ed25519@openssh.com AAAA", ErrorKind::unsupported,
                            "sk-ssh-ed25519@openssh.com");
}

TEST_CASE("malformed ssh-ed25519 public keys are key errors", "[ssh]") {
  SECTION("junk") {
    require_recipient_refused("hello world", ErrorKind::key, "not an ssh-ed25519 public key");
  }
  SECTION("type without a key") {
    require_recipient_refused("ssh-ed25519", ErrorKind::key, "not an ssh-ed25519 public key");
  }
  SECTION("bad base64") {
    require_recipient_refused("ssh-ed25519 AAAA*AAA", ErrorKind::key, "not valid base64");
  }
  SECTION("inner type differs") {
    require_recipient_refused(public_line_of(wire_blob("ssh-rsa", 32)), ErrorKind::key,
                              "encodes key type \"ssh-rsa\", want ssh-ed25519");
  }
  SECTION("short key") {
    require_recipient_refused(public_line_of(wire_blob("ssh-ed25519", 31)), ErrorKind::key,
                              "key is 31 bytes, want 32");
  }
  SECTION("trailing bytes") {
    auto blob = wire_blob("ssh-ed25519", 32);
    blob.push_back(0);
    require_recipient_refused(public_line_of(blob), ErrorKind::key, "1 trailing bytes");
  }
  SECTION("truncated blob") {
    auto blob = wire_blob("ssh-ed25519", 32);
    blob.resize(blob.size() - 1);
    require_recipient_refused(public_line_of(blob), ErrorKind::key,
                              "key is 32 bytes but only 31 remain");
  }
  SECTION("a small-order point") {
    // y = 1 is the neutral element: a valid encoding that has no usable Montgomery form.
    std::array<std::uint8_t, 32> neutral{1};
    CHECK_THROWS_MATCHES(
        SshEd25519Recipient{neutral}, Error,
        Catch::Predicate<Error>([](const Error& e) { return e.kind() == ErrorKind::key; }));
  }
}

TEST_CASE("wrap writes the stanza age writes and unwrap recovers the file key", "[ssh]") {
  TempDir dir;
  const auto key = make_key(dir, "id");
  const auto file_key = random_file_key();

  const Stanza stanza = key.recipient->wrap(file_key);
  CHECK(stanza.type == "ssh-ed25519");
  REQUIRE(stanza.args.size() == 2);
  CHECK(stanza.args[0] == expected_tag(key.fingerprint));
  CHECK(stanza.args[1].size() == 43);  // 32 bytes, unpadded
  CHECK(stanza.body.size() == 32);

  const std::vector<Stanza> stanzas{stanza};
  const auto unwrapped = key.identity->unwrap(stanzas);
  REQUIRE(unwrapped.has_value());
  CHECK(as_vector(*unwrapped) == file_key);

  // A fresh ephemeral share every time.
  CHECK(key.recipient->wrap(file_key).args[1] != stanza.args[1]);
}

TEST_CASE("unwrap skips stanzas for other keys and other types", "[ssh]") {
  TempDir dir;
  const auto mine = make_key(dir, "mine");
  const auto other = make_key(dir, "other");
  const auto file_key = random_file_key();

  const Stanza grease{.type = "ssh-ed25519-grease", .args = {"x"}, .body = {}};
  const Stanza x25519{.type = "X25519", .args = {"abc"}, .body = {1, 2, 3}};
  const std::vector<Stanza> not_mine{grease, x25519, other.recipient->wrap(file_key)};
  CHECK_FALSE(mine.identity->unwrap(not_mine).has_value());

  auto with_mine = not_mine;
  with_mine.push_back(mine.recipient->wrap(file_key));
  const auto unwrapped = mine.identity->unwrap(with_mine);
  REQUIRE(unwrapped.has_value());
  CHECK(as_vector(*unwrapped) == file_key);
}

TEST_CASE("malformed ssh-ed25519 stanzas are header errors", "[ssh]") {
  TempDir dir;
  const auto key = make_key(dir, "id");
  const Stanza good = key.recipient->wrap(random_file_key());

  SECTION("a tampered body under our tag does not authenticate") {
    Stanza stanza = good;
    stanza.body[0] ^= 0x01;
    require_header_error(*key.identity, stanza, "does not authenticate");
  }
  SECTION("a share from another wrap under our tag does not authenticate") {
    Stanza stanza = good;
    stanza.args[1] = key.recipient->wrap(random_file_key()).args[1];
    require_header_error(*key.identity, stanza, "does not authenticate");
  }
  SECTION("one argument") {
    Stanza stanza = good;
    stanza.args.pop_back();
    require_header_error(*key.identity, stanza, "has 1 arguments, want 2");
  }
  SECTION("three arguments") {
    Stanza stanza = good;
    stanza.args.push_back("extra");
    require_header_error(*key.identity, stanza, "has 3 arguments, want 2");
  }
  SECTION("a 31-byte share, even under another key's tag") {
    Stanza stanza = good;
    stanza.args[0] = "AAAAAA";
    stanza.args[1] = base64_unpadded(std::vector<std::uint8_t>(31, 9));
    require_header_error(*key.identity, stanza, "share is 31 bytes, want 32");
  }
  SECTION("a padded share") {
    Stanza stanza = good;
    stanza.args[1] += "=";
    require_header_error(*key.identity, stanza, "share is not canonical unpadded base64");
  }
  SECTION("a 33-byte body") {
    Stanza stanza = good;
    stanza.body.push_back(0);
    require_header_error(*key.identity, stanza, "body is 33 bytes, want 32");
  }
  SECTION("a low-order share under our tag") {
    Stanza stanza = good;
    stanza.args[1] = base64_unpadded(std::vector<std::uint8_t>(32, 0));
    require_header_error(*key.identity, stanza, "share is a low-order point");
  }
}

TEST_CASE("the identity describes itself like ssh-keygen -l", "[ssh]") {
  TempDir dir;
  const auto key = make_key(dir, "id");
  CHECK(key.identity->describe() == "ssh-ed25519 " + key.fingerprint + " (test@secretfs)");

  SshEd25519Identity no_comment(SecretBytes(32), "");
  CHECK(no_comment.describe().starts_with("ssh-ed25519 SHA256:"));
  CHECK(no_comment.describe().find('(') == std::string::npos);

  SshEd25519Identity control_characters(SecretBytes(32), "a\nb\x1b[31m\xc3\xa9");
  const std::string shown = " (a?b?[31m?\x3f)";  // the escape keeps "??)" from being a trigraph
  CHECK(control_characters.describe().ends_with(shown));
}

TEST_CASE("a seed of the wrong size is a key error", "[ssh]") {
  CHECK_THROWS_MATCHES(SshEd25519Identity(SecretBytes(31), "c"), Error,
                       Catch::Predicate<Error>([](const Error& e) {
                         return e.kind() == ErrorKind::key &&
                                std::string(e.what()) == "ssh-ed25519 seed is 31 bytes, want 32";
                       }));
}

TEST_CASE("the derived X25519 identity opens stanzas for the ssh-to-age recipient", "[ssh]") {
  TempDir dir;
  const auto key = make_key(dir, "id");
  const auto derived = key.identity->derived_x25519();
  const auto* derived_x25519 = dynamic_cast<const X25519Identity*>(derived.get());
  REQUIRE(derived_x25519 != nullptr);

  // The ssh-to-age recipient is the Montgomery form of the Ed25519 public key.
  const auto wire = base64_decode(key.public_line.substr(12, key.public_line.rfind(' ') - 12));
  std::array<std::uint8_t, 32> ed25519{};
  std::copy(wire.end() - 32, wire.end(), ed25519.begin());
  std::array<std::uint8_t, 32> montgomery{};
  REQUIRE(crypto_sign_ed25519_pk_to_curve25519(montgomery.data(), ed25519.data()) == 0);
  const X25519Recipient ssh_to_age(montgomery);
  CHECK(derived_x25519->recipient()->describe() == ssh_to_age.describe());

  const auto file_key = random_file_key();
  const std::vector<Stanza> stanzas{ssh_to_age.wrap(file_key)};
  const auto unwrapped = derived->unwrap(stanzas);
  REQUIRE(unwrapped.has_value());
  CHECK(as_vector(*unwrapped) == file_key);

  // The ssh identity itself does not claim X25519 stanzas.
  CHECK_FALSE(key.identity->unwrap(stanzas).has_value());
}
