// Passphrase stanzas: the wrap key is scrypt of the passphrase. Every argument is checked
// before scrypt runs, because the work factor in a file decides how much memory and time the
// reader spends, and a hostile file must not get to choose that beyond our cap.
#include "secretfs/age/scrypt.hpp"

#include <sodium.h>

#include <charconv>

#include "secretfs/age/error.hpp"
#include "x25519_wrap.hpp"

namespace secretfs::age {

namespace {

constexpr std::string_view kStanzaType = "scrypt";
constexpr std::string_view kSaltLabel = "age-encryption.org/v1/scrypt";
constexpr std::size_t kSaltSize = 16;
constexpr std::size_t kWrapKeySize = crypto_aead_chacha20poly1305_ietf_KEYBYTES;
constexpr std::uint32_t kBlockSize = 8;    // scrypt r
constexpr std::uint32_t kParallelism = 1;  // scrypt p
constexpr int kMinLogN = 1;

std::string describe_passphrase() {
  return "scrypt passphrase";
}

SecretBytes scrypt_wrap_key(const SecretBytes& passphrase, std::span<const std::uint8_t> salt,
                            int log_n) {
  std::vector<std::uint8_t> labelled_salt(kSaltLabel.begin(), kSaltLabel.end());
  labelled_salt.insert(labelled_salt.end(), salt.begin(), salt.end());

  initialize_sodium();
  SecretBytes key(kWrapKeySize);
  if (crypto_pwhash_scryptsalsa208sha256_ll(
          passphrase.data(), passphrase.size(), labelled_salt.data(), labelled_salt.size(),
          std::uint64_t{1} << log_n, kBlockSize, kParallelism, key.data(), key.size()) != 0) {
    throw Error(ErrorKind::header, "scrypt with work factor 2^" + std::to_string(log_n) +
                                       " failed (not enough memory?)");
  }
  return key;
}

// The work factor as age writes it: a decimal without sign or leading zeros.
int parse_log_n(const std::string& text, std::size_t index) {
  const auto where = stanza_name(index) + ": scrypt work factor \"" + text + "\"";
  const bool digits_only = !text.empty() && text.front() != '0' &&
                           text.find_first_not_of("0123456789") == std::string::npos;
  int log_n = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), log_n);
  if (!digits_only || error != std::errc{} || end != text.data() + text.size()) {
    throw Error(ErrorKind::header, where + " is not a plain decimal number");
  }
  return log_n;
}

std::vector<std::uint8_t> decode_salt(const std::string& text, std::size_t index) {
  std::vector<std::uint8_t> salt;
  if (!decode_base64_unpadded(text, salt)) {
    throw Error(ErrorKind::header, stanza_name(index) + ": scrypt salt is not canonical base64");
  }
  if (salt.size() != kSaltSize) {
    throw Error(ErrorKind::header, stanza_name(index) + ": scrypt salt is " +
                                       std::to_string(salt.size()) + " bytes, want 16");
  }
  return salt;
}

}  // namespace

ScryptRecipient::ScryptRecipient(SecretBytes passphrase, int log_n)
    : passphrase_(std::move(passphrase)), log_n_(log_n) {
  if (log_n_ < kMinLogN || log_n_ > kMaxScryptLogN) {
    throw Error(ErrorKind::key, "scrypt work factor 2^" + std::to_string(log_n_) +
                                    " is outside 2^1..2^" + std::to_string(kMaxScryptLogN));
  }
}

Stanza ScryptRecipient::wrap(std::span<const std::uint8_t> file_key) const {
  initialize_sodium();
  std::array<std::uint8_t, kSaltSize> salt{};
  randombytes_buf(salt.data(), salt.size());

  Stanza stanza;
  stanza.type = kStanzaType;
  stanza.args = {encode_base64_unpadded(salt), std::to_string(log_n_)};
  stanza.body = seal_file_key(scrypt_wrap_key(passphrase_, salt, log_n_), file_key);
  return stanza;
}

std::string ScryptRecipient::describe() const {
  return describe_passphrase();
}

ScryptIdentity::ScryptIdentity(SecretBytes passphrase, int max_log_n)
    : passphrase_(std::move(passphrase)), max_log_n_(max_log_n) {}

std::optional<SecretBytes> ScryptIdentity::unwrap(std::span<const Stanza> stanzas) const {
  for (std::size_t index = 0; index < stanzas.size(); ++index) {
    const auto& stanza = stanzas[index];
    if (stanza.type != kStanzaType) {
      continue;
    }
    // A passphrase file that also names other recipients would let them read it unseen.
    if (stanzas.size() != 1) {
      throw Error(ErrorKind::header, stanza_name(index) +
                                         ": an scrypt stanza must be the only "
                                         "stanza, the header has " +
                                         std::to_string(stanzas.size()));
    }
    if (stanza.args.size() != 2) {
      throw Error(ErrorKind::header, stanza_name(index) + ": scrypt stanza has " +
                                         std::to_string(stanza.args.size()) + " arguments, want 2");
    }
    const auto salt = decode_salt(stanza.args[0], index);
    const auto log_n = parse_log_n(stanza.args[1], index);
    if (log_n > max_log_n_) {
      throw Error(ErrorKind::header, stanza_name(index) + ": scrypt work factor 2^" +
                                         stanza.args[1] + " exceeds the cap 2^" +
                                         std::to_string(max_log_n_));
    }
    require_wrapped_file_key(stanza, index);

    // A body that does not open means a wrong passphrase.
    return open_file_key(scrypt_wrap_key(passphrase_, salt, log_n), stanza.body);
  }
  return std::nullopt;
}

std::string ScryptIdentity::describe() const {
  return describe_passphrase();
}

}  // namespace secretfs::age
