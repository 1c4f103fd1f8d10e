// Encrypting a secret file to a rule's recipients, and telling later whether a file still is.
//
// X25519 stanzas are anonymous: nothing in an age header says which `age1…` key a stanza is
// for. So that `rekey` can leave files whose recipients already match byte-identical, files
// written from the rules carry one extra stanza, the recipients record:
//
//   -> secretfs-recipients <base64 of a 32-byte keyed BLAKE2b hash>
//
// The hash covers the sorted list of recipients and is keyed with the file key, so only a
// holder of the file key can compute or check it; an onlooker cannot test guesses of who the
// recipients are. age ignores stanzas of types it does not know, so the files stay ordinary age
// files for every other tool. A file without a record (written by `age`, agenix or
// `secretfs encrypt -r`) has recipients nobody can know, and rekey re-encrypts it once.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "secretfs/age/age.hpp"
#include "secretfs/secret_bytes.hpp"

namespace secretfs::rules {

inline constexpr std::string_view kRecordStanzaType = "secretfs-recipients";

// Encrypts `plaintext` to every recipient ("age1…" or "ssh-ed25519 AAAA…") and adds the
// recipients record. Throws age::Error(key) when a recipient does not parse, and
// RulesError(no_recipients) when `recipients` is empty.
std::vector<std::uint8_t> seal(std::span<const std::uint8_t> plaintext,
                               const std::vector<std::string>& recipients, age::Output output);

enum class RecipientsState {
  match,    // the record says the file is encrypted to exactly the wanted recipients
  differ,   // the record names other recipients
  unknown,  // the file has no record
};

struct OpenedFile {
  SecretBytes plaintext;
  age::Output output = age::Output::binary;  // the file's own form, kept when it is rewritten
  RecipientsState recipients = RecipientsState::unknown;
};

// Decrypts `file` (all or nothing, as age::decrypt) and compares its recipients record with
// `wanted`. Throws age::Error like age::decrypt.
OpenedFile open_sealed(std::span<const std::uint8_t> file,
                       std::span<const age::Identity* const> identities,
                       const std::vector<std::string>& wanted);

}  // namespace secretfs::rules
