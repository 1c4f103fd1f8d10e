#include "fs/opened_files.hpp"

#include <sodium.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "secretfs/age/age.hpp"
#include "secretfs/age/armor.hpp"
#include "secretfs/age/x25519.hpp"

using secretfs::SecretBytes;
using secretfs::fs::OpenedFiles;
using secretfs::fs::ServedSecret;
using secretfs::manifest::Secret;
namespace age = secretfs::age;
namespace fs = std::filesystem;

namespace {

constexpr std::uint64_t kLimit = secretfs::manifest::kDefaultMaxSecretSize;

// A throwaway folder, an identity, and age files written into the folder.
class Files {
 public:
  Files() : identity_(age::X25519Identity::generate()), recipient_(identity_->recipient()) {
    std::string pattern = (fs::temp_directory_path() / "secretfs-opened-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    dir_ = pattern;
  }
  ~Files() { fs::remove_all(dir_); }
  Files(const Files&) = delete;
  Files& operator=(const Files&) = delete;

  // Writes `text` encrypted to `name`, in place (same inode) or by rename (a new inode).
  ServedSecret write(const std::string& name, const std::string& text,
                     age::Output output = age::Output::binary) const {
    const std::vector<const age::Recipient*> recipients = {recipient_.get()};
    const auto file =
        age::encrypt(std::vector<std::uint8_t>(text.begin(), text.end()), recipients, output);
    std::ofstream(dir_ / name, std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(file.data()), static_cast<long>(file.size()));
    Secret secret;
    secret.name = name;
    secret.file = dir_ / name;
    return ServedSecret(secret);
  }

  void replace(const std::string& name, const std::string& text) const {
    write(name + ".new", text);
    fs::rename(dir_ / (name + ".new"), dir_ / name);
  }

  std::vector<const age::Identity*> identities() const { return {identity_.get()}; }

 private:
  fs::path dir_;
  std::unique_ptr<age::X25519Identity> identity_;
  std::unique_ptr<age::Recipient> recipient_;
};

std::string text_of(const SecretBytes& bytes) {
  return std::string(bytes.view());
}

// `secret` as a stored generation serves it: named by the SHA-256 of its file, which is
// checked on every full open.
ServedSecret stored(ServedSecret secret) {
  const auto bytes = age::read_file(secret.file);
  std::array<std::uint8_t, crypto_hash_sha256_BYTES> hash{};
  crypto_hash_sha256(hash.data(), bytes.data(), bytes.size());
  std::string hex(hash.size() * 2 + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), hash.data(), hash.size());
  hex.pop_back();
  secret.sha256 = hex;
  return secret;
}

std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const age::Error& error) {
    CHECK(error.kind() == age::ErrorKind::io);
    return error.what();
  }
  FAIL("no age::Error");
  return {};
}

}  // namespace

TEST_CASE("opened files decrypt again and again, small and large, binary and armored", "[opened]") {
  const Files files;
  const std::string large(200 * 1024, 'L');  // past what is kept in memory
  const std::vector<ServedSecret> secrets = {
      files.write("small", "small\n"), files.write("large", large),
      files.write("armored", "armored\n", age::Output::armored),
      files.write("large-armored", large, age::Output::armored)};
  const OpenedFiles opened(secrets.size(), kLimit);
  for (int round = 0; round < 3; ++round) {
    CHECK(text_of(opened.decrypt(0, secrets[0], files.identities())) == "small\n");
    CHECK(text_of(opened.decrypt(1, secrets[1], files.identities())) == large);
    CHECK(text_of(opened.decrypt(2, secrets[2], files.identities())) == "armored\n");
    CHECK(text_of(opened.decrypt(3, secrets[3], files.identities())) == large);
  }
  // The small files are kept; the large ones are read at each open.
  CHECK(opened.kept_bytes() ==
        fs::file_size(secrets[0].file) + age::dearmor(age::read_file(secrets[2].file)).size());
}

TEST_CASE("a file replaced or rewritten after its first open is opened anew", "[opened]") {
  const Files files;
  const std::string large_one(200 * 1024, '1');
  const std::string large_two(200 * 1024, '2');
  const std::vector<ServedSecret> secrets = {files.write("small", "one\n"),
                                             files.write("large", large_one)};
  const OpenedFiles opened(secrets.size(), kLimit);
  CHECK(text_of(opened.decrypt(0, secrets[0], files.identities())) == "one\n");
  CHECK(text_of(opened.decrypt(1, secrets[1], files.identities())) == large_one);

  files.replace("small", "two\n");
  files.replace("large", large_two);
  CHECK(text_of(opened.decrypt(0, secrets[0], files.identities())) == "two\n");
  CHECK(text_of(opened.decrypt(1, secrets[1], files.identities())) == large_two);

  // Rewritten in place: same inode, new times.
  files.write("small", "three\n");
  CHECK(text_of(opened.decrypt(0, secrets[0], files.identities())) == "three\n");
}

TEST_CASE("check keeps what it learns, and a stored file that changed is refused", "[opened]") {
  const Files files;
  const ServedSecret secret = stored(files.write("s", "stored\n"));

  const OpenedFiles opened(1, kLimit);
  opened.check(0, secret, files.identities());
  CHECK(text_of(opened.decrypt(0, secret, files.identities())) == "stored\n");

  files.replace("s", "substitute\n");
  try {
    opened.decrypt(0, secret, files.identities());
    FAIL("a changed stored file was served");
  } catch (const age::Error& error) {
    CHECK(error.kind() == age::ErrorKind::io);
    CHECK(std::string(error.what()).find("does not match its SHA-256") != std::string::npos);
  }
  CHECK_THROWS_AS(opened.check(0, secret, files.identities()), age::Error);
}

TEST_CASE("a stored file group or others may write to is refused at open, naming it",
          "[opened]") {
  const Files files;
  const ServedSecret secret = stored(files.write("s", "stored\n"));
  const OpenedFiles opened(1, kLimit);
  CHECK(text_of(opened.decrypt(0, secret, files.identities())) == "stored\n");

  // Its SHA-256 still matches; whoever could write to it could have changed more.
  REQUIRE(::chmod(secret.file.c_str(), 0666) == 0);
  const std::string refused = secret.file + ": stored ciphertext (owner uid " +
                              std::to_string(::geteuid()) +
                              ", mode 0666) may be written by group or others; chmod 0600 " +
                              secret.file;
  CHECK(error_of([&] { opened.decrypt(0, secret, files.identities()); }) == refused);
  CHECK(error_of([&] { secretfs::fs::read_stored_file(secret.file, secret.sha256, kLimit); }) ==
        refused);

  // A file served straight from a manifest is the manifest's business, not the state
  // directory's.
  ServedSecret direct = secret;
  direct.sha256.clear();
  CHECK(text_of(OpenedFiles(1, kLimit).decrypt(0, direct, files.identities())) == "stored\n");
}

TEST_CASE("a file that fails is not remembered", "[opened]") {
  const Files files;
  const ServedSecret secret = files.write("s", "good\n");
  auto bytes = age::read_file(secret.file);
  bytes.back() ^= 0x01;
  std::ofstream(secret.file, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<long>(bytes.size()));

  const OpenedFiles opened(1, kLimit);
  for (int round = 0; round < 2; ++round) {
    try {
      opened.decrypt(0, secret, files.identities());
      FAIL("a tampered file decrypted");
    } catch (const age::Error& error) {
      CHECK(error.kind() == age::ErrorKind::payload);
    }
  }
  CHECK(opened.kept_bytes() == 0);
  fs::remove(secret.file);
  try {
    opened.decrypt(0, secret, files.identities());
    FAIL("a missing file decrypted");
  } catch (const age::Error& error) {
    CHECK(error.kind() == age::ErrorKind::io);
  }
}

TEST_CASE("a large file tampered in place after its first open fails, never half-served",
          "[opened]") {
  const Files files;
  const std::string large(200 * 1024, 'x');
  const ServedSecret secret = files.write("large", large);
  const OpenedFiles opened(1, kLimit);
  CHECK(text_of(opened.decrypt(0, secret, files.identities())) == large);

  // Rewritten in place with its last byte changed: a new version, opened in full, which the
  // payload's tag refuses.
  auto bytes = age::read_file(secret.file);
  bytes.back() ^= 0x01;
  std::ofstream(secret.file, std::ios::binary | std::ios::in | std::ios::out)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<long>(bytes.size()));
  try {
    opened.decrypt(0, secret, files.identities());
    FAIL("a tampered large file decrypted");
  } catch (const age::Error& error) {
    CHECK(error.kind() == age::ErrorKind::payload);
  }
}

TEST_CASE("a file over the size limit is refused before it is read", "[opened]") {
  const Files files;
  const ServedSecret secret = files.write("s", std::string(4000, 'x'));
  const auto size = std::filesystem::file_size(secret.file);
  CHECK(text_of(OpenedFiles(1, size).decrypt(0, secret, files.identities())).size() == 4000);
  try {
    OpenedFiles(1, size - 1).decrypt(0, secret, files.identities());
    FAIL("a file over the limit was read");
  } catch (const age::Error& error) {
    CHECK(error.kind() == age::ErrorKind::io);
    CHECK(std::string(error.what()) ==
          secret.file + ": larger than the limit of " + std::to_string(size - 1) + " bytes");
  }
}
