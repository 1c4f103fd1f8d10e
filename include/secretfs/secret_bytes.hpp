// Memory for plaintext, file keys and identities.
//
// Every byte of a secret lives in a SecretBytes: libsodium guarded pages that are locked
// (never swapped), fenced by guard pages, excluded from core dumps, and wiped with
// sodium_memzero when the buffer is released. Nothing else in secretfs may hold a secret.
//
// Small buffers (file keys, derived keys, most secrets) come from a bounded pool of such
// allocations: a released one is wiped whole and kept for the next request instead of being
// unmapped, so an open of a small secret costs no mmap, mprotect or mlock. A pooled buffer's
// bytes end where its trailing guard page starts, as a fresh allocation's do.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace secretfs {

class SecretBytes {
 public:
  SecretBytes() = default;

  // Allocates `size` bytes with sodium_malloc; throws std::bad_alloc when that fails.
  explicit SecretBytes(std::size_t size);

  // Copies `bytes` into new secure memory.
  static SecretBytes copy_of(std::span<const std::uint8_t> bytes);

  ~SecretBytes();
  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  std::uint8_t* data() { return data_; }
  const std::uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  std::span<std::uint8_t> span() { return {data_, size_}; }
  std::span<const std::uint8_t> span() const { return {data_, size_}; }
  std::string_view view() const { return {reinterpret_cast<const char*>(data_), size_}; }

  // Forgets the bytes past `size` after wiping them; never grows.
  void shrink(std::size_t size);

 private:
  void release() noexcept;

  std::uint8_t* block_ = nullptr;  // what sodium_malloc returned
  std::size_t capacity_ = 0;       // the size sodium_malloc was asked for
  std::uint8_t* data_ = nullptr;   // the last size_ bytes of the block
  std::size_t size_ = 0;
};

// Calls sodium_init once; every entry point calls it before touching libsodium.
void initialize_sodium();

}  // namespace secretfs
