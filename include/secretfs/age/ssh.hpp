// ssh-ed25519 recipients and identities, as the age reference implementation defines them,
// so that a host's /etc/ssh/ssh_host_ed25519_key opens files encrypted to its public key.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <string_view>

#include "secretfs/age/identity.hpp"

namespace secretfs::age {

class SshEd25519Recipient final : public Recipient {
 public:
  // Parses an authorized_keys line "ssh-ed25519 AAAA… [comment]". Throws Error(unsupported)
  // for other valid key types (ssh-rsa, ecdsa) and Error(key) for malformed input.
  static std::unique_ptr<SshEd25519Recipient> parse(std::string_view line);

  explicit SshEd25519Recipient(const std::array<std::uint8_t, 32>& ed25519_public_key);

  Stanza wrap(std::span<const std::uint8_t> file_key) const override;
  std::string describe() const override;  // "ssh-ed25519 AAAA…"

 private:
  std::array<std::uint8_t, 32> ed25519_public_key_;
};

class SshEd25519Identity final : public Identity {
 public:
  // `seed` is the 32-byte Ed25519 seed; `comment` comes from the key file.
  SshEd25519Identity(SecretBytes seed, std::string comment);

  std::optional<SecretBytes> unwrap(std::span<const Stanza> stanzas) const override;
  std::string describe() const override;  // "ssh-ed25519 SHA256:<fingerprint> (comment)"

  // The native X25519 identity with the same scalar, which opens files encrypted to the
  // key's ssh-to-age recipient (what sops-nix does with host keys).
  std::unique_ptr<Identity> derived_x25519() const;

  // The public half, as a recipient: files encrypted to it open with this identity.
  std::unique_ptr<SshEd25519Recipient> recipient() const;

 private:
  SecretBytes seed_;
  std::string comment_;
};

// Parses an unencrypted "-----BEGIN OPENSSH PRIVATE KEY-----" file holding an ssh-ed25519 key.
// Throws Error(unsupported) for passphrase-protected keys and other key types (naming them),
// Error(key) for a malformed file. `source` names the file in messages.
std::unique_ptr<SshEd25519Identity> parse_openssh_private_key(std::string_view text,
                                                              std::string_view source);

}  // namespace secretfs::age
