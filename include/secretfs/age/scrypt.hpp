// Passphrase stanzas ("-> scrypt salt logN"). Kept for completeness and the test vectors;
// a daemon serving files at boot has no one to type a passphrase.
#pragma once

#include <memory>

#include "secretfs/age/identity.hpp"

namespace secretfs::age {

// The highest work factor accepted by default: 2^22 costs 4 GiB of memory.
inline constexpr int kMaxScryptLogN = 22;
// What age writes by default.
inline constexpr int kDefaultScryptLogN = 18;

class ScryptRecipient final : public Recipient {
 public:
  ScryptRecipient(SecretBytes passphrase, int log_n = kDefaultScryptLogN);
  Stanza wrap(std::span<const std::uint8_t> file_key) const override;
  std::string describe() const override;  // "scrypt passphrase"

 private:
  SecretBytes passphrase_;
  int log_n_;
};

class ScryptIdentity final : public Identity {
 public:
  explicit ScryptIdentity(SecretBytes passphrase, int max_log_n = kMaxScryptLogN);

  // Enforces age's rule that a scrypt stanza is the only stanza of its file.
  std::optional<SecretBytes> unwrap(std::span<const Stanza> stanzas) const override;
  std::string describe() const override;  // "scrypt passphrase"

 private:
  SecretBytes passphrase_;
  int max_log_n_;
};

}  // namespace secretfs::age
