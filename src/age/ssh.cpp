// ssh-ed25519 stanzas, as the age reference implementation writes them:
//
//   -> ssh-ed25519 <tag> <share>
//   <ChaCha20-Poly1305 of the file key, 32 bytes>
//
// The tag is the first four bytes of SHA-256 of the SSH wire public key W, so an identity can
// tell which stanza is meant for it. The wrap is X25519 against the Montgomery form of the
// Ed25519 key, with the shared secret multiplied once more by a tweak derived from W: this
// binds the stanza to the SSH key itself and not only to its Curve25519 point.
#include "secretfs/age/ssh.hpp"

#include <sodium.h>

#include <algorithm>
#include <stdexcept>
#include <utility>
#include <vector>

#include "hkdf.hpp"
#include "secretfs/age/error.hpp"
#include "secretfs/age/x25519.hpp"
#include "ssh_wire.hpp"
#include "x25519_wrap.hpp"

namespace secretfs::age {

namespace {

using ssh_wire::Ed25519PublicKey;

constexpr std::string_view kStanzaType = "ssh-ed25519";
constexpr std::string_view kLabel = "age-encryption.org/v1/ssh-ed25519";
constexpr std::size_t kStanzaArguments = 2;  // tag, share
constexpr std::size_t kTagArgument = 0;
constexpr std::size_t kShareArgument = 1;
constexpr std::size_t kSshTagSize = 4;
constexpr std::size_t kSeedSize = crypto_sign_ed25519_SEEDBYTES;

std::array<std::uint8_t, crypto_hash_sha256_BYTES> sha256(std::span<const std::uint8_t> bytes) {
  std::array<std::uint8_t, crypto_hash_sha256_BYTES> digest{};
  crypto_hash_sha256(digest.data(), bytes.data(), bytes.size());
  return digest;
}

std::string tag_of(std::span<const std::uint8_t> public_blob) {
  const auto digest = sha256(public_blob);
  return encode_base64_unpadded(std::span(digest).first(kSshTagSize));
}

Curve25519Point montgomery_public_key(const Ed25519PublicKey& ed25519_public_key) {
  Curve25519Point montgomery{};
  // libsodium refuses small-order points and points outside the main subgroup; no real
  // ssh-keygen key is either, so a refusal means a crafted or corrupt key.
  if (crypto_sign_ed25519_pk_to_curve25519(montgomery.data(), ed25519_public_key.data()) != 0) {
    throw Error(ErrorKind::key, "ssh-ed25519 public key is not a valid Ed25519 point");
  }
  return montgomery;
}

// HKDF with an empty input and W as the salt: swapping the two gives a different key that
// age refuses.
SecretBytes tweak_of(std::span<const std::uint8_t> public_blob) {
  return hkdf_sha256({}, public_blob, kLabel);
}

SecretBytes wrap_key_of(const SecretBytes& shared_secret, std::span<const std::uint8_t> share,
                        const Curve25519Point& recipient) {
  std::vector<std::uint8_t> salt(share.begin(), share.end());
  salt.insert(salt.end(), recipient.begin(), recipient.end());
  return hkdf_sha256(shared_secret.span(), salt, kLabel);
}

// Comments come from key files and end up in logs, so only printable ASCII is shown.
std::string printable(std::string_view text) {
  constexpr char kFirstPrintable = 0x20;
  constexpr char kLastPrintable = 0x7e;
  std::string shown(text);
  for (char& c : shown) {
    if (c < kFirstPrintable || c > kLastPrintable) {
      c = '?';
    }
  }
  return shown;
}

// What an identity needs besides its seed, recomputed on use so that only the seed is kept.
struct KeyPair {
  Ed25519PublicKey public_key{};
  SecretBytes scalar;  // the X25519 scalar: SHA-512(seed)[0..32), clamped
};

KeyPair key_pair_of(const SecretBytes& seed) {
  KeyPair pair;
  SecretBytes secret_key(crypto_sign_ed25519_SECRETKEYBYTES);
  crypto_sign_ed25519_seed_keypair(pair.public_key.data(), secret_key.data(), seed.data());
  pair.scalar = SecretBytes(crypto_scalarmult_SCALARBYTES);
  crypto_sign_ed25519_sk_to_curve25519(pair.scalar.data(), secret_key.data());
  return pair;
}

// X25519(scalar, point) followed by X25519(tweak, result). std::nullopt when either result
// is all zeros, which only a low-order point can cause.
std::optional<SecretBytes> tweaked_shared_secret(const SecretBytes& scalar,
                                                 std::span<const std::uint8_t> point,
                                                 const SecretBytes& tweak) {
  const auto shared = x25519_shared_secret(scalar.span(), point);
  if (!shared) {
    return std::nullopt;
  }
  return x25519_shared_secret(tweak.span(), shared->span());
}

// The share of an ssh-ed25519 stanza after the structural checks the reference makes before
// looking at the tag; any failure is a header error because the stanza type is ours.
Curve25519Point checked_share(const Stanza& stanza, std::size_t index) {
  if (stanza.args.size() != kStanzaArguments) {
    throw Error(ErrorKind::header, stanza_name(index) + ": ssh-ed25519 stanza has " +
                                       std::to_string(stanza.args.size()) +
                                       " arguments, want 2 (tag and share)");
  }
  const Curve25519Point share = decode_share(stanza, kShareArgument, index);
  require_wrapped_file_key(stanza, index);
  return share;
}

}  // namespace

// --- recipient -------------------------------------------------------------------------------

std::unique_ptr<SshEd25519Recipient> SshEd25519Recipient::parse(std::string_view line) {
  constexpr std::string_view kSeparators = " \t";
  const auto type_end = line.find_first_of(kSeparators);
  const std::string_view type = line.substr(0, type_end);
  if (ssh_wire::is_other_ssh_key_type(type)) {
    throw Error(ErrorKind::unsupported,
                "SSH key type " + std::string(type) + " is not supported; use an ssh-ed25519 key");
  }
  if (type != ssh_wire::kEd25519KeyType || type_end == std::string_view::npos) {
    throw Error(ErrorKind::key, "not an ssh-ed25519 public key (want \"ssh-ed25519 AAAA...\")");
  }

  std::string_view rest = line.substr(type_end);
  rest.remove_prefix(std::min(rest.find_first_not_of(kSeparators), rest.size()));
  const std::string_view encoded = rest.substr(0, rest.find_first_of(kSeparators));
  std::vector<std::uint8_t> blob(ssh_wire::max_decoded_size(encoded.size()));
  std::size_t blob_size = 0;
  if (encoded.empty() || !ssh_wire::decode_base64_padded(encoded, nullptr, blob, blob_size)) {
    throw Error(ErrorKind::key, "ssh-ed25519 public key is not valid base64");
  }
  blob.resize(blob_size);

  ssh_wire::Reader reader(blob, "ssh-ed25519 public key");
  const std::string_view inner_type = reader.read_text("key type");
  if (inner_type != ssh_wire::kEd25519KeyType) {
    reader.fail("encodes key type \"" + std::string(inner_type) + "\", want ssh-ed25519");
  }
  const auto key = reader.read_string("key");
  if (key.size() != ssh_wire::kEd25519PublicKeySize) {
    reader.fail("key is " + std::to_string(key.size()) + " bytes, want 32");
  }
  reader.expect_end("the key");

  Ed25519PublicKey public_key{};
  std::copy(key.begin(), key.end(), public_key.begin());
  return std::make_unique<SshEd25519Recipient>(public_key);
}

SshEd25519Recipient::SshEd25519Recipient(const std::array<std::uint8_t, 32>& ed25519_public_key)
    : ed25519_public_key_(ed25519_public_key) {
  initialize_sodium();
  montgomery_public_key(ed25519_public_key_);  // refuse an unusable key now, not at wrap time
}

Stanza SshEd25519Recipient::wrap(std::span<const std::uint8_t> file_key) const {
  if (file_key.size() != kFileKeySize) {
    throw std::invalid_argument("ssh-ed25519 wrap: file key must be 16 bytes");
  }
  const Curve25519Point recipient = montgomery_public_key(ed25519_public_key_);
  const auto public_blob = ssh_wire::ed25519_public_blob(ed25519_public_key_);

  SecretBytes ephemeral(crypto_scalarmult_SCALARBYTES);
  randombytes_buf(ephemeral.data(), ephemeral.size());
  const Curve25519Point share = x25519_public_key(ephemeral.span());

  const auto shared_secret = tweaked_shared_secret(ephemeral, recipient, tweak_of(public_blob));
  if (!shared_secret) {
    throw Error(ErrorKind::key, "ssh-ed25519 public key gives an all-zero shared secret");
  }
  const SecretBytes wrap_key = wrap_key_of(*shared_secret, share, recipient);

  return Stanza{.type = std::string(kStanzaType),
                .args = {tag_of(public_blob), encode_base64_unpadded(share)},
                .body = seal_file_key(wrap_key, file_key)};
}

std::string SshEd25519Recipient::describe() const {
  return std::string(ssh_wire::kEd25519KeyType) + " " +
         encode_base64_padded(ssh_wire::ed25519_public_blob(ed25519_public_key_));
}

// --- identity --------------------------------------------------------------------------------

SshEd25519Identity::SshEd25519Identity(SecretBytes seed, std::string comment)
    : seed_(std::move(seed)), comment_(std::move(comment)) {
  initialize_sodium();
  if (seed_.size() != kSeedSize) {
    throw Error(ErrorKind::key,
                "ssh-ed25519 seed is " + std::to_string(seed_.size()) + " bytes, want 32");
  }
}

std::optional<SecretBytes> SshEd25519Identity::unwrap(std::span<const Stanza> stanzas) const {
  const KeyPair pair = key_pair_of(seed_);
  const auto public_blob = ssh_wire::ed25519_public_blob(pair.public_key);
  const std::string tag = tag_of(public_blob);
  const Curve25519Point own_montgomery = x25519_public_key(pair.scalar.span());

  for (std::size_t index = 0; index < stanzas.size(); ++index) {
    const Stanza& stanza = stanzas[index];
    if (stanza.type != kStanzaType) {
      continue;
    }
    const Curve25519Point share = checked_share(stanza, index);
    if (stanza.args[kTagArgument] != tag) {
      continue;  // the tag is public; a plain comparison leaks nothing
    }

    const auto shared_secret = tweaked_shared_secret(pair.scalar, share, tweak_of(public_blob));
    if (!shared_secret) {
      throw Error(ErrorKind::header,
                  stanza_name(index) + ": ssh-ed25519 share is a low-order point");
    }
    auto file_key = open_file_key(wrap_key_of(*shared_secret, share, own_montgomery), stanza.body);
    if (!file_key) {
      // The tag said this stanza is for our key, so a failure is corruption or an attack,
      // not a stanza for someone else.
      throw Error(ErrorKind::header, stanza_name(index) + ": ssh-ed25519 stanza for " + describe() +
                                         " does not authenticate");
    }
    return file_key;
  }
  return std::nullopt;
}

std::string SshEd25519Identity::describe() const {
  const KeyPair pair = key_pair_of(seed_);
  const auto digest = sha256(ssh_wire::ed25519_public_blob(pair.public_key));
  std::string text = "ssh-ed25519 SHA256:" + encode_base64_unpadded(digest);
  if (!comment_.empty()) {
    text += " (" + printable(comment_) + ")";
  }
  return text;
}

std::unique_ptr<Identity> SshEd25519Identity::derived_x25519() const {
  return std::make_unique<X25519Identity>(key_pair_of(seed_).scalar);
}

std::unique_ptr<SshEd25519Recipient> SshEd25519Identity::recipient() const {
  return std::make_unique<SshEd25519Recipient>(key_pair_of(seed_).public_key);
}

}  // namespace secretfs::age
