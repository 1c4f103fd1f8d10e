// Fuzzes the STREAM payload decoder. Random bytes almost never authenticate, so most inputs
// describe a payload instead: a plaintext size up to a little over three chunks (so that
// every boundary between chunks can be hit), a damage to do to the payload once it is
// encrypted, and the plaintext's bytes. The first byte picks the mode.
//
// Promises checked: an undamaged payload decrypts to its exact plaintext, whole or chunk by
// chunk in any order; a damaged one fails with Error, never returning plaintext; a payload of
// raw input bytes fails cleanly; plaintext_size() agrees with the encoder.
#include <algorithm>
#include <array>
#include <optional>
#include <vector>

#include "fuzz_support.hpp"
#include "secretfs/age/error.hpp"
#include "secretfs/age/stream.hpp"

namespace {

using namespace secretfs::age;
using secretfs::SecretBytes;
using secretfs::fuzz::require;

constexpr std::array<std::uint8_t, 16> kFileKey = {'f', 'u', 'z', 'z', '-', 'f', 'i', 'l',
                                                   'e', '-', 'k', 'e', 'y', '-', '1', '6'};
constexpr std::array<std::uint8_t, kPayloadNonceSize> kNonce = {
    's', 't', 'r', 'e', 'a', 'm', '-', 'n', 'o', 'n', 'c', 'e', '-', '1', '2', '3'};
constexpr std::size_t kLargestPlaintext = 3 * kChunkSize + 1;
constexpr int kBitsPerByte = 8;

enum class Damage : std::uint8_t { none, flip_bit, truncate, append, raw, count };

// Reads the input front to back; past the end every value is zero.
class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> input) : input_(input) {}

  std::uint64_t number(std::size_t bytes) {
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < bytes; ++i) {
      value = (value << kBitsPerByte) | (input_.empty() ? 0 : input_.front());
      input_ = input_.empty() ? input_ : input_.subspan(1);
    }
    return value;
  }

  std::span<const std::uint8_t> rest() const { return input_; }

 private:
  std::span<const std::uint8_t> input_;
};

// The plaintext: the pattern repeated to `size` bytes (zeros without a pattern).
std::vector<std::uint8_t> plaintext_of(std::span<const std::uint8_t> pattern, std::size_t size) {
  std::vector<std::uint8_t> plaintext(size);
  for (std::size_t i = 0; !pattern.empty() && i < size; ++i) {
    plaintext[i] = pattern[i % pattern.size()];
  }
  return plaintext;
}

void damage(std::vector<std::uint8_t>& payload, Damage kind, std::uint64_t where) {
  const auto at = static_cast<std::size_t>(where % payload.size());
  switch (kind) {
    case Damage::flip_bit:
      payload[at] ^= static_cast<std::uint8_t>(1U << (where % kBitsPerByte));
      break;
    case Damage::truncate:
      payload.resize(at);
      break;
    case Damage::append:
      payload.resize(payload.size() + 1 + where % kTagSize, static_cast<std::uint8_t>(where));
      break;
    default:
      break;
  }
}

bool decrypts(std::span<const std::uint8_t> payload) {
  try {
    decrypt_payload(kFileKey, payload);
    return true;
  } catch (const Error&) {
    return false;
  }
}

// Decrypts the chunks last to first, as concurrent readers may deliver them.
SecretBytes decrypt_backwards(std::span<const std::uint8_t> payload) {
  const auto key = payload_key(kFileKey, payload.first(kPayloadNonceSize));
  const auto chunks = payload.subspan(kPayloadNonceSize);
  ChunkDecryptor decryptor(key.span(), chunks.size());
  for (auto i = decryptor.chunk_count(); i-- > 0;) {
    decryptor.add(i, chunks.subspan(decryptor.chunk_offset(i), decryptor.chunk_size(i)));
  }
  return decryptor.finish();
}

bool same(const SecretBytes& plaintext, const std::vector<std::uint8_t>& expected) {
  return std::equal(expected.begin(), expected.end(), plaintext.data(),
                    plaintext.data() + plaintext.size());
}

void check_undamaged(const std::vector<std::uint8_t>& payload,
                     const std::vector<std::uint8_t>& plaintext) {
  require(plaintext_size(payload.size()) == plaintext.size(),
          "plaintext_size() agrees with the encoder");
  require(same(decrypt_payload(kFileKey, payload), plaintext),
          "an undamaged payload decrypts to its plaintext");
  require(same(decrypt_backwards(payload), plaintext),
          "chunks decrypted in any order give the plaintext");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Reader reader({data, size});
  const auto kind = static_cast<Damage>(reader.number(1) % static_cast<int>(Damage::count));
  if (kind == Damage::raw) {
    decrypts(reader.rest());
    plaintext_size(reader.rest().size());
    return 0;
  }

  const auto length = static_cast<std::size_t>(reader.number(3) % kLargestPlaintext);
  const auto where = reader.number(4);
  const auto plaintext = plaintext_of(reader.rest(), length);
  auto payload = encrypt_payload(kFileKey, kNonce, plaintext);
  if (kind == Damage::none) {
    check_undamaged(payload, plaintext);
    return 0;
  }
  damage(payload, kind, where);
  require(!decrypts(payload), "a damaged payload never decrypts");
  return 0;
}
