#include "secretfs/secret_bytes.hpp"

#include <sodium.h>

#include <cstring>
#include <new>
#include <stdexcept>
#include <utility>

namespace secretfs {

void initialize_sodium() {
  // sodium_init is idempotent and thread-safe after the first call; it returns 1 when
  // already initialised and -1 only when no random source can be opened.
  if (sodium_init() < 0) {
    throw std::runtime_error("libsodium could not be initialised (no random source)");
  }
}

SecretBytes::SecretBytes(std::size_t size) : size_(size) {
  initialize_sodium();
  // sodium_malloc(0) still maps guard pages; ask for one byte so that data() is never null
  // and an empty secret behaves like any other.
  data_ = static_cast<std::uint8_t*>(sodium_malloc(size == 0 ? 1 : size));
  if (data_ == nullptr) {
    size_ = 0;
    throw std::bad_alloc();
  }
}

SecretBytes SecretBytes::copy_of(std::span<const std::uint8_t> bytes) {
  SecretBytes copy(bytes.size());
  if (!bytes.empty()) {
    std::memcpy(copy.data(), bytes.data(), bytes.size());
  }
  return copy;
}

SecretBytes::~SecretBytes() {
  release();
}

SecretBytes::SecretBytes(SecretBytes&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

void SecretBytes::shrink(std::size_t size) {
  if (size >= size_) {
    return;
  }
  sodium_memzero(data_ + size, size_ - size);
  size_ = size;
}

void SecretBytes::release() noexcept {
  if (data_ != nullptr) {
    // sodium_free wipes the whole allocation before unmapping it.
    sodium_free(data_);
    data_ = nullptr;
    size_ = 0;
  }
}

}  // namespace secretfs
