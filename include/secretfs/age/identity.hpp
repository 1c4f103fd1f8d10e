// What can open a file (an identity) and what a file can be encrypted to (a recipient).
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "secretfs/age/format.hpp"
#include "secretfs/secret_bytes.hpp"

namespace secretfs::age {

class Identity {
 public:
  virtual ~Identity() = default;

  // The file key from the first stanza meant for this identity, or nullopt when none is.
  // Throws Error(header) when a stanza of a type this identity implements is malformed,
  // and Error(no_match) never: "not mine" is nullopt.
  virtual std::optional<SecretBytes> unwrap(std::span<const Stanza> stanzas) const = 0;

  // Public and safe to log: "X25519 age1…", "ssh-ed25519 SHA256:… (comment)".
  virtual std::string describe() const = 0;
};

class Recipient {
 public:
  virtual ~Recipient() = default;

  // A stanza that wraps `file_key` (kFileKeySize bytes) for this recipient.
  virtual Stanza wrap(std::span<const std::uint8_t> file_key) const = 0;

  // The recipient as a user would write it: "age1…" or "ssh-ed25519 AAAA…".
  virtual std::string describe() const = 0;
};

using Identities = std::vector<std::unique_ptr<Identity>>;
using Recipients = std::vector<std::unique_ptr<Recipient>>;

}  // namespace secretfs::age
