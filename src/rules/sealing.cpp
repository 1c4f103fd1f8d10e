// The recipients record: what it hashes, how it is added, and how a file is checked against it.
#include "rules/sealing.hpp"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <memory>
#include <optional>

#include "rules/rules.hpp"
#include "secretfs/age/armor.hpp"
#include "secretfs/age/format.hpp"
#include "secretfs/age/key_files.hpp"

namespace secretfs::rules {

namespace {

// Versioned so that a later change of what is hashed cannot be mistaken for a match.
constexpr std::string_view kRecordLabel = "secretfs recipients record v1\n";
constexpr std::size_t kRecordSize = 32;

static_assert(age::kFileKeySize >= crypto_generichash_KEYBYTES_MIN);
static_assert(kRecordSize >= crypto_generichash_BYTES_MIN);

using Record = std::array<std::uint8_t, kRecordSize>;

// One spelling per key, whatever comments or spacing the rules file used: the recipient as
// the age library prints it, sorted, without repeats.
std::vector<std::string> canonical_keys(const std::vector<std::string>& recipients) {
  std::vector<std::string> canonical;
  for (const auto& text : recipients) {
    canonical.push_back(age::parse_recipient(text)->describe());
  }
  std::sort(canonical.begin(), canonical.end());
  canonical.erase(std::unique(canonical.begin(), canonical.end()), canonical.end());
  return canonical;
}

std::string canonical_list(const std::vector<std::string>& recipients) {
  const auto canonical = canonical_keys(recipients);
  std::string list(kRecordLabel);
  for (const auto& recipient : canonical) {
    list += recipient + "\n";
  }
  return list;
}

Record record_of(std::span<const std::uint8_t> file_key, const std::string& canonical) {
  Record record{};
  crypto_generichash(record.data(), record.size(),
                     reinterpret_cast<const unsigned char*>(canonical.data()), canonical.size(),
                     file_key.data(), file_key.size());
  return record;
}

// A recipient in name only: its "stanza" is the record, computed from the file key it is given.
class RecordRecipient final : public age::Recipient {
 public:
  explicit RecordRecipient(std::string canonical) : canonical_(std::move(canonical)) {}

  age::Stanza wrap(std::span<const std::uint8_t> file_key) const override {
    const Record record = record_of(file_key, canonical_);
    return age::Stanza{std::string(kRecordStanzaType), {age::encode_base64_unpadded(record)}, {}};
  }

  std::string describe() const override { return "recipients record"; }

 private:
  std::string canonical_;
};

// Passes unwrapping on to an identity and keeps a copy of the file key it finds, which the
// record check needs and age::decrypt does not hand out.
class KeyKeepingIdentity final : public age::Identity {
 public:
  explicit KeyKeepingIdentity(const age::Identity& inner) : inner_(inner) {}

  std::optional<SecretBytes> unwrap(std::span<const age::Stanza> stanzas) const override {
    auto file_key = inner_.unwrap(stanzas);
    if (file_key) {
      kept_ = SecretBytes::copy_of(file_key->span());
    }
    return file_key;
  }

  std::string describe() const override { return inner_.describe(); }

  const std::optional<SecretBytes>& kept() const { return kept_; }

 private:
  const age::Identity& inner_;
  mutable std::optional<SecretBytes> kept_;
};

RecipientsState compare_record(const age::Header& header, const SecretBytes& file_key,
                               const std::vector<std::string>& wanted) {
  const auto stanza =
      std::find_if(header.stanzas.begin(), header.stanzas.end(),
                   [](const age::Stanza& s) { return s.type == kRecordStanzaType; });
  if (stanza == header.stanzas.end()) {
    return RecipientsState::unknown;
  }
  std::vector<std::uint8_t> found;
  const bool well_formed = stanza->args.size() == 1 &&
                           age::decode_base64_unpadded(stanza->args[0], found) &&
                           found.size() == kRecordSize;
  const Record expected = record_of(file_key.span(), canonical_list(wanted));
  // One stanza per recipient plus the record: a stanza added by hand also means "rewrite".
  const bool same_count = header.stanzas.size() == canonical_keys(wanted).size() + 1;
  if (!well_formed || !same_count || crypto_verify_32(found.data(), expected.data()) != 0) {
    return RecipientsState::differ;
  }
  return RecipientsState::match;
}

}  // namespace

std::vector<std::uint8_t> seal(std::span<const std::uint8_t> plaintext,
                               const std::vector<std::string>& recipients, age::Output output) {
  // The record stanza alone would make a well-formed age file that nobody can ever decrypt; the
  // rules loader refuses such rules, and this check stands behind it for every writer.
  if (recipients.empty()) {
    throw RulesError(ErrorKind::no_recipients,
                     "refusing to encrypt to no recipients: nobody could ever decrypt the file");
  }
  age::Recipients parsed;
  for (const auto& text : recipients) {
    parsed.push_back(age::parse_recipient(text));
  }
  parsed.push_back(std::make_unique<RecordRecipient>(canonical_list(recipients)));
  return age::encrypt(plaintext, age::pointers(parsed), output);
}

OpenedFile open_sealed(std::span<const std::uint8_t> file,
                       std::span<const age::Identity* const> identities,
                       const std::vector<std::string>& wanted) {
  std::vector<KeyKeepingIdentity> keepers;
  keepers.reserve(identities.size());
  std::vector<const age::Identity*> pointers;
  for (const auto* identity : identities) {
    pointers.push_back(&keepers.emplace_back(*identity));
  }

  OpenedFile opened;
  opened.plaintext = age::decrypt(file, pointers);
  opened.output = age::is_armored(file) ? age::Output::armored : age::Output::binary;

  const auto binary = opened.output == age::Output::armored
                          ? age::dearmor(file)
                          : std::vector<std::uint8_t>(file.begin(), file.end());
  const auto header = age::parse_header(binary);
  for (const auto& keeper : keepers) {
    if (keeper.kept()) {
      opened.recipients = compare_record(header, *keeper.kept(), wanted);
      break;
    }
  }
  return opened;
}

}  // namespace secretfs::rules
