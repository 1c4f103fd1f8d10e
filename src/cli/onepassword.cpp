#include "cli/onepassword.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <set>
#include <variant>

#include "fs/keyring.hpp"
#include "fs/values.hpp"
#include "secretfs/age/age.hpp"
#include "secretfs/onepassword.hpp"

namespace secretfs::cli {

namespace {

// The secrets that read `reference`, for messages.
std::string secrets_reading(const manifest::Manifest& manifest, const std::string& reference) {
  std::string names;
  for (const auto& secret : manifest.secrets) {
    if (secret.from_onepassword && secret.source == reference) {
      names += (names.empty() ? "secret `" : "`, `") + secret.name;
    }
  }
  return names + "` (" + reference + ")";
}

// Whether 1Password itself answered that the reference leads nowhere, rather than that it
// could not be asked.
bool is_definite(const onepassword::Error& error) {
  return error.failure == onepassword::Failure::not_found ||
         error.failure == onepassword::Failure::ambiguous ||
         error.failure == onepassword::Failure::unusable ||
         error.failure == onepassword::Failure::too_large;
}

// Whether the cached value of `reference` opens with the keyring: after the host's identities
// changed, it is read again rather than left to fail.
bool opens(const state::StateDir& state, const std::string& reference,
           const fs::Keyring& keyring) {
  try {
    const auto cached = state.cached_value(reference);
    if (!cached) {
      return false;
    }
    age::verify_header(age::read_file(state.path() / "blobs" / cached->blob), keyring.pointers());
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

std::string describe(const onepassword::Error& error) {
  return std::string(onepassword::to_string(error.failure)) + ": " + error.message;
}

}  // namespace

std::optional<std::string> onepassword_settings_problem(const manifest::Manifest& manifest) {
  const auto error = fs::settings_problem(manifest.onepassword);
  if (error && is_definite(*error)) {
    return "[onepassword]: " + describe(*error);
  }
  return std::nullopt;
}

std::vector<std::string> references_of(const manifest::Manifest& manifest) {
  std::vector<std::string> references;
  for (const auto& secret : manifest.secrets) {
    // A reference that does not parse, or asks for a one-time password, is the manifest's
    // problem, named once by validation.
    const auto parsed = onepassword::parse_reference(secret.source);
    const auto* reference = std::get_if<onepassword::Reference>(&parsed);
    if (secret.from_onepassword && reference != nullptr &&
        !onepassword::is_one_time_password(*reference) &&
        std::find(references.begin(), references.end(), secret.source) == references.end()) {
      references.push_back(secret.source);
    }
  }
  return references;
}

NewValues read_new_values(state::StateDir& state, const manifest::Manifest& manifest) {
  onepassword::kill_op_on_interrupt();
  const fs::Keyring keyring =
      fs::load_keyring(manifest.identities, FilePermissions::strict);
  std::vector<std::string> missing;
  for (const auto& reference : references_of(manifest)) {
    if (!opens(state, reference, keyring)) {
      missing.push_back(reference);
    }
  }
  NewValues found;
  // A token file or `op` that can never be used is named once, whether or not anything needs
  // reading now: the daemon will need them to read the values again.
  if (auto problem = onepassword_settings_problem(manifest)) {
    found.problems.push_back(std::move(*problem));
    return found;
  }
  if (missing.empty()) {
    if (const auto error = fs::settings_problem(manifest.onepassword)) {
      std::fprintf(stderr,
                   "warning: [onepassword]: %s; the cached values are served, but the daemon "
                   "cannot read them again until this is mended\n",
                   describe(*error).c_str());
    }
    return found;
  }
  // Only a value the host did not have is a change for its readers; one read again for new
  // identities is most likely the same value.
  std::set<std::string> had_value;
  for (const auto& reference : missing) {
    try {
      if (state.cached_value(reference)) {
        had_value.insert(reference);
      }
    } catch (const state::StateError&) {
      // An index that cannot be read holds no value the host could serve.
    }
  }
  std::set<std::string> read;
  for (const auto& outcome : fs::read_values(state, manifest.onepassword, keyring, missing,
                                             manifest.max_secret_size, {},
                                             fs::Locking::held_by_caller)) {
    if (!outcome.error) {
      if (outcome.changed && !had_value.contains(outcome.reference)) {
        read.insert(outcome.reference);
      }
      continue;
    }
    const std::string what = secrets_reading(manifest, outcome.reference);
    if (is_definite(*outcome.error)) {
      found.problems.push_back(what + ": 1Password: " + describe(*outcome.error));
    } else {
      std::fprintf(stderr,
                   "warning: %s: not read from 1Password: %s; it is served once the daemon "
                   "reads it, until then opening it fails with EIO\n",
                   what.c_str(), describe(*outcome.error).c_str());
    }
  }
  std::set<std::string> secrets;
  for (const auto& secret : manifest.secrets) {
    if (secret.from_onepassword && read.contains(secret.source)) {
      secrets.insert(secret.name);
    }
  }
  for (const auto& name : secrets) {
    found.changed.push_back(name);
  }
  for (const auto& rendered : manifest.templates) {
    if (std::any_of(rendered.references.begin(), rendered.references.end(),
                    [&](const std::string& name) { return secrets.contains(name); })) {
      found.changed.push_back(rendered.name);
    }
  }
  return found;
}

ReferenceFindings check_references(const manifest::Manifest& manifest) {
  ReferenceFindings findings;
  const auto references = references_of(manifest);
  if (references.empty()) {
    return findings;
  }
  onepassword::kill_op_on_interrupt();
  if (auto problem = onepassword_settings_problem(manifest)) {
    findings.problems.push_back(std::move(*problem));
    return findings;
  }
  std::optional<state::StateDir> state;
  try {
    if (std::filesystem::exists(manifest.state_dir)) {
      state.emplace(state::StateDir::open_existing(manifest.state_dir));
    }
  } catch (const state::StateError&) {
    // Not root, or not a state directory yet: `op` gets a folder of its own.
  }
  const fs::Keyring keyring =
      fs::load_keyring(manifest.identities, FilePermissions::strict);
  for (const auto& outcome : fs::resolve_values(state ? &*state : nullptr, manifest.onepassword,
                                                keyring, references, manifest.max_secret_size)) {
    if (!outcome.error) {
      continue;
    }
    const std::string what = secrets_reading(manifest, outcome.reference);
    if (is_definite(*outcome.error)) {
      findings.problems.push_back(what + ": 1Password: " + describe(*outcome.error));
    } else {
      findings.warnings.push_back(what + ": could not be checked with 1Password: " +
                                  describe(*outcome.error));
    }
  }
  return findings;
}

}  // namespace secretfs::cli
