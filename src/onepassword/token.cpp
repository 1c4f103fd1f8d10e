// The service account token file, held to the rules of an identity file: whoever can read it
// can read every secret the account can.
#include <algorithm>
#include <stdexcept>
#include <string>

#include "secretfs/onepassword.hpp"
#include "secretfs/private_file.hpp"

namespace secretfs::onepassword {

namespace {

constexpr std::size_t kMaxTokenFileSize = std::size_t{64} * 1024;  // tokens are under 2 KiB

bool is_space(std::uint8_t byte) {
  return byte == ' ' || byte == '\t' || byte == '\r' || byte == '\n';
}

bool is_control(std::uint8_t byte) {
  constexpr std::uint8_t kDelete = 0x7f;
  return byte < ' ' || byte == kDelete;
}

}  // namespace

SecretBytes read_token_file(const std::filesystem::path& path) {
  const std::string name = "token file " + path.string();
  const SecretBytes contents =
      read_private_file(path, name, kMaxTokenFileSize, FilePermissions::strict).contents;
  std::span<const std::uint8_t> token = contents.span();
  while (!token.empty() && is_space(token.front())) {
    token = token.subspan(1);
  }
  while (!token.empty() && is_space(token.back())) {
    token = token.first(token.size() - 1);
  }
  if (token.empty()) {
    throw std::runtime_error(name + ": empty; write the service account token (ops_...) into it");
  }
  // The token goes into `op`'s environment, where a NUL would cut it and a line break has no
  // place; a real token is one line of printable characters.
  if (std::any_of(token.begin(), token.end(), is_control)) {
    throw std::runtime_error(name +
                             ": holds more than one line or a control character; a "
                             "token is one line");
  }
  return SecretBytes::copy_of(token);
}

}  // namespace secretfs::onepassword
