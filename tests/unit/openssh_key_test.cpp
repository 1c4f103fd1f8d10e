#include <catch2/catch.hpp>

#include "secretfs/age/error.hpp"
#include "secretfs/age/ssh.hpp"
#include "ssh_test_support.hpp"

using namespace secretfs::age;
using namespace secretfs::age::test;
using Catch::Matchers::Contains;

namespace {

constexpr std::string_view kSource = "/keys/host_key";

// Expects parse_openssh_private_key to throw `kind` with a message naming the source and
// containing `detail`.
void require_refused(const std::string& text, ErrorKind kind, const std::string& detail) {
  try {
    parse_openssh_private_key(text, kSource);
    FAIL("the key was accepted");
  } catch (const Error& error) {
    CHECK(error.kind() == kind);
    CHECK_THAT(error.what(), Contains(std::string(kSource)));
    CHECK_THAT(error.what(), Contains(detail));
  }
}

std::string tampered(const std::string& pem, std::size_t offset) {
  auto blob = openssh_blob(pem);
  REQUIRE(offset < blob.size());
  blob[offset] ^= 0x01;
  return openssh_pem(blob);
}

void put_uint32(std::vector<std::uint8_t>& blob, std::size_t offset, std::uint32_t value) {
  for (std::size_t i = 0; i < 4; ++i) {
    blob[offset + i] = static_cast<std::uint8_t>(value >> (24 - 8 * i));
  }
}

}  // namespace

TEST_CASE("an ssh-keygen ed25519 key parses and names its fingerprint and comment", "[openssh]") {
  TempDir dir;
  const auto key = make_ssh_key(dir, "id");
  const auto identity = parse_openssh_private_key(read_text(key), kSource);

  REQUIRE(identity != nullptr);
  CHECK(identity->describe() ==
        "ssh-ed25519 " + ssh_fingerprint(key.string() + ".pub") + " (test@secretfs)");
}

TEST_CASE("OpenSSH keys with CRLF endings and surrounding whitespace parse", "[openssh]") {
  TempDir dir;
  const auto key = make_ssh_key(dir, "id");
  std::string crlf;
  for (char c : read_text(key)) {
    crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  }
  const auto identity = parse_openssh_private_key("\n  " + crlf + "\n\n", kSource);
  CHECK(identity->describe() ==
        "ssh-ed25519 " + ssh_fingerprint(key.string() + ".pub") + " (test@secretfs)");
}

TEST_CASE("a key re-encoded from its blob parses to the same identity", "[openssh]") {
  TempDir dir;
  const auto key = make_ssh_key(dir, "id");
  const std::string pem = read_text(key);
  CHECK(parse_openssh_private_key(openssh_pem(openssh_blob(pem)), kSource)->describe() ==
        parse_openssh_private_key(pem, kSource)->describe());
}

TEST_CASE("passphrase-protected OpenSSH keys are unsupported", "[openssh]") {
  TempDir dir;
  const auto key = make_ssh_key(dir, "id", "ed25519", "correct horse");
  require_refused(read_text(key), ErrorKind::unsupported,
                  "passphrase-protected OpenSSH keys are not supported");
}

TEST_CASE("other key types are unsupported and named", "[openssh]") {
  TempDir dir;
  SECTION("rsa in the OpenSSH container") {
    const auto key = make_ssh_key(dir, "rsa", "rsa", "", "-b 2048");
    require_refused(read_text(key), ErrorKind::unsupported, "ssh-rsa keys are not supported");
  }
  SECTION("ecdsa in the OpenSSH container") {
    const auto key = make_ssh_key(dir, "ecdsa", "ecdsa");
    require_refused(read_text(key), ErrorKind::unsupported,
                    "ecdsa-sha2-nistp256 keys are not supported");
  }
  SECTION("PKCS#1 PEM rsa") {
    const auto key = make_ssh_key(dir, "rsa", "rsa", "", "-b 2048 -m PEM");
    REQUIRE(read_text(key).starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    require_refused(read_text(key), ErrorKind::unsupported, "PEM \"RSA PRIVATE KEY\"");
  }
  SECTION("PKCS#8 PEM") {
    require_refused("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                    ErrorKind::unsupported, "PEM \"PRIVATE KEY\"");
  }
}

TEST_CASE("tampered OpenSSH keys are refused as malformed", "[openssh]") {
  TempDir dir;
  const std::string pem = read_text(make_ssh_key(dir, "id"));
  namespace layout = openssh_layout;

  SECTION("check integers") {
    require_refused(tampered(pem, layout::kCheck2), ErrorKind::key, "check integers differ");
  }
  SECTION("public key in the public blob") {
    require_refused(tampered(pem, layout::kPublicKeyInBlob), ErrorKind::key,
                    "the public key does not match the private section");
  }
  SECTION("public key in the private section") {
    require_refused(tampered(pem, layout::kPrivatePublicKey), ErrorKind::key,
                    "the two copies of the public key differ");
  }
  SECTION("seed") {
    require_refused(tampered(pem, layout::kSeed), ErrorKind::key,
                    "the private key does not belong to its public key");
  }
  SECTION("every copy of the public key, consistently") {
    auto blob = openssh_blob(pem);
    for (auto offset :
         {layout::kPublicKeyInBlob, layout::kPrivatePublicKey, layout::kSecondPublicKey}) {
      blob[offset] ^= 0x01;
    }
    require_refused(openssh_pem(blob), ErrorKind::key,
                    "the private key does not belong to its public key");
  }
  SECTION("magic") {
    require_refused(tampered(pem, 0), ErrorKind::key, "does not start with \"openssh-key-v1\"");
  }
  SECTION("key count") {
    auto blob = openssh_blob(pem);
    put_uint32(blob, layout::kKeyCount, 2);
    require_refused(openssh_pem(blob), ErrorKind::key, "holds 2 keys, want 1");
  }
  SECTION("padding") {
    // A two-byte comment leaves three bytes of padding (the default comment leaves none).
    auto blob = openssh_blob(read_text(make_ssh_key(dir, "padded", "ed25519", "", "-C ab")));
    REQUIRE(blob.back() == 3);
    blob.back() = 4;
    require_refused(openssh_pem(blob), ErrorKind::key, "padding is not 1, 2, 3, ...");
  }
  SECTION("trailing bytes after the private section") {
    auto blob = openssh_blob(pem);
    blob.push_back(0);
    require_refused(openssh_pem(blob), ErrorKind::key, "1 trailing bytes after");
  }
  SECTION("truncated private section") {
    auto blob = openssh_blob(pem);
    blob.resize(blob.size() - 8);
    require_refused(openssh_pem(blob), ErrorKind::key, "private section is");
  }
  SECTION("private section not a multiple of the block size") {
    auto blob = openssh_blob(pem);
    const auto section_size = blob.size() - layout::kCheck1;
    blob.push_back(0);
    put_uint32(blob, layout::kPrivateSectionLength, static_cast<std::uint32_t>(section_size + 1));
    require_refused(openssh_pem(blob), ErrorKind::key, "not a multiple of 8");
  }
}

TEST_CASE("malformed OpenSSH key text is refused as malformed", "[openssh]") {
  TempDir dir;
  const std::string pem = read_text(make_ssh_key(dir, "id"));

  SECTION("not a key at all") {
    require_refused("hello\n", ErrorKind::key, "not an OpenSSH private key");
  }
  SECTION("missing END line") {
    require_refused(pem.substr(0, pem.find("-----END")), ErrorKind::key, "has no END line");
  }
  SECTION("text after the END line") {
    require_refused(pem + "junk\n", ErrorKind::key, "unexpected text after");
  }
  SECTION("body that is not base64") {
    std::string broken = pem;
    broken[kOpensshBegin.size() + 3] = '*';
    require_refused(broken, ErrorKind::key, "not valid base64");
  }
  SECTION("empty body") {
    require_refused(std::string(kOpensshBegin) + std::string(kOpensshEnd), ErrorKind::key,
                    "magic is truncated");
  }
}
