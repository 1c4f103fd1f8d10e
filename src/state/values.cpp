// The last good value of each 1Password reference. A value is encrypted to the host's own
// identities before it reaches this file, and kept as a blob like any ciphertext; a small index
// per reference says which blob holds its value now. Generations name references, not blobs,
// so a rollback serves the newest value its references had, even one that 1Password has
// since deleted.
#include <nlohmann/json.hpp>

#include "secretfs/state.hpp"
#include "state/durable_files.hpp"
#include "state/entry_names.hpp"
#include "state/layout.hpp"
#include "state/permissions.hpp"

namespace secretfs::state {

namespace {

constexpr std::size_t kMaxIndexSize = std::size_t{64} << 10;

// Named by the reference's SHA-256: references hold names with spaces and any letters.
std::string index_name(const std::string& reference) {
  return sha256_hex(reference) + ".json";
}

std::filesystem::path values_folder(const std::filesystem::path& root) {
  return root / kValuesFolder;
}

CachedValue parse_index(const std::string& text, const std::filesystem::path& path) {
  try {
    const auto json = nlohmann::json::parse(text);
    CachedValue value{json.at("reference").get<std::string>(), json.at("blob").get<std::string>(),
                      json.at("fetched").get<std::int64_t>(),
                      json.at("changed").get<std::int64_t>()};
    if (!is_blob_name(value.blob)) {
      throw StateError(path.string() + ": `blob` is not a SHA-256 in hex");
    }
    return value;
  } catch (const nlohmann::json::exception& error) {
    throw StateError(path.string() + ": not a 1Password value index: " + error.what());
  }
}

void write_index(const std::filesystem::path& root, const CachedValue& value) {
  const nlohmann::json json = {{"reference", value.reference},
                               {"blob", value.blob},
                               {"fetched", value.fetched},
                               {"changed", value.changed}};
  make_folder(values_folder(root), kFolderMode);
  replace_file(values_folder(root), index_name(value.reference), json.dump() + "\n", kFileMode);
}

}  // namespace

std::optional<CachedValue> StateDir::cached_value(const std::string& reference) const {
  const auto path = values_folder(path_) / index_name(reference);
  if (kind_of(path) == Kind::missing) {
    return std::nullopt;
  }
  struct stat status {};
  const std::string text = read_file(path, kMaxIndexSize, Links::refuse, &status);
  const Exposure exposure = exposure_of(status, ownership_);
  if (exposure != Exposure::none) {
    throw StateError(owner_and_mode(path, status) + ": " + reason(exposure) + "; " +
                     fix(exposure, path, status));
  }
  CachedValue value = parse_index(text, path);
  if (value.reference != reference) {
    throw StateError(path.string() + ": holds the value of another reference");
  }
  return value;
}

void StateDir::store_value(const std::string& reference, std::string_view ciphertext,
                           std::int64_t now) {
  const std::string blob = sha256_hex(ciphertext);
  const auto path = blob_path(path_, blob);
  if (kind_of(path) == Kind::missing) {
    const auto temporary = path_ / kBlobsFolder / temporary_name("value");
    write_new_file(temporary, ciphertext, kFileMode);
    rename_new(temporary, path);
    fsync_folder(path_ / kBlobsFolder);
  }
  write_index(path_, {reference, blob, now, now});
}

void StateDir::confirm_value(const std::string& reference, std::int64_t now) {
  if (auto value = cached_value(reference)) {
    value->fetched = now;
    write_index(path_, *value);
  }
}

void StateDir::attach_values(manifest::Manifest& manifest) const {
  for (manifest::Secret& secret : manifest.secrets) {
    if (!secret.from_onepassword) {
      continue;
    }
    secret.file.clear();
    secret.sha256.clear();
    if (const auto value = cached_value(secret.source)) {
      secret.file = blob_path(path_, value->blob);
      secret.sha256 = value->blob;
    }
  }
}

// Blobs that hold a cached value now; older values of a reference are left to prune.
std::set<std::string> value_blobs(const std::filesystem::path& root, Ownership ownership) {
  std::set<std::string> blobs;
  const auto folder = values_folder(root);
  if (kind_of(folder) != Kind::folder) {
    return blobs;
  }
  for (const std::string& name : list_folder(folder)) {
    if (is_temporary_name(name)) {
      continue;
    }
    struct stat status {};
    const auto path = folder / name;
    const std::string text = read_file(path, kMaxIndexSize, Links::refuse, &status);
    if (exposure_of(status, ownership) == Exposure::none) {
      blobs.insert(parse_index(text, path).blob);
    }
  }
  return blobs;
}

}  // namespace secretfs::state
