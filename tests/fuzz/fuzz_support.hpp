// What every fuzz target shares: the libFuzzer entry point, views of the input, and how a
// broken property is reported. A broken property aborts, which libFuzzer records as a crash
// with its input and which fails the replay test that feeds the saved inputs to the same
// entry point.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace secretfs::fuzz {

inline std::span<const std::uint8_t> as_bytes(const std::uint8_t* data, std::size_t size) {
  return {data, size};
}

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

inline std::span<const std::uint8_t> as_bytes(std::string_view text) {
  return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

// Parsers may refuse any input with their documented error; what they accept must keep the
// promises their headers make. A broken promise names itself and aborts.
inline void require(bool holds, const char* property) {
  if (!holds) {
    std::fprintf(stderr, "fuzz: broken property: %s\n", property);
    std::abort();
  }
}

}  // namespace secretfs::fuzz
