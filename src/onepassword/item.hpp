// An item as `op item get --format json` prints it, parsed in locked memory, and the field a
// reference names in it.
#pragma once

#include <sodium.h>

#include <cstdint>
#include <map>
#include <new>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "secretfs/onepassword.hpp"

namespace secretfs::onepassword {

// Puts every object, array, string and map node of a parsed item in sodium_malloc'd memory,
// which is locked, kept out of core dumps and wiped when freed. Strings are allocated through
// it as whole objects, so even the bytes of a short string (kept inside the string object)
// live there. Each allocation costs a few pages; an item has a few hundred, once per refresh.
template <typename T>
struct SodiumAllocator {
  using value_type = T;

  SodiumAllocator() noexcept = default;
  template <typename U>
  SodiumAllocator(const SodiumAllocator<U>&) noexcept {}  // NOLINT: rebinding is implicit

  // sodium_malloc ends the block at a guard page, so its address is aligned only as far as
  // the size is; n * sizeof(T) is a multiple of alignof(T), which is all T needs.
  T* allocate(std::size_t count) {
    initialize_sodium();
    void* block = sodium_allocarray(count, sizeof(T));
    if (block == nullptr) {
      throw std::bad_alloc();
    }
    return static_cast<T*>(block);
  }
  void deallocate(T* block, std::size_t) noexcept { sodium_free(block); }

  template <typename U>
  bool operator==(const SodiumAllocator<U>&) const noexcept {
    return true;
  }
};

using LockedString = std::basic_string<char, std::char_traits<char>, SodiumAllocator<char>>;
using ItemJson = nlohmann::basic_json<std::map, std::vector, LockedString, bool, std::int64_t,
                                      std::uint64_t, double, SodiumAllocator>;

// The item in `output`, or nothing when it is not a JSON object.
std::optional<ItemJson> parse_item(const SecretBytes& output);

// The reference names a file attachment of the item; `op read` fetches its bytes.
struct Attachment {};

// The value of the field `reference` names in `item`, why there is none, or an Attachment.
std::variant<SecretBytes, Error, Attachment> pick_field(const ItemJson& item,
                                                        const Reference& reference);

}  // namespace secretfs::onepassword
