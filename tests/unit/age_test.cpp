#include "secretfs/age/age.hpp"

#include <sodium.h>
#include <stdlib.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "age/hkdf.hpp"
#include "secretfs/age/armor.hpp"
#include "secretfs/age/format.hpp"
#include "secretfs/age/scrypt.hpp"
#include "secretfs/age/stream.hpp"
#include "secretfs/age/x25519.hpp"

using namespace secretfs::age;
using secretfs::SecretBytes;
namespace fs = std::filesystem;

namespace {

const std::vector<std::size_t> kSizes = {0, 1, kChunkSize, kChunkSize + 1};

std::vector<std::uint8_t> random_bytes(std::size_t size) {
  secretfs::initialize_sodium();
  std::vector<std::uint8_t> bytes(size);
  if (!bytes.empty()) {  // an empty vector's data() may be null, which libsodium must not get
    randombytes_buf(bytes.data(), bytes.size());
  }
  return bytes;
}

std::vector<std::uint8_t> bytes_of(const SecretBytes& secret) {
  return {secret.span().begin(), secret.span().end()};
}

std::vector<std::uint8_t> bytes_of(const std::string& text) {
  return {text.begin(), text.end()};
}

template <typename Function>
std::optional<ErrorKind> error_of(Function function) {
  try {
    function();
  } catch (const Error& error) {
    return error.kind();
  }
  return std::nullopt;
}

// A file assembled by hand, so that tests can put any stanzas in front of a valid MAC.
std::vector<std::uint8_t> assemble(const SecretBytes& file_key, const std::vector<Stanza>& stanzas,
                                   std::span<const std::uint8_t> plaintext) {
  const auto text = encode_header_without_mac(stanzas);
  const auto mac_key = hkdf_sha256(file_key.span(), {}, "header");
  std::array<std::uint8_t, kMacSize> mac{};
  crypto_auth_hmacsha256(mac.data(), reinterpret_cast<const std::uint8_t*>(text.data()),
                         text.size(), mac_key.data());
  auto file = bytes_of(text + encode_mac_line(mac));
  const auto payload = encrypt_payload(file_key.span(), plaintext);
  file.insert(file.end(), payload.begin(), payload.end());
  return file;
}

// A directory under /tmp that is removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "secretfs-age-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() { fs::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

void write_file(const fs::path& path, std::span<const std::uint8_t> bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

int run(const std::string& command) {
  INFO(command);
  const int status = std::system((command + " 2>/dev/null").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string quoted(const fs::path& path) {
  return "'" + path.string() + "'";
}

// The AGE-SECRET-KEY-1 line of an identity file written by age-keygen.
std::unique_ptr<X25519Identity> identity_from_file(const fs::path& path) {
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("AGE-SECRET-KEY-1")) {
      auto identity = X25519Identity::parse(line);
      sodium_memzero(line.data(), line.size());
      return identity;
    }
  }
  FAIL("no identity in " << path);
  return nullptr;
}

}  // namespace

TEST_CASE("encrypt and decrypt round-trip, binary and armored") {
  const auto identity = X25519Identity::generate();
  const auto recipient = identity->recipient();
  const std::vector<const Recipient*> recipients = {recipient.get()};
  const std::vector<const Identity*> identities = {identity.get()};

  for (const auto size : kSizes) {
    for (const auto output : {Output::binary, Output::armored}) {
      CAPTURE(size, output == Output::armored);
      const auto plaintext = random_bytes(size);
      const auto file = encrypt(plaintext, recipients, output);
      CHECK(is_armored(file) == (output == Output::armored));
      CHECK(bytes_of(decrypt(file, identities)) == plaintext);
      CHECK(plaintext_size(std::span<const std::uint8_t>(file)) == size);
      CHECK_NOTHROW(verify_header(file, identities));
    }
  }
}

TEST_CASE("an opened file decrypts with its payload key alone") {
  const auto identity = X25519Identity::generate();
  const auto recipient = identity->recipient();
  const std::vector<const Recipient*> recipients = {recipient.get()};
  const std::vector<const Identity*> identities = {identity.get()};

  for (const auto output : {Output::binary, Output::armored}) {
    const auto plaintext = random_bytes(70000);
    const auto file = encrypt(plaintext, recipients, output);
    const OpenedFile opened = open_file(file, identities);
    CHECK(opened.payload_key.size() == 32);
    // Two chunks of 64 KiB + 16 and 4,464 + 16 bytes follow the header and the nonce.
    CHECK(opened.chunks().size() == 70000 + 2 * kTagSize);
    CHECK(bytes_of(decrypt_chunks(opened.payload_key.span(), opened.chunks())) == plaintext);
    CHECK(bytes_of(decrypt_chunks(opened.payload_key.span(), opened.chunks())) == plaintext);

    // The same plaintext encrypted again has another payload key.
    const OpenedFile other = open_file(encrypt(plaintext, recipients, output), identities);
    try {
      decrypt_chunks(opened.payload_key.span(), other.chunks());
      FAIL("a payload key opened chunks it does not belong to");
    } catch (const Error& error) {
      CHECK(error.kind() == ErrorKind::payload);
    }

    try {
      decrypt_chunks(opened.payload_key.span().first(31), opened.chunks());
      FAIL("a short payload key was accepted");
    } catch (const Error& error) {
      CHECK(error.kind() == ErrorKind::key);
    }
  }
}

TEST_CASE("open_file refuses what decrypt refuses, by the same class") {
  const auto identity = X25519Identity::generate();
  const auto stranger = X25519Identity::generate();
  const auto recipient = identity->recipient();
  const std::vector<const Recipient*> recipients = {recipient.get()};
  const std::vector<const Identity*> identities = {identity.get()};
  const std::vector<const Identity*> strangers = {stranger.get()};
  const auto file = encrypt(random_bytes(100), recipients);

  const auto kind_of = [](std::vector<std::uint8_t> bytes,
                          const std::vector<const Identity*>& keys) {
    try {
      open_file(std::move(bytes), keys);
    } catch (const Error& error) {
      return error.kind();
    }
    FAIL("open_file accepted a file it should refuse");
    return ErrorKind::io;
  };
  CHECK(kind_of(file, strangers) == ErrorKind::no_match);
  // 100 bytes of plaintext make one chunk of 116 bytes; 10 bytes cannot hold its tag.
  auto truncated = file;
  truncated.resize(truncated.size() - 106);
  CHECK(kind_of(truncated, identities) == ErrorKind::payload);
  auto bad_mac = file;
  const std::string mac_line = "--- ";
  const auto mac_at =
      std::search(bad_mac.begin(), bad_mac.end(), mac_line.begin(), mac_line.end()) -
      bad_mac.begin();
  // Another base64 letter in the first place of the MAC: still well-formed, no longer right.
  auto& first = bad_mac[mac_at + mac_line.size()];
  first = first == 'A' ? 'B' : 'A';
  CHECK(kind_of(bad_mac, identities) == ErrorKind::hmac);
}

TEST_CASE("decrypt_chunks is all or nothing too") {
  const auto identity = X25519Identity::generate();
  const auto recipient = identity->recipient();
  const std::vector<const Recipient*> recipients = {recipient.get()};
  const std::vector<const Identity*> identities = {identity.get()};
  OpenedFile opened = open_file(encrypt(random_bytes(70000), recipients), identities);
  opened.binary.back() ^= 0x01;
  try {
    decrypt_chunks(opened.payload_key.span(), opened.chunks());
    FAIL("a tampered payload decrypted");
  } catch (const Error& error) {
    CHECK(error.kind() == ErrorKind::payload);
  }
}

TEST_CASE("every recipient of a file can open it") {
  Identities identities;
  Recipients recipients;
  for (int i = 0; i < 3; ++i) {
    auto identity = X25519Identity::generate();
    recipients.push_back(identity->recipient());
    identities.push_back(std::move(identity));
  }
  const auto plaintext = random_bytes(100);
  const auto file = encrypt(plaintext, pointers(recipients));
  CHECK(parse_header(file).stanzas.size() == 3);
  for (const auto& identity : identities) {
    const std::vector<const Identity*> one = {identity.get()};
    CHECK(bytes_of(decrypt(file, one)) == plaintext);
  }
}

TEST_CASE("a passphrase file round-trips and stands alone") {
  const auto passphrase = [] { return SecretBytes::copy_of(secretfs::age::as_bytes("pass")); };
  const ScryptRecipient recipient(passphrase(), 10);
  const ScryptIdentity identity(passphrase());
  const std::vector<const Recipient*> recipients = {&recipient};
  const std::vector<const Identity*> identities = {&identity};
  const auto file = encrypt(bytes_of(std::string("hello")), recipients);
  CHECK(decrypt(file, identities).view() == "hello");

  const auto other = X25519Identity::generate()->recipient();
  const std::vector<const Recipient*> mixed = {&recipient, other.get()};
  CHECK(error_of([&] { encrypt({}, mixed); }) == ErrorKind::key);
}

TEST_CASE("no match lists every identity tried") {
  const auto owner = X25519Identity::generate();
  const auto first = X25519Identity::generate();
  const auto second = X25519Identity::generate();
  const auto recipient = owner->recipient();
  const std::vector<const Recipient*> recipients = {recipient.get()};
  const auto file = encrypt(random_bytes(10), recipients);

  const std::vector<const Identity*> identities = {first.get(), second.get()};
  try {
    decrypt(file, identities);
    FAIL("decrypted without a matching identity");
  } catch (const Error& error) {
    CHECK(error.kind() == ErrorKind::no_match);
    CHECK(std::string(error.what()) ==
          "no identity matches any stanza (stanzas: X25519; tried 2: " + first->describe() + ", " +
              second->describe() + ")");
  }
  CHECK(error_of([&] { decrypt(file, {}); }) == ErrorKind::no_match);
  CHECK(error_of([&] { verify_header(file, identities); }) == ErrorKind::no_match);
}

TEST_CASE("a malformed stanza stops the search even if a later identity matches") {
  const auto identity = X25519Identity::generate();
  const auto file_key = SecretBytes::copy_of(random_bytes(kFileKeySize));
  auto broken = identity->recipient()->wrap(file_key.span());
  broken.args[0] = encode_base64_unpadded(random_bytes(31));
  const auto good = identity->recipient()->wrap(file_key.span());

  const std::vector<const Identity*> identities = {identity.get()};
  const auto broken_first = assemble(file_key, {broken, good}, random_bytes(5));
  CHECK(error_of([&] { decrypt(broken_first, identities); }) == ErrorKind::header);

  const auto plaintext = random_bytes(5);
  const auto good_first = assemble(file_key, {good, broken}, plaintext);
  CHECK(bytes_of(decrypt(good_first, identities)) == plaintext);
}

TEST_CASE("each kind of damage gives its own error class") {
  const auto identity = X25519Identity::generate();
  const auto recipient = identity->recipient();
  const std::vector<const Recipient*> recipients = {recipient.get()};
  const std::vector<const Identity*> identities = {identity.get()};
  const auto file = encrypt(random_bytes(kChunkSize + 1), recipients);
  const auto header = parse_header(file);

  auto bad_mac = file;
  // The first MAC character carries no padding bits, so any other letter stays canonical.
  auto& first_mac_character = bad_mac[header.mac_input_size + 1];
  first_mac_character = first_mac_character == 'A' ? 'B' : 'A';
  CHECK(error_of([&] { decrypt(bad_mac, identities); }) == ErrorKind::hmac);
  CHECK(error_of([&] { verify_header(bad_mac, identities); }) == ErrorKind::hmac);

  auto bad_payload = file;
  bad_payload.back() ^= 1;
  CHECK(error_of([&] { decrypt(bad_payload, identities); }) == ErrorKind::payload);
  CHECK_NOTHROW(verify_header(bad_payload, identities));

  auto truncated = file;
  truncated.resize(file.size() - 1);
  CHECK(error_of([&] { decrypt(truncated, identities); }) == ErrorKind::payload);
  CHECK(error_of([&] { plaintext_size(std::span<const std::uint8_t>(truncated)); }) ==
        ErrorKind::payload);

  std::vector<std::uint8_t> no_nonce(file.begin(), file.begin() + header.payload_offset + 15);
  CHECK(error_of([&] { decrypt(no_nonce, identities); }) == ErrorKind::header);
  CHECK(error_of([&] { verify_header(no_nonce, identities); }) == ErrorKind::header);

  auto bad_armor = armor(file);
  bad_armor.insert(bad_armor.find('\n') + 1, "\n");
  CHECK(error_of([&] { decrypt(bytes_of(bad_armor), identities); }) == ErrorKind::armor);

  CHECK(error_of([&] { decrypt({}, identities); }) == ErrorKind::header);
}

TEST_CASE("encrypting needs a recipient") {
  CHECK(error_of([] { encrypt({}, {}); }) == ErrorKind::key);
}

TEST_CASE("read_file reads whole files and names the ones it cannot read") {
  TempDir dir;
  const auto bytes = random_bytes(3 * kChunkSize + 7);
  write_file(dir / "file", bytes);
  CHECK(read_file(dir / "file") == bytes);

  const auto missing = dir / "missing.age";
  try {
    read_file(missing);
    FAIL("read a missing file");
  } catch (const Error& error) {
    CHECK(error.kind() == ErrorKind::io);
    CHECK(std::string(error.what()) ==
          "cannot read " + missing.string() + ": No such file or directory");
  }
}

TEST_CASE("the age CLI and secretfs read each other's files", "[interop]") {
  REQUIRE(run("age --version >/dev/null") == 0);
  TempDir dir;
  const auto key = dir / "key.txt";
  REQUIRE(run("age-keygen -o " + quoted(key)) == 0);
  const auto identity = identity_from_file(key);
  const std::vector<const Identity*> identities = {identity.get()};

  // Our Bech32 recipient must be the one age derives from the same key.
  REQUIRE(run("age-keygen -y " + quoted(key) + " > " + quoted(dir / "recipient.txt")) == 0);
  std::ifstream recipient_file(dir / "recipient.txt");
  std::string recipient_text;
  std::getline(recipient_file, recipient_text);
  const auto recipient = identity->recipient();
  REQUIRE(recipient->describe() == recipient_text);
  const std::vector<const Recipient*> recipients = {recipient.get()};

  for (const auto size : kSizes) {
    CAPTURE(size);
    const auto plaintext = random_bytes(size);
    write_file(dir / "plain", plaintext);

    for (const std::string flags : {"", "-a "}) {
      CAPTURE(flags);
      REQUIRE(run("age " + flags + "-r " + recipient_text + " -o " + quoted(dir / "by-age") + " " +
                  quoted(dir / "plain")) == 0);
      CHECK(bytes_of(decrypt(read_file(dir / "by-age"), identities)) == plaintext);
    }

    for (const auto output : {Output::binary, Output::armored}) {
      CAPTURE(output == Output::armored);
      write_file(dir / "by-us", encrypt(plaintext, recipients, output));
      fs::remove(dir / "out");
      // age creates an -o file only once it has plaintext to write, so use stdout.
      REQUIRE(run("age -d -i " + quoted(key) + " " + quoted(dir / "by-us") + " > " +
                  quoted(dir / "out")) == 0);
      CHECK(read_file(dir / "out") == plaintext);
    }
  }
}

TEST_CASE("age decrypts with an identity secretfs generated", "[interop]") {
  TempDir dir;
  const auto identity = X25519Identity::generate();
  const auto text = identity->encode();
  write_file(dir / "key.txt", text.span());
  const auto recipient = identity->recipient();
  const std::vector<const Recipient*> recipients = {recipient.get()};

  write_file(dir / "by-us", encrypt(bytes_of(std::string("hello\n")), recipients));
  REQUIRE(run("age -d -i " + quoted(dir / "key.txt") + " -o " + quoted(dir / "out") + " " +
              quoted(dir / "by-us")) == 0);
  CHECK(read_file(dir / "out") == bytes_of(std::string("hello\n")));
}
