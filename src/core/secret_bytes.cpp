#include "secretfs/secret_bytes.hpp"

#include <sodium.h>

#include <cstring>
#include <mutex>
#include <new>
#include <stdexcept>
#include <utility>
#include <vector>

namespace secretfs {

namespace {

// Every pooled block has this capacity: with libsodium's 16-byte canary it fills one 4 KiB
// data page between sodium_malloc's guard pages.
constexpr std::size_t kPooledCapacity = 4096 - 16;
// Enough wiped blocks for every buffer of many concurrent opens; at most this many pages stay
// locked while idle.
constexpr std::size_t kPoolLimit = 64;

// Wiped, locked blocks of kPooledCapacity bytes, ready to be handed out again.
class BlockPool {
 public:
  std::uint8_t* take() {
    const std::lock_guard<std::mutex> hold(mutex_);
    if (blocks_.empty()) {
      return nullptr;
    }
    std::uint8_t* block = blocks_.back();
    blocks_.pop_back();
    return block;
  }

  // Keeps `block`, already wiped, or frees it when the pool is full.
  void give_back(std::uint8_t* block) {
    {
      const std::lock_guard<std::mutex> hold(mutex_);
      if (blocks_.size() < kPoolLimit) {
        blocks_.push_back(block);
        return;
      }
    }
    sodium_free(block);
  }

 private:
  std::mutex mutex_;
  std::vector<std::uint8_t*> blocks_;
};

// Never destroyed: buffers released by other static destructors may still come back to it.
BlockPool& pool() {
  static auto* const instance = new BlockPool();
  return *instance;
}

std::uint8_t* allocate(std::size_t capacity) {
  return static_cast<std::uint8_t*>(sodium_malloc(capacity));
}

}  // namespace

void initialize_sodium() {
  // sodium_init is idempotent and thread-safe after the first call; it returns 1 when
  // already initialised and -1 only when no random source can be opened.
  if (sodium_init() < 0) {
    throw std::runtime_error("libsodium could not be initialised (no random source)");
  }
}

SecretBytes::SecretBytes(std::size_t size) : size_(size) {
  initialize_sodium();
  if (size <= kPooledCapacity) {
    capacity_ = kPooledCapacity;
    block_ = pool().take();
  } else {
    capacity_ = size;
  }
  if (block_ == nullptr) {
    block_ = allocate(capacity_);
  }
  if (block_ == nullptr) {
    capacity_ = size_ = 0;
    throw std::bad_alloc();
  }
  // The bytes end at the block's end, where the guard page catches an overrun.
  data_ = block_ + (capacity_ - size_);
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
    : block_(std::exchange(other.block_, nullptr)),
      capacity_(std::exchange(other.capacity_, 0)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    release();
    block_ = std::exchange(other.block_, nullptr);
    capacity_ = std::exchange(other.capacity_, 0);
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
  if (block_ == nullptr) {
    return;
  }
  if (capacity_ == kPooledCapacity) {
    sodium_memzero(block_, capacity_);
    pool().give_back(block_);
  } else {
    // sodium_free wipes the whole allocation before unmapping it.
    sodium_free(block_);
  }
  block_ = data_ = nullptr;
  capacity_ = size_ = 0;
}

}  // namespace secretfs
