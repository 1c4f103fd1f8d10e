#include "fs/values.hpp"

#include <sodium.h>

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <variant>

#include "secretfs/age/age.hpp"
#include "secretfs/age/key_files.hpp"
#include "secretfs/private_file.hpp"

namespace secretfs::fs {

namespace {

std::int64_t seconds_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Every reference fails the same way when `op` cannot even be started with a token.
std::vector<ValueOutcome> all_failed(const std::vector<std::string>& references,
                                     onepassword::Failure failure, const std::string& message) {
  std::vector<ValueOutcome> outcomes;
  for (const auto& reference : references) {
    outcomes.push_back({reference, onepassword::Error{failure, message}, false});
  }
  return outcomes;
}

// Fetches `references` (each parsed; a reference that does not parse fails alone). `results`
// come back in the order of `references`.
std::vector<onepassword::Result> fetch(const manifest::OnePassword& settings,
                                       const std::filesystem::path& config_dir,
                                       const std::vector<std::string>& references,
                                       std::uint64_t max_size, SecretBytes token,
                                       std::stop_token stop) {
  std::vector<onepassword::Result> results(references.size());
  std::vector<onepassword::Reference> parsed;
  std::vector<std::size_t> positions;
  for (std::size_t index = 0; index < references.size(); ++index) {
    auto reference = onepassword::parse_reference(references[index]);
    if (auto* error = std::get_if<std::string>(&reference)) {
      results[index] = onepassword::Error{onepassword::Failure::not_found, *error};
    } else {
      parsed.push_back(std::move(std::get<onepassword::Reference>(reference)));
      positions.push_back(index);
    }
  }
  onepassword::Settings client_settings;
  client_settings.op = settings.op;
  client_settings.timeout = settings.timeout;
  client_settings.config_dir = config_dir;
  client_settings.max_value_size = max_size;
  client_settings.stop = std::move(stop);
  onepassword::Client client(std::move(client_settings), std::move(token));
  auto fetched = client.fetch(parsed);
  for (std::size_t index = 0; index < fetched.size(); ++index) {
    results[positions[index]] = std::move(fetched[index]);
  }
  return results;
}

// The token, or why every reference fails without one: a token file that cannot be read may yet
// appear (authentication failed, retried), one that is refused (others may read it, it is a
// link, it holds no token) is a mistake to fix (unusable).
std::variant<SecretBytes, onepassword::Error> token_of(const manifest::OnePassword& settings) {
  try {
    return onepassword::read_token_file(settings.token_file);
  } catch (const PrivateFileError& error) {
    return onepassword::Error{error.kind() == PrivateFileError::Kind::io
                                  ? onepassword::Failure::auth
                                  : onepassword::Failure::unusable,
                              error.what()};
  } catch (const std::exception& error) {
    return onepassword::Error{onepassword::Failure::unusable, error.what()};
  }
}

// Whether `value` is what the cached copy of `reference` holds. A cached copy that does not
// open any more (identities changed) counts as different, so that it is replaced.
bool same_as_cached(const state::StateDir& state, const std::string& reference,
                    const SecretBytes& value, const Keyring& keyring) {
  const auto cached = state.cached_value(reference);
  if (!cached) {
    return false;
  }
  try {
    const auto ciphertext = age::read_file(state.path() / "blobs" / cached->blob);
    const SecretBytes old = age::decrypt(ciphertext, keyring.pointers());
    return old.size() == value.size() &&
           (value.empty() || sodium_memcmp(old.data(), value.data(), value.size()) == 0);
  } catch (const age::Error&) {
    return false;
  }
}

// The value as the state directory keeps it, or why it cannot be kept: max_secret_size bounds
// the age file a secret is served from, and the encrypted copy is a little larger than the value.
std::variant<std::vector<std::uint8_t>, onepassword::Error> encrypted(
    const SecretBytes& value, std::span<const age::Recipient* const> recipients,
    std::uint64_t max_size) {
  auto ciphertext = age::encrypt(value.span(), recipients);
  if (ciphertext.size() > max_size) {
    return onepassword::Error{onepassword::Failure::too_large,
                              "its encrypted copy would be " + std::to_string(ciphertext.size()) +
                                  " bytes, more than max_secret_size (" +
                                  std::to_string(max_size) + " bytes)"};
  }
  return ciphertext;
}

// The blob that holds the cached value of `reference` now; "" for none (or none readable).
std::string cached_blob(const state::StateDir& state, const std::string& reference) {
  try {
    const auto cached = state.cached_value(reference);
    return cached ? cached->blob : std::string();
  } catch (const std::exception&) {
    return {};
  }
}

std::vector<std::unique_ptr<age::Recipient>> own_recipients(const Keyring& keyring) {
  std::vector<std::unique_ptr<age::Recipient>> recipients;
  for (const auto& identity : keyring.identities) {
    if (auto recipient = age::recipient_of(*identity)) {
      recipients.push_back(std::move(recipient));
    }
  }
  return recipients;
}

}  // namespace

std::filesystem::path op_config_dir(const state::StateDir& state) {
  return state.path() / "op-config";
}

std::vector<ValueOutcome> read_values(state::StateDir& state,
                                      const manifest::OnePassword& settings,
                                      const Keyring& keyring,
                                      const std::vector<std::string>& references,
                                      std::uint64_t max_size, std::stop_token stop,
                                      Locking locking,
                                      const std::function<bool()>& still_current) {
  if (references.empty()) {
    return {};
  }
  const auto recipients = own_recipients(keyring);
  if (recipients.empty()) {
    return all_failed(references, onepassword::Failure::failed,
                      "no identity to encrypt the value to (the manifest's identities)");
  }
  auto token = token_of(settings);
  if (auto* error = std::get_if<onepassword::Error>(&token)) {
    return all_failed(references, error->failure, error->message);
  }
  // What each reference's cached value was before `op` ran: one stored meanwhile by another
  // process (an activation, perhaps for new identities) is newer than this read, and stays.
  std::vector<std::string> blobs_before;
  for (const auto& reference : references) {
    blobs_before.push_back(cached_blob(state, reference));
  }
  auto results = fetch(settings, op_config_dir(state), references, max_size,
                       std::move(std::get<SecretBytes>(token)), std::move(stop));
  std::vector<ValueOutcome> outcomes;
  const auto pointers = age::pointers(recipients);
  for (std::size_t index = 0; index < references.size(); ++index) {
    ValueOutcome outcome{references[index], std::nullopt, false};
    if (auto* error = std::get_if<onepassword::Error>(&results[index])) {
      outcome.error = *error;
    } else {
      const SecretBytes& value = std::get<SecretBytes>(results[index]);
      auto ciphertext = encrypted(value, pointers, max_size);
      if (auto* error = std::get_if<onepassword::Error>(&ciphertext)) {
        outcome.error = std::move(*error);
        outcomes.push_back(std::move(outcome));
        continue;
      }
      const auto& bytes = std::get<std::vector<std::uint8_t>>(ciphertext);
      const auto now = seconds_now();
      std::optional<state::Lock> lock;
      if (locking == Locking::per_value) {
        lock.emplace(state.lock());
      }
      if (cached_blob(state, references[index]) != blobs_before[index] ||
          (still_current && !still_current())) {
        outcome.superseded = true;
        outcomes.push_back(std::move(outcome));
        continue;
      }
      if (same_as_cached(state, references[index], value, keyring)) {
        state.confirm_value(references[index], now);
      } else {
        state.store_value(
            references[index],
            std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), now);
        outcome.changed = true;
      }
    }
    outcomes.push_back(std::move(outcome));
  }
  return outcomes;
}

std::optional<onepassword::Error> settings_problem(const manifest::OnePassword& settings) {
  // The program first: a missing token file may yet come, an unusable `op` is a mistake now.
  if (auto program = onepassword::trusted_program(settings.op);
      auto* error = std::get_if<onepassword::Error>(&program)) {
    return std::move(*error);
  }
  if (auto token = token_of(settings); auto* error = std::get_if<onepassword::Error>(&token)) {
    return std::move(*error);
  }
  return std::nullopt;
}

std::vector<ValueOutcome> resolve_values(const state::StateDir* state,
                                         const manifest::OnePassword& settings,
                                         const Keyring& keyring,
                                         const std::vector<std::string>& references,
                                         std::uint64_t max_size) {
  if (references.empty()) {
    return {};
  }
  auto token = token_of(settings);
  if (auto* error = std::get_if<onepassword::Error>(&token)) {
    return all_failed(references, error->failure, error->message);
  }
  // Without a state directory yet, `op` gets a private folder of its own for this run.
  std::filesystem::path config_dir;
  if (state != nullptr) {
    config_dir = op_config_dir(*state);
  } else {
    std::string folder = (std::filesystem::temp_directory_path() / "secretfs-op-XXXXXX").string();
    if (::mkdtemp(folder.data()) == nullptr) {
      return all_failed(references, onepassword::Failure::failed,
                        "cannot create a folder for op: " + std::string(std::strerror(errno)));
    }
    config_dir = folder;
  }
  auto results = fetch(settings, config_dir, references, max_size,
                       std::move(std::get<SecretBytes>(token)), {});
  if (state == nullptr) {
    std::error_code ignored;
    std::filesystem::remove_all(config_dir, ignored);
  }
  const auto recipients = own_recipients(keyring);
  const auto pointers = age::pointers(recipients);
  std::vector<ValueOutcome> outcomes;
  for (std::size_t index = 0; index < references.size(); ++index) {
    ValueOutcome outcome{references[index], std::nullopt, false};
    if (auto* error = std::get_if<onepassword::Error>(&results[index])) {
      outcome.error = *error;
    } else if (!pointers.empty()) {
      auto ciphertext = encrypted(std::get<SecretBytes>(results[index]), pointers, max_size);
      if (auto* too_large = std::get_if<onepassword::Error>(&ciphertext)) {
        outcome.error = std::move(*too_large);
      }
    }
    outcomes.push_back(std::move(outcome));
  }
  return outcomes;
}

}  // namespace secretfs::fs
