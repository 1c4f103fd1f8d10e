// Fuzzes what reads an age file before any payload key exists: armor detection and
// de-armoring, the header parser, stanza unwrapping by X25519, ssh-ed25519 and scrypt
// identities, the header MAC, and then the payload. The X25519 identity is the one of the age
// test vectors, so that mutations of those vectors reach past the MAC.
//
// Promises checked: the strict parser accepts only canonical text, so re-encoding a parsed
// header gives back its exact bytes; and a file that decrypts has the plaintext size that
// plaintext_size() predicted from its length alone.
#include <algorithm>
#include <memory>
#include <optional>
#include <string>

#include "fuzz_support.hpp"
#include "secretfs/age/age.hpp"
#include "secretfs/age/format.hpp"
#include "secretfs/age/scrypt.hpp"
#include "secretfs/age/ssh.hpp"
#include "secretfs/age/x25519.hpp"

namespace {

using namespace secretfs::age;
using secretfs::SecretBytes;
using secretfs::fuzz::as_bytes;
using secretfs::fuzz::require;

constexpr std::string_view kVectorIdentity =
    "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0";
constexpr std::string_view kVectorPassphrase = "password";
// Enough for the vectors' work factor (2^10); a higher one is refused before any work, so
// that no input can make one run take seconds.
constexpr int kMaxScryptLogN = 10;
constexpr std::uint8_t kSshSeedByte = 0x5e;
constexpr std::size_t kSshSeedSize = 32;

const Identities& identities() {
  static const Identities all = [] {
    Identities made;
    made.push_back(X25519Identity::parse(kVectorIdentity));
    const std::vector<std::uint8_t> seed(kSshSeedSize, kSshSeedByte);
    made.push_back(std::make_unique<SshEd25519Identity>(SecretBytes::copy_of(seed), "fuzz"));
    made.push_back(std::make_unique<ScryptIdentity>(
        SecretBytes::copy_of(as_bytes(kVectorPassphrase)), kMaxScryptLogN));
    return made;
  }();
  return all;
}

bool equal_bytes(std::span<const std::uint8_t> bytes, std::string_view text) {
  return std::equal(bytes.begin(), bytes.end(), text.begin(), text.end());
}

void check_header(std::span<const std::uint8_t> file) {
  Header header;
  try {
    header = parse_header(file);
  } catch (const Error&) {
    return;
  }
  require(equal_bytes(file.first(header.mac_input_size), encode_header_without_mac(header.stanzas)),
          "a parsed header re-encodes to its own bytes");
  require(equal_bytes(
              file.subspan(header.mac_input_size, header.payload_offset - header.mac_input_size),
              encode_mac_line(header.mac)),
          "a parsed MAC line re-encodes to its own bytes");
}

void check_decrypt(std::span<const std::uint8_t> file) {
  const auto tried = pointers(identities());
  std::optional<SecretBytes> plaintext;
  try {
    plaintext = decrypt(file, tried);
  } catch (const Error&) {
    return;
  }
  require(plaintext_size(file) == plaintext->size(),
          "plaintext_size() predicts the size of what decrypts");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto file = as_bytes(data, size);
  check_header(file);
  check_decrypt(file);
  try {
    plaintext_size(file);
  } catch (const Error&) {
  }
  return 0;
}
