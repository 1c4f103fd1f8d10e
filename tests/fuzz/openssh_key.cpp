// Fuzzes the readers of key files: the "openssh-key-v1" private key container, identity files
// (age identity lists or an OpenSSH key), and recipient lists with their authorized_keys
// lines. Every refusal must be Error(key) or Error(unsupported).
//
// Promises checked: a key that parses can describe itself and derive its X25519 identity;
// every recipient that parses can wrap a file key.
#include <array>
#include <cstdint>
#include <memory>

#include "fuzz_support.hpp"
#include "secretfs/age/error.hpp"
#include "secretfs/age/key_files.hpp"
#include "secretfs/age/ssh.hpp"

namespace {

using namespace secretfs::age;
using secretfs::fuzz::require;

constexpr std::string_view kSource = "fuzz-input";
constexpr std::array<std::uint8_t, kFileKeySize> kFileKey = {};

bool refused_cleanly(const Error& error) {
  return error.kind() == ErrorKind::key || error.kind() == ErrorKind::unsupported;
}

void check_private_key(std::string_view text) {
  std::unique_ptr<SshEd25519Identity> identity;
  try {
    identity = parse_openssh_private_key(text, kSource);
  } catch (const Error& error) {
    require(refused_cleanly(error), "a bad private key is refused as a key problem");
    return;
  }
  identity->describe();
  identity->derived_x25519()->describe();
}

void check_identities(std::string_view text) {
  try {
    parse_identities(text, kSource);
  } catch (const Error& error) {
    require(refused_cleanly(error), "a bad identity file is refused as a key problem");
  }
}

void check_recipients(std::string_view text) {
  Recipients recipients;
  try {
    recipients = parse_recipients(text, kSource);
  } catch (const Error& error) {
    require(refused_cleanly(error), "a bad recipient list is refused as a key problem");
    return;
  }
  for (const auto& recipient : recipients) {
    recipient->wrap(kFileKey);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = secretfs::fuzz::as_text(data, size);
  check_private_key(text);
  check_identities(text);
  check_recipients(text);
  return 0;
}
