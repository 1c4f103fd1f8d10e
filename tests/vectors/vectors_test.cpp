// Runs every C2SP CCTV age vector in the test data folder through decrypt() and checks the
// exact outcome class, the plaintext hash on success, and that a payload failure releases
// nothing. Success vectors also round-trip: the same header and payload bytes come back out
// of our encoders.
#include <sodium.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "secretfs/age/age.hpp"
#include "secretfs/age/armor.hpp"
#include "secretfs/age/format.hpp"
#include "secretfs/age/scrypt.hpp"
#include "secretfs/age/stream.hpp"
#include "secretfs/age/x25519.hpp"
#include "vectors.hpp"

namespace {

using namespace secretfs::age;
namespace fs = std::filesystem;

// Post-quantum identities appear beside X25519 ones in some vectors; libsodium cannot use
// them, so they are left out and the X25519 identity decides the outcome.
constexpr std::string_view kPostQuantumIdentityPrefix = "AGE-SECRET-KEY-PQ-1";
constexpr std::size_t kInflateStep = 1 << 20;

struct Vector {
  std::string expect;
  std::string payload_hash;
  std::vector<std::uint8_t> file_key;
  std::vector<std::string> identities;
  std::vector<std::string> passphrases;
  bool armored = false;
  std::vector<std::uint8_t> file;
};

std::span<const std::uint8_t> as_bytes(std::string_view text) {
  return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::uint8_t> from_hex(const std::string& hex) {
  std::vector<std::uint8_t> bytes(hex.size() / 2);
  std::size_t size = 0;
  REQUIRE(sodium_hex2bin(bytes.data(), bytes.size(), hex.data(), hex.size(), nullptr, &size,
                         nullptr) == 0);
  REQUIRE(size == bytes.size());
  return bytes;
}

std::string sha256_hex(std::span<const std::uint8_t> bytes) {
  std::array<std::uint8_t, crypto_hash_sha256_BYTES> digest{};
  crypto_hash_sha256(digest.data(), bytes.data(), bytes.size());
  std::array<char, crypto_hash_sha256_BYTES * 2 + 1> hex{};
  sodium_bin2hex(hex.data(), hex.size(), digest.data(), digest.size());
  return hex.data();
}

std::vector<std::uint8_t> inflate_all(std::string_view compressed) {
  z_stream stream{};
  REQUIRE(inflateInit(&stream) == Z_OK);
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  stream.avail_in = static_cast<uInt>(compressed.size());
  std::vector<std::uint8_t> out;
  int status = Z_OK;
  while (status == Z_OK) {
    const auto done = out.size();
    out.resize(done + kInflateStep);
    stream.next_out = out.data() + done;
    stream.avail_out = kInflateStep;
    status = inflate(&stream, Z_NO_FLUSH);
    out.resize(done + kInflateStep - stream.avail_out);
  }
  inflateEnd(&stream);
  REQUIRE(status == Z_STREAM_END);
  return out;
}

Vector parse_vector(const fs::path& path) {
  const auto text = read_text(path);
  const auto split = text.find("\n\n");
  REQUIRE(split != std::string::npos);

  Vector vector;
  bool compressed = false;
  std::istringstream lines(text.substr(0, split));
  for (std::string line; std::getline(lines, line);) {
    const auto colon = line.find(": ");
    REQUIRE(colon != std::string::npos);
    const auto key = line.substr(0, colon);
    const auto value = line.substr(colon + 2);
    if (key == "expect") {
      vector.expect = value;
    } else if (key == "payload") {
      vector.payload_hash = value;
    } else if (key == "file key") {
      vector.file_key = from_hex(value);
    } else if (key == "identity") {
      vector.identities.push_back(value);
    } else if (key == "passphrase") {
      vector.passphrases.push_back(value);
    } else if (key == "armored") {
      vector.armored = value == "yes";
    } else if (key == "compressed") {
      REQUIRE(value == "zlib");
      compressed = true;
    } else {
      // An unknown key would mean "skip this vector", and every vector here must run.
      REQUIRE(key == "comment");
    }
  }
  const auto body = std::string_view(text).substr(split + 2);
  vector.file =
      compressed ? inflate_all(body) : std::vector<std::uint8_t>(body.begin(), body.end());
  return vector;
}

Identities identities_of(const Vector& vector) {
  Identities identities;
  for (const auto& text : vector.identities) {
    if (!text.starts_with(kPostQuantumIdentityPrefix)) {
      identities.push_back(X25519Identity::parse(text));
    }
  }
  for (const auto& passphrase : vector.passphrases) {
    identities.push_back(
        std::make_unique<ScryptIdentity>(secretfs::SecretBytes::copy_of(as_bytes(passphrase))));
  }
  return identities;
}

std::vector<std::string> index_names(const fs::path& folder) {
  std::istringstream rows(read_text(folder / "INDEX.tsv"));
  std::vector<std::string> names;
  std::string row;
  std::getline(rows, row);  // the column names
  while (std::getline(rows, row)) {
    if (!row.empty()) {
      names.push_back(row.substr(0, row.find('\t')));
    }
  }
  return names;
}

std::set<std::string> vector_names(const fs::path& folder) {
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(folder)) {
    const auto name = entry.path().filename().string();
    if (name != "INDEX.tsv" && name != "README.md") {
      names.insert(name);
    }
  }
  return names;
}

// Decrypts the vector and returns the outcome class as the vectors spell it.
std::string outcome(const Vector& vector, std::optional<secretfs::SecretBytes>& plaintext) {
  const auto identities = identities_of(vector);
  try {
    plaintext = decrypt(vector.file, pointers(identities));
    return "success";
  } catch (const Error& error) {
    INFO("error: " << error.what());
    return std::string(to_string(error.kind()));
  }
}

// Our encoders must reproduce the header text and, given the file key and nonce, the payload.
void check_round_trip(const Vector& vector) {
  const auto binary = vector.armored ? dearmor(vector.file) : vector.file;
  const auto header = parse_header(binary);
  const auto text = encode_header_without_mac(header.stanzas);
  CHECK(std::string(binary.begin(), binary.begin() + header.mac_input_size) == text);
  CHECK(std::string(binary.begin() + header.mac_input_size,
                    binary.begin() + header.payload_offset) == encode_mac_line(header.mac));

  const auto identities = identities_of(vector);
  const auto plaintext = decrypt(vector.file, pointers(identities));
  const auto payload = std::span(binary).subspan(header.payload_offset);
  const auto nonce = payload.first<kPayloadNonceSize>();
  const auto again = encrypt_payload(vector.file_key, nonce, plaintext.span());
  CHECK(std::equal(again.begin(), again.end(), payload.begin(), payload.end()));
}

// Armoring the de-armored file gives the original back, apart from CRs and outer whitespace.
void check_armor_round_trip(const Vector& vector) {
  std::string original(vector.file.begin(), vector.file.end());
  std::erase(original, '\r');
  const auto first = original.find_first_not_of(" \t\n");
  const auto last = original.find_last_not_of(" \t\n");
  REQUIRE(first != std::string::npos);
  CHECK(armor(dearmor(vector.file)) == original.substr(first, last - first + 1) + "\n");
}

std::set<std::string>& vectors_run() {
  static std::set<std::string> names;
  return names;
}

}  // namespace

TEST_CASE("the vector folder holds exactly the vectors INDEX.tsv lists") {
  const auto folder = secretfs::test::vectors_folder();
  const auto indexed = index_names(folder);
  const auto present = vector_names(folder);
  CHECK(std::set<std::string>(indexed.begin(), indexed.end()) == present);
  CHECK(indexed.size() == present.size());
}

TEST_CASE("every age vector gives its expected outcome") {
  const auto folder = secretfs::test::vectors_folder();
  for (const auto& name : vector_names(folder)) {
    DYNAMIC_SECTION(name) {
      vectors_run().insert(name);
      const auto vector = parse_vector(folder / name);
      std::optional<secretfs::SecretBytes> plaintext;
      const auto got = outcome(vector, plaintext);
      REQUIRE(got == vector.expect);

      if (got == "success") {
        CHECK(sha256_hex(plaintext->span()) == vector.payload_hash);
        check_round_trip(vector);
        if (vector.armored) {
          check_armor_round_trip(vector);
        }
      }
      if (got == "payload failure") {
        CHECK_FALSE(plaintext.has_value());
      }
    }
  }
}

// Declared after the vectors, so Catch2 runs it after them (declaration order).
TEST_CASE("every vector listed in INDEX.tsv was run") {
  const auto indexed = index_names(secretfs::test::vectors_folder());
  CHECK(vectors_run().size() == indexed.size());
  CHECK(vectors_run() == std::set<std::string>(indexed.begin(), indexed.end()));
}
