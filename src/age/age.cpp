// Whole-file encryption and decryption, in the order that gives each failure its class:
// armor, header grammar, stanzas, MAC, then payload.
#include "secretfs/age/age.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <optional>

#include "hkdf.hpp"
#include "secretfs/age/armor.hpp"
#include "secretfs/age/format.hpp"
#include "secretfs/age/stream.hpp"
#include "secretfs/unique_fd.hpp"

namespace secretfs::age {

namespace {

constexpr std::string_view kHeaderLabel = "header";
constexpr std::string_view kScryptType = "scrypt";

using Mac = std::array<std::uint8_t, kMacSize>;

static_assert(kMacSize == crypto_auth_hmacsha256_BYTES);
static_assert(kHkdfOutputSize == crypto_auth_hmacsha256_KEYBYTES);

// The binary age file inside `file`, de-armored when needed.
class BinaryFile {
 public:
  explicit BinaryFile(std::span<const std::uint8_t> file) : bytes_(file) {
    if (is_armored(file)) {
      dearmored_ = dearmor(file);
      bytes_ = dearmored_;
    }
  }

  std::span<const std::uint8_t> bytes() const { return bytes_; }

 private:
  std::vector<std::uint8_t> dearmored_;
  std::span<const std::uint8_t> bytes_;
};

Mac header_mac(std::span<const std::uint8_t> file_key, std::span<const std::uint8_t> header_text) {
  const auto key = hkdf_sha256(file_key, {}, kHeaderLabel);
  Mac mac{};
  crypto_auth_hmacsha256(mac.data(), header_text.data(), header_text.size(), key.data());
  return mac;
}

// The index of an scrypt stanza that shares the header with others, if there is one.
std::optional<std::size_t> crowded_scrypt_stanza(const std::vector<Stanza>& stanzas) {
  const auto scrypt = std::find_if(stanzas.begin(), stanzas.end(),
                                   [](const Stanza& stanza) { return stanza.type == kScryptType; });
  if (scrypt == stanzas.end() || stanzas.size() == 1) {
    return std::nullopt;
  }
  return scrypt - stanzas.begin();
}

// age writes a passphrase stanza only on its own, and a file where it has company could be
// opened by the other recipients behind the passphrase holder's back. Refusing such files
// for every identity, not only for passphrases, keeps the outcome independent of the order
// in which identities are tried.
void require_lone_scrypt_stanza(const Header& header) {
  if (const auto index = crowded_scrypt_stanza(header.stanzas)) {
    throw Error(ErrorKind::header, "stanza " + std::to_string(*index + 1) +
                                       ": an scrypt stanza must be the only stanza, the header "
                                       "has " +
                                       std::to_string(header.stanzas.size()));
  }
}

std::string list_stanza_types(const Header& header) {
  std::string types;
  for (const auto& stanza : header.stanzas) {
    types += (types.empty() ? "" : ", ") + stanza.type;
  }
  return types;
}

std::string list_identities(std::span<const Identity* const> identities) {
  std::string list = "tried " + std::to_string(identities.size());
  for (std::size_t i = 0; i < identities.size(); ++i) {
    list += (i == 0 ? ": " : ", ") + identities[i]->describe();
  }
  return list;
}

// The first identity, in order, that unwraps a stanza gives the file key. A malformed stanza
// stops the search at once: it is a broken file, not a stanza for someone else.
SecretBytes find_file_key(const Header& header, std::span<const Identity* const> identities) {
  require_lone_scrypt_stanza(header);
  for (const auto* identity : identities) {
    if (auto file_key = identity->unwrap(header.stanzas)) {
      return std::move(*file_key);
    }
  }
  throw Error(ErrorKind::no_match,
              "no identity matches any stanza (stanzas: " + list_stanza_types(header) + "; " +
                  list_identities(identities) + ")");
}

// Checks that the header MAC commits to `file_key`.
void check_mac(std::span<const std::uint8_t> binary, const Header& header,
               std::span<const std::uint8_t> file_key) {
  const auto mac = header_mac(file_key, binary.first(header.mac_input_size));
  if (crypto_verify_32(mac.data(), header.mac.data()) != 0) {
    throw Error(ErrorKind::hmac, "header MAC does not match the file key");
  }
}

// Unwraps the file key and checks that the header MAC commits to it.
SecretBytes open_header(std::span<const std::uint8_t> binary, const Header& header,
                        std::span<const Identity* const> identities) {
  auto file_key = find_file_key(header, identities);
  check_mac(binary, header, file_key.span());
  return file_key;
}

// The payload after the header. A file too short to hold the payload nonce counts as a broken
// header, as the age test vectors class it.
std::span<const std::uint8_t> payload_of(std::span<const std::uint8_t> binary,
                                         const Header& header) {
  const auto payload = binary.subspan(header.payload_offset);
  if (payload.size() < kPayloadNonceSize) {
    throw Error(ErrorKind::header,
                "payload nonce is " + std::to_string(payload.size()) + " bytes, want 16");
  }
  return payload;
}

[[noreturn]] void fail_to_read(const std::filesystem::path& path, int error) {
  throw Error(ErrorKind::io, "cannot read " + path.string() + ": " + std::strerror(error));
}

enum class Require { anything, regular_file };

// Reads to the end of the file, sized by fstat so that a small file costs one read; a file
// that grows meanwhile (or a pipe, whose size is 0) is read to its end anyway.
FileContents read_contents(const std::filesystem::path& path, Require require,
                           std::uint64_t max_size) {
  // Where only a regular file will do, O_NONBLOCK keeps a FIFO in its place from blocking the
  // open forever (it has no effect on reading a regular file).
  const int nonblock = require == Require::regular_file ? O_NONBLOCK : 0;
  const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | nonblock));
  if (fd.get() < 0) {
    fail_to_read(path, errno);
  }
  FileContents file;
  if (::fstat(fd.get(), &file.status) != 0) {
    fail_to_read(path, errno);
  }
  if (require == Require::regular_file && !S_ISREG(file.status.st_mode)) {
    throw Error(ErrorKind::io, path.string() + ": not a regular file");
  }
  const auto too_large = [&] {
    throw Error(ErrorKind::io, path.string() + ": larger than the limit of " +
                                   std::to_string(max_size) + " bytes");
  };
  if (static_cast<std::uint64_t>(std::max<off_t>(file.status.st_size, 0)) > max_size) {
    too_large();
  }
  // One byte more than the size, so that reaching the end needs no second, growing read.
  file.bytes.resize(static_cast<std::size_t>(std::max<off_t>(file.status.st_size, 0)) + 1);
  std::size_t filled = 0;
  for (;;) {
    if (filled == file.bytes.size()) {
      file.bytes.resize(filled + kChunkSize);
    }
    const auto got = ::read(fd.get(), file.bytes.data() + filled, file.bytes.size() - filled);
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got < 0) {
      fail_to_read(path, errno);
    }
    if (got == 0) {
      break;
    }
    filled += static_cast<std::size_t>(got);
    if (filled > max_size) {
      too_large();  // it grew while read
    }
  }
  file.bytes.resize(filled);
  return file;
}

}  // namespace

SecretBytes decrypt(std::span<const std::uint8_t> file,
                    std::span<const Identity* const> identities) {
  const BinaryFile binary(file);
  const auto header = parse_header(binary.bytes());
  const auto file_key = open_header(binary.bytes(), header, identities);
  return decrypt_payload(file_key.span(), payload_of(binary.bytes(), header));
}

void verify_header(std::span<const std::uint8_t> file,
                   std::span<const Identity* const> identities) {
  const BinaryFile binary(file);
  const auto header = parse_header(binary.bytes());
  open_header(binary.bytes(), header, identities);
  payload_of(binary.bytes(), header);
}

OpenedFile open_file(std::vector<std::uint8_t> file, std::span<const Identity* const> identities) {
  OpenedFile opened;
  opened.armored = is_armored(file);
  opened.binary = opened.armored ? dearmor(file) : std::move(file);
  const auto header = parse_header(opened.binary);
  const auto file_key = open_header(opened.binary, header, identities);
  const auto payload = payload_of(opened.binary, header);
  if (!plaintext_size(payload.size())) {
    throw Error(ErrorKind::payload, "payload of " + std::to_string(payload.size()) +
                                        " bytes cannot form a valid STREAM");
  }
  opened.payload_key = payload_key(file_key.span(), payload.first(kPayloadNonceSize));
  opened.chunks_offset = header.payload_offset + kPayloadNonceSize;
  return opened;
}

std::uint64_t plaintext_size(std::span<const std::uint8_t> file) {
  const BinaryFile binary(file);
  const auto header = parse_header(binary.bytes());
  const std::uint64_t payload_size = payload_of(binary.bytes(), header).size();
  const auto size = plaintext_size(payload_size);
  if (!size) {
    throw Error(ErrorKind::payload,
                "payload of " + std::to_string(payload_size) + " bytes cannot form a valid STREAM");
  }
  return *size;
}

std::vector<std::uint8_t> encrypt(std::span<const std::uint8_t> plaintext,
                                  std::span<const Recipient* const> recipients, Output output) {
  if (recipients.empty()) {
    throw Error(ErrorKind::key, "no recipients to encrypt to");
  }
  initialize_sodium();
  SecretBytes file_key(kFileKeySize);
  randombytes_buf(file_key.data(), file_key.size());

  std::vector<Stanza> stanzas;
  for (const auto* recipient : recipients) {
    stanzas.push_back(recipient->wrap(file_key.span()));
  }
  if (crowded_scrypt_stanza(stanzas)) {
    throw Error(ErrorKind::key, "a passphrase cannot be combined with other recipients");
  }

  const auto text = encode_header_without_mac(stanzas);
  const auto mac = header_mac(file_key.span(), as_bytes(text));
  const auto mac_line = encode_mac_line(mac);
  const auto payload = encrypt_payload(file_key.span(), plaintext);

  std::vector<std::uint8_t> binary;
  binary.reserve(text.size() + mac_line.size() + payload.size());
  binary.insert(binary.end(), text.begin(), text.end());
  binary.insert(binary.end(), mac_line.begin(), mac_line.end());
  binary.insert(binary.end(), payload.begin(), payload.end());
  if (output == Output::binary) {
    return binary;
  }
  const auto armored = armor(binary);
  return {armored.begin(), armored.end()};
}

std::vector<const Identity*> pointers(const Identities& identities) {
  std::vector<const Identity*> raw;
  for (const auto& identity : identities) {
    raw.push_back(identity.get());
  }
  return raw;
}

std::vector<const Recipient*> pointers(const Recipients& recipients) {
  std::vector<const Recipient*> raw;
  for (const auto& recipient : recipients) {
    raw.push_back(recipient.get());
  }
  return raw;
}

std::vector<std::uint8_t> read_file(const std::filesystem::path& path) {
  return read_contents(path, Require::anything, UINT64_MAX).bytes;
}

FileContents read_regular_file(const std::filesystem::path& path, std::uint64_t max_size) {
  return read_contents(path, Require::regular_file, max_size);
}

}  // namespace secretfs::age
