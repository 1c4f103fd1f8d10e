// Unencrypted ssh-ed25519 keys in OpenSSH's "openssh-key-v1" container (PROTOCOL.key):
//
//   "openssh-key-v1\0" string cipher, string kdf, string kdf options, uint32 key count,
//   string public key, string private section
//   private section: uint32 check, uint32 check, string type, string pk, string seed || pk,
//                    string comment, padding 1, 2, 3, ... up to the cipher block size
//
// Host keys decide which secrets a machine can read, so every field is checked, including
// the ones a lenient reader could skip: a key that does not parse exactly is refused.
#include <sodium.h>

#include <algorithm>
#include <string>

#include "secretfs/age/error.hpp"
#include "secretfs/age/ssh.hpp"
#include "ssh_wire.hpp"

namespace secretfs::age {

namespace {

constexpr std::string_view kBeginLine = "-----BEGIN OPENSSH PRIVATE KEY-----";
constexpr std::string_view kEndLine = "-----END OPENSSH PRIVATE KEY-----";
constexpr std::string_view kPemBegin = "-----BEGIN ";
constexpr std::string_view kPemDashes = "-----";
constexpr std::string_view kWhitespace = " \t\r\n";
constexpr std::string_view kMagic{"openssh-key-v1\0", 15};  // the NUL is part of the magic
constexpr std::string_view kNoCipher = "none";
constexpr std::string_view kNoKdf = "none";
constexpr std::uint32_t kSupportedKeyCount = 1;  // OpenSSH itself writes and reads one key
constexpr std::size_t kUnencryptedBlockSize = 8;
constexpr std::size_t kSeedSize = crypto_sign_ed25519_SEEDBYTES;
constexpr std::size_t kMaxNameShown = 40;  // of a cipher or key type named in a message
constexpr std::size_t kSecretKeySize = crypto_sign_ed25519_SECRETKEYBYTES;  // seed || pk

std::string reader_context(std::string_view source) {
  return std::string(source) + ": OpenSSH private key";
}

std::string_view trim_leading_whitespace(std::string_view text) {
  text.remove_prefix(std::min(text.find_first_not_of(kWhitespace), text.size()));
  return text;
}

// Other PEM files (PKCS#1 "RSA PRIVATE KEY", "EC PRIVATE KEY", PKCS#8 "PRIVATE KEY", ...)
// are real keys that secretfs cannot use, which deserves "unsupported", not "malformed".
[[noreturn]] void refuse_other_pem(std::string_view text, std::string_view source) {
  const std::string_view after_begin = text.substr(kPemBegin.size());
  const std::string_view label = after_begin.substr(0, after_begin.find(kPemDashes));
  throw Error(ErrorKind::unsupported,
              std::string(source) + ": PEM \"" + std::string(label.substr(0, kMaxNameShown)) +
                  "\" keys are not supported; use an ssh-ed25519 key in OpenSSH format");
}

// The base64 text between the BEGIN and END lines.
std::string_view pem_body(std::string_view text, std::string_view source) {
  text = trim_leading_whitespace(text);
  if (!text.starts_with(kBeginLine)) {
    if (text.starts_with(kPemBegin)) {
      refuse_other_pem(text, source);
    }
    throw Error(ErrorKind::key, std::string(source) + ": not an OpenSSH private key (want " +
                                    std::string(kBeginLine) + ")");
  }
  text.remove_prefix(kBeginLine.size());
  const auto end = text.find(kEndLine);
  if (end == std::string_view::npos) {
    throw Error(ErrorKind::key, std::string(source) + ": OpenSSH private key has no END line");
  }
  if (text.substr(end + kEndLine.size()).find_first_not_of(kWhitespace) != std::string_view::npos) {
    throw Error(ErrorKind::key,
                std::string(source) + ": unexpected text after the OpenSSH private key");
  }
  return text.substr(0, end);
}

SecretBytes decode_pem_body(std::string_view body, std::string_view source) {
  SecretBytes blob(ssh_wire::max_decoded_size(body.size()));
  std::size_t size = 0;
  if (!ssh_wire::decode_base64_padded(body, " \t\r\n", blob.span(), size)) {
    throw Error(ErrorKind::key,
                std::string(source) + ": OpenSSH private key body is not valid base64");
  }
  blob.shrink(size);
  return blob;
}

void require_ed25519(std::string_view type, const ssh_wire::Reader& reader,
                     std::string_view source) {
  if (type == ssh_wire::kEd25519KeyType) {
    return;
  }
  if (ssh_wire::is_other_ssh_key_type(type)) {
    throw Error(ErrorKind::unsupported, std::string(source) + ": " + std::string(type) +
                                            " keys are not supported; use an ssh-ed25519 key");
  }
  reader.fail("unknown key type \"" + std::string(type.substr(0, kMaxNameShown)) + "\"");
}

// The two strings of the container that hold the key, still undecoded.
struct Container {
  std::span<const std::uint8_t> public_blob;
  std::span<const std::uint8_t> private_section;
};

// Reads the outer fields. Ciphers and KDFs other than "none" mean a passphrase, which would
// need bcrypt_pbkdf and AES.
Container read_container(ssh_wire::Reader& reader, std::string_view source) {
  const auto magic = reader.read_bytes(kMagic.size(), "magic");
  if (ssh_wire::as_text(magic) != kMagic) {
    reader.fail("does not start with \"openssh-key-v1\"");
  }
  const std::string_view cipher = reader.read_text("cipher name");
  const std::string_view kdf = reader.read_text("KDF name");
  const auto kdf_options = reader.read_string("KDF options");
  if (cipher != kNoCipher && kdf != kNoKdf) {
    throw Error(ErrorKind::unsupported,
                std::string(source) + ": passphrase-protected OpenSSH keys are not supported " +
                    "(cipher " + std::string(cipher.substr(0, kMaxNameShown)) +
                    "); use an unencrypted host key or remove the passphrase with ssh-keygen -p");
  }
  if (cipher != kNoCipher || kdf != kNoKdf || !kdf_options.empty()) {
    reader.fail("cipher, KDF and KDF options disagree about encryption");
  }
  const std::uint32_t key_count = reader.read_uint32("key count");
  if (key_count != kSupportedKeyCount) {
    reader.fail("holds " + std::to_string(key_count) + " keys, want 1");
  }

  Container container;
  container.public_blob = reader.read_string("public key");
  ssh_wire::Reader public_reader(container.public_blob, reader_context(source));
  require_ed25519(public_reader.read_text("public key type"), public_reader, source);

  container.private_section = reader.read_string("private section");
  reader.expect_end("the private section");
  return container;
}

void check_padding(std::span<const std::uint8_t> padding, std::size_t section_size,
                   const ssh_wire::Reader& reader) {
  if (section_size % kUnencryptedBlockSize != 0) {
    reader.fail("private section is " + std::to_string(section_size) +
                " bytes, not a multiple of 8");
  }
  if (padding.size() >= kUnencryptedBlockSize) {
    reader.fail(std::to_string(padding.size()) + " bytes of padding, want fewer than 8");
  }
  for (std::size_t i = 0; i < padding.size(); ++i) {
    if (padding[i] != i + 1) {
      reader.fail("padding is not 1, 2, 3, ...");
    }
  }
}

// Checks that the seed, both copies of the public key and the public blob all describe the
// same key, so that a corrupted or spliced file cannot yield an identity for another key.
void check_key_consistency(std::span<const std::uint8_t> public_key,
                           std::span<const std::uint8_t> secret_key,
                           std::span<const std::uint8_t> public_blob,
                           const ssh_wire::Reader& reader) {
  if (public_key.size() != ssh_wire::kEd25519PublicKeySize) {
    reader.fail("public key is " + std::to_string(public_key.size()) + " bytes, want 32");
  }
  if (secret_key.size() != kSecretKeySize) {
    reader.fail("private key is " + std::to_string(secret_key.size()) + " bytes, want 64");
  }
  ssh_wire::Ed25519PublicKey stated{};
  std::copy(public_key.begin(), public_key.end(), stated.begin());
  if (crypto_verify_32(secret_key.data() + kSeedSize, stated.data()) != 0) {
    reader.fail("the two copies of the public key differ");
  }
  const auto expected_blob = ssh_wire::ed25519_public_blob(stated);
  if (!std::equal(public_blob.begin(), public_blob.end(), expected_blob.begin(),
                  expected_blob.end())) {
    reader.fail("the public key does not match the private section");
  }

  ssh_wire::Ed25519PublicKey derived{};
  SecretBytes derived_secret(kSecretKeySize);
  crypto_sign_ed25519_seed_keypair(derived.data(), derived_secret.data(), secret_key.data());
  if (crypto_verify_32(derived.data(), stated.data()) != 0) {
    reader.fail("the private key does not belong to its public key");
  }
}

std::unique_ptr<SshEd25519Identity> read_private_section(std::span<const std::uint8_t> section,
                                                         std::span<const std::uint8_t> public_blob,
                                                         std::string_view source) {
  ssh_wire::Reader reader(section, reader_context(source));
  const std::uint32_t check1 = reader.read_uint32("first check integer");
  const std::uint32_t check2 = reader.read_uint32("second check integer");
  if (check1 != check2) {
    reader.fail("check integers differ (corrupt or wrongly decrypted key)");
  }
  require_ed25519(reader.read_text("private key type"), reader, source);
  const auto public_key = reader.read_string("private section public key");
  const auto secret_key = reader.read_string("private key");
  const std::string comment(reader.read_text("comment"));
  check_key_consistency(public_key, secret_key, public_blob, reader);
  check_padding(reader.rest(), section.size(), reader);

  return std::make_unique<SshEd25519Identity>(SecretBytes::copy_of(secret_key.first(kSeedSize)),
                                              comment);
}

}  // namespace

std::unique_ptr<SshEd25519Identity> parse_openssh_private_key(std::string_view text,
                                                              std::string_view source) {
  initialize_sodium();
  const SecretBytes blob = decode_pem_body(pem_body(text, source), source);
  ssh_wire::Reader reader(blob.span(), reader_context(source));
  const Container container = read_container(reader, source);
  return read_private_section(container.private_section, container.public_blob, source);
}

}  // namespace secretfs::age
