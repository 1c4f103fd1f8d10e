#include "state/entry_names.hpp"

#include <algorithm>
#include <charconv>

#include "state/durable_files.hpp"

namespace secretfs::state {

namespace {

constexpr std::size_t kSha256HexLength = 64;

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

bool is_lower_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f');
}

}  // namespace

std::optional<Number> parse_number(std::string_view text) {
  if (text.empty() || text.front() == '0' || !std::all_of(text.begin(), text.end(), is_digit)) {
    return std::nullopt;
  }
  Number number = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (error != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return number;
}

bool is_blob_name(std::string_view name) {
  return name.size() == kSha256HexLength && std::all_of(name.begin(), name.end(), is_lower_hex);
}

bool is_temporary_name(std::string_view name) {
  return name.starts_with(kTemporaryPrefix);
}

std::string temporary_name(std::string_view purpose) {
  return std::string(kTemporaryPrefix) + std::string(purpose) + "-" + random_suffix();
}

}  // namespace secretfs::state
