// The STREAM payload, decoded by sizes.
//
// Every chunk but the last holds exactly kChunkSize plaintext bytes, so the payload length
// alone fixes how many chunks there are and which one is final. That lets us reject bad
// sizes before any decryption and decrypt each chunk with the one flag it must carry.
#include <sodium.h>

#include <algorithm>
#include <array>
#include <string>

#include "hkdf.hpp"
#include "secretfs/age/error.hpp"
#include "secretfs/age/stream.hpp"

namespace secretfs::age {

namespace {

constexpr std::size_t kChunkCiphertextSize = kChunkSize + kTagSize;
constexpr std::size_t kChunkNonceSize = crypto_aead_chacha20poly1305_ietf_NPUBBYTES;
constexpr std::uint8_t kFinalChunkFlag = 0x01;
constexpr std::string_view kPayloadLabel = "payload";
constexpr int kBitsPerByte = 8;

static_assert(kTagSize == crypto_aead_chacha20poly1305_ietf_ABYTES);

struct Layout {
  std::uint64_t chunks = 0;
  std::uint64_t plaintext_size = 0;
};

std::uint64_t ceil_div(std::uint64_t n, std::uint64_t d) {
  return n / d + (n % d != 0);
}

// The chunk count and plaintext size for `chunks_size` bytes of chunks, if any fit.
std::optional<Layout> layout_of(std::uint64_t chunks_size) {
  const auto chunks = ceil_div(chunks_size, kChunkCiphertextSize);
  if (chunks == 0 || chunks_size < chunks * kTagSize) {
    return std::nullopt;
  }
  const auto plaintext = chunks_size - chunks * kTagSize;
  // Only an empty plaintext may end in an empty chunk, and then it is the only chunk.
  if (chunks != std::max<std::uint64_t>(1, ceil_div(plaintext, kChunkSize))) {
    return std::nullopt;
  }
  return Layout{chunks, plaintext};
}

// Bytes 0-10 hold the big-endian chunk index, byte 11 the final-chunk flag.
std::array<std::uint8_t, kChunkNonceSize> chunk_nonce(std::uint64_t index, bool final_chunk) {
  std::array<std::uint8_t, kChunkNonceSize> nonce{};
  for (std::size_t i = 0; i < sizeof index; ++i) {
    nonce[kChunkNonceSize - 2 - i] = static_cast<std::uint8_t>(index >> (kBitsPerByte * i));
  }
  nonce.back() = final_chunk ? kFinalChunkFlag : 0;
  return nonce;
}

}  // namespace

SecretBytes payload_key(std::span<const std::uint8_t> file_key,
                        std::span<const std::uint8_t> nonce) {
  return hkdf_sha256(file_key, nonce, kPayloadLabel);
}

std::optional<std::uint64_t> plaintext_size(std::uint64_t payload_size) {
  if (payload_size < kPayloadNonceSize) {
    return std::nullopt;
  }
  const auto layout = layout_of(payload_size - kPayloadNonceSize);
  if (!layout) {
    return std::nullopt;
  }
  return layout->plaintext_size;
}

SecretBytes decrypt_payload(std::span<const std::uint8_t> file_key,
                            std::span<const std::uint8_t> payload) {
  if (payload.size() < kPayloadNonceSize) {
    throw Error(ErrorKind::header,
                "payload nonce is " + std::to_string(payload.size()) + " bytes, want 16");
  }
  const auto key = payload_key(file_key, payload.first(kPayloadNonceSize));
  return decrypt_chunks(key.span(), payload.subspan(kPayloadNonceSize));
}

SecretBytes decrypt_chunks(std::span<const std::uint8_t> payload_key,
                           std::span<const std::uint8_t> chunks) {
  ChunkDecryptor decryptor(payload_key, chunks.size());
  for (std::uint64_t i = 0; i < decryptor.chunk_count(); ++i) {
    decryptor.add(i, chunks.subspan(decryptor.chunk_offset(i), decryptor.chunk_size(i)));
  }
  return decryptor.finish();
}

ChunkDecryptor::ChunkDecryptor(std::span<const std::uint8_t> payload_key, std::uint64_t chunks_size)
    : key_(SecretBytes::copy_of(payload_key)), chunks_size_(chunks_size) {
  if (payload_key.size() != crypto_aead_chacha20poly1305_ietf_KEYBYTES) {
    throw Error(ErrorKind::key, "a payload key is " +
                                    std::to_string(crypto_aead_chacha20poly1305_ietf_KEYBYTES) +
                                    " bytes, not " + std::to_string(payload_key.size()));
  }
  const auto layout = layout_of(chunks_size);
  if (!layout) {
    throw Error(ErrorKind::payload, "payload: " + std::to_string(chunks_size) +
                                        " bytes of chunks cannot form a valid STREAM");
  }
  chunks_ = layout->chunks;
  plaintext_ = SecretBytes(layout->plaintext_size);
}

std::uint64_t ChunkDecryptor::chunk_offset(std::uint64_t index) const {
  return index * kChunkCiphertextSize;
}

std::size_t ChunkDecryptor::chunk_size(std::uint64_t index) const {
  return static_cast<std::size_t>(
      std::min<std::uint64_t>(kChunkCiphertextSize, chunks_size_ - chunk_offset(index)));
}

void ChunkDecryptor::add(std::uint64_t index, std::span<const std::uint8_t> chunk) {
  if (index >= chunks_ || chunk.size() != chunk_size(index)) {
    throw Error(ErrorKind::payload, "payload: chunk " + std::to_string(index + 1) + " of " +
                                        std::to_string(chunks_) + " is " +
                                        std::to_string(chunk.size()) + " bytes");
  }
  const auto nonce12 = chunk_nonce(index, index + 1 == chunks_);
  // On failure the plaintext is released, and so wiped, with the decryptor.
  if (crypto_aead_chacha20poly1305_ietf_decrypt(plaintext_.data() + index * kChunkSize, nullptr,
                                                nullptr, chunk.data(), chunk.size(), nullptr, 0,
                                                nonce12.data(), key_.data()) != 0) {
    throw Error(ErrorKind::payload, "payload: chunk " + std::to_string(index + 1) + " of " +
                                        std::to_string(chunks_) + " fails to authenticate");
  }
  ++added_;
}

SecretBytes ChunkDecryptor::finish() {
  if (added_ != chunks_) {
    throw Error(ErrorKind::payload, "payload: " + std::to_string(chunks_ - added_) + " of " +
                                        std::to_string(chunks_) + " chunks missing");
  }
  return std::move(plaintext_);
}

std::vector<std::uint8_t> encrypt_payload(std::span<const std::uint8_t> file_key,
                                          std::span<const std::uint8_t> plaintext) {
  initialize_sodium();
  std::array<std::uint8_t, kPayloadNonceSize> nonce{};
  randombytes_buf(nonce.data(), nonce.size());
  return encrypt_payload(file_key, nonce, plaintext);
}

std::vector<std::uint8_t> encrypt_payload(std::span<const std::uint8_t> file_key,
                                          std::span<const std::uint8_t, kPayloadNonceSize> nonce,
                                          std::span<const std::uint8_t> plaintext) {
  // A positive multiple of kChunkSize ends in a full final chunk, not an extra empty one.
  const auto chunks = std::max<std::uint64_t>(1, ceil_div(plaintext.size(), kChunkSize));
  std::vector<std::uint8_t> payload(nonce.begin(), nonce.end());
  payload.resize(kPayloadNonceSize + plaintext.size() + chunks * kTagSize);

  const auto key = age::payload_key(file_key, nonce);
  auto* out = payload.data() + kPayloadNonceSize;
  for (std::uint64_t i = 0; i < chunks; ++i) {
    const auto piece = plaintext.subspan(
        i * kChunkSize, std::min<std::size_t>(kChunkSize, plaintext.size() - i * kChunkSize));
    const auto nonce12 = chunk_nonce(i, i + 1 == chunks);
    unsigned long long written = 0;
    crypto_aead_chacha20poly1305_ietf_encrypt(out, &written, piece.data(), piece.size(), nullptr, 0,
                                              nullptr, nonce12.data(), key.data());
    out += written;
  }
  return payload;
}

}  // namespace secretfs::age
