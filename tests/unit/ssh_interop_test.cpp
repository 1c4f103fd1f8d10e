// ssh-ed25519 files exchanged with Debian's age CLI in both directions, the way agenix and
// sops-nix produce them.
#include <sodium.h>

#include <catch2/catch.hpp>

#include "secretfs/age/age.hpp"
#include "secretfs/age/key_files.hpp"
#include "secretfs/age/ssh.hpp"
#include "secretfs/age/x25519.hpp"
#include "ssh_test_support.hpp"

using namespace secretfs;
using namespace secretfs::age;
using namespace secretfs::age::test;

namespace {

constexpr std::size_t kSizes[] = {0, 100, 70000};  // empty, one chunk, two chunks

std::vector<std::uint8_t> random_plaintext(std::size_t size) {
  std::vector<std::uint8_t> plaintext(size);
  if (size > 0) {  // an empty vector's data() may be null, which libsodium must not get
    randombytes_buf(plaintext.data(), plaintext.size());
  }
  return plaintext;
}

std::vector<std::uint8_t> as_vector(const SecretBytes& bytes) {
  return {bytes.data(), bytes.data() + bytes.size()};
}

std::vector<std::uint8_t> decrypt_with(const Identities& identities,
                                       std::span<const std::uint8_t> file) {
  const auto identity_pointers = pointers(identities);
  return as_vector(decrypt(file, identity_pointers));
}

Identities only(std::unique_ptr<Identity> identity) {
  Identities identities;
  identities.push_back(std::move(identity));
  return identities;
}

// The age1 recipient of the ssh-to-age conversion of `key`.
std::string ssh_to_age_recipient(const std::filesystem::path& key) {
  const auto identities = load_identity_file(key);
  REQUIRE(identities.size() == 2);
  const auto* derived = dynamic_cast<const X25519Identity*>(identities[1].get());
  REQUIRE(derived != nullptr);
  return derived->recipient()->describe();
}

}  // namespace

TEST_CASE("files age encrypts to an ssh-ed25519 key decrypt with its private key",
          "[ssh][interop]") {
  TempDir dir;
  const auto key = make_ssh_key(dir, "id");
  const auto identities = load_identity_file(key);
  const auto armor = GENERATE(as<std::string>{}, "", "-a");

  for (const std::size_t size : kSizes) {
    CAPTURE(size, armor);
    const auto plaintext = random_plaintext(size);
    write_bytes(dir / "plain", plaintext);
    REQUIRE(run("age " + armor + " -R " + shell_quoted(key.string() + ".pub") + " -o " +
                shell_quoted(dir / "file.age") + " " + shell_quoted(dir / "plain")) == 0);

    CHECK(decrypt_with(identities, read_bytes(dir / "file.age")) == plaintext);
  }
}

TEST_CASE("files secretfs encrypts to an ssh-ed25519 key decrypt with age -d -i",
          "[ssh][interop]") {
  TempDir dir;
  const auto key = make_ssh_key(dir, "id");
  const auto recipient = SshEd25519Recipient::parse(read_text(key.string() + ".pub"));
  const std::vector<const Recipient*> recipients{recipient.get()};
  const auto output = GENERATE(Output::binary, Output::armored);

  for (const std::size_t size : kSizes) {
    CAPTURE(size);
    const auto plaintext = random_plaintext(size);
    write_bytes(dir / "file.age", encrypt(plaintext, recipients, output));
    // age creates no output file for an empty plaintext, so take stdout instead of -o.
    REQUIRE(run("age -d -i " + shell_quoted(key) + " " + shell_quoted(dir / "file.age") + " > " +
                shell_quoted(dir / "plain")) == 0);

    CHECK(read_bytes(dir / "plain") == plaintext);
  }
}

TEST_CASE("a file for an age1 recipient and an ssh key opens with the ssh identity alone",
          "[ssh][interop]") {
  TempDir dir;
  const auto key = make_ssh_key(dir, "id");
  REQUIRE(run("age-keygen -o " + shell_quoted(dir / "age.txt")) == 0);
  const std::string age_recipient =
      trim_newline(output_of("age-keygen -y " + shell_quoted(dir / "age.txt")));
  const auto plaintext = random_plaintext(100);
  write_bytes(dir / "plain", plaintext);
  REQUIRE(run("age -r " + age_recipient + " -R " + shell_quoted(key.string() + ".pub") + " -o " +
              shell_quoted(dir / "file.age") + " " + shell_quoted(dir / "plain")) == 0);

  const auto ssh_only = only(parse_openssh_private_key(read_text(key), key.string()));
  CHECK(decrypt_with(ssh_only, read_bytes(dir / "file.age")) == plaintext);
}

TEST_CASE("a file for the ssh-to-age recipient opens with the ssh key file", "[ssh][interop]") {
  TempDir dir;
  const auto key = make_ssh_key(dir, "id");
  const std::string recipient = ssh_to_age_recipient(key);
  const auto identities = load_identity_file(key);
  const auto plaintext = random_plaintext(100);

  SECTION("encrypted by age") {
    write_bytes(dir / "plain", plaintext);
    REQUIRE(run("age -r " + recipient + " -o " + shell_quoted(dir / "file.age") + " " +
                shell_quoted(dir / "plain")) == 0);
    CHECK(decrypt_with(identities, read_bytes(dir / "file.age")) == plaintext);
  }
  SECTION("encrypted by secretfs") {
    const auto x25519 = X25519Recipient::parse(recipient);
    const std::vector<const Recipient*> recipients{x25519.get()};
    CHECK(decrypt_with(identities, encrypt(plaintext, recipients)) == plaintext);
  }
}

TEST_CASE("a file for another ssh key is no match, naming the identity tried", "[ssh][interop]") {
  TempDir dir;
  const auto mine = make_ssh_key(dir, "mine");
  const auto other = make_ssh_key(dir, "other");
  write_bytes(dir / "plain", random_plaintext(10));
  REQUIRE(run("age -R " + shell_quoted(other.string() + ".pub") + " -o " +
              shell_quoted(dir / "file.age") + " " + shell_quoted(dir / "plain")) == 0);

  const auto identities = load_identity_file(mine);
  try {
    decrypt_with(identities, read_bytes(dir / "file.age"));
    FAIL("decrypted with the wrong key");
  } catch (const Error& error) {
    CHECK(error.kind() == ErrorKind::no_match);
    CHECK_THAT(error.what(), Catch::Matchers::Contains(identities[0]->describe()));
  }
}
