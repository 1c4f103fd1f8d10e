// Where things live in the state directory, and reading them back. See secretfs/state.hpp for
// the layout itself.
#pragma once

#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "secretfs/state.hpp"
#include "state/generation_record.hpp"

namespace secretfs::state {

inline constexpr mode_t kFolderMode = 0700;
inline constexpr mode_t kFileMode = 0600;

inline constexpr const char* kBlobsFolder = "blobs";
inline constexpr const char* kGenerationsFolder = "generations";
inline constexpr const char* kCurrentFile = "current";
inline constexpr const char* kLastFile = "last";
inline constexpr const char* kLockFile = "lock";
inline constexpr const char* kManifestFile = "manifest.toml";
inline constexpr const char* kRecordFile = "generation.json";
inline constexpr const char* kValuesFolder = "onepassword";

// A manifest lists file names, not contents; the same bound as the manifest parser's.
inline constexpr std::size_t kMaxManifestSize = std::size_t{16} << 20;
// generation.json grows with the number of secrets, a line or so each.
inline constexpr std::size_t kMaxRecordSize = std::size_t{64} << 20;
// A ciphertext is read whole to hash it before it is copied; secrets are keys and passwords.
inline constexpr std::size_t kMaxCiphertextSize = std::size_t{256} << 20;

std::filesystem::path generation_folder(const std::filesystem::path& root, Number number);
std::filesystem::path blob_path(const std::filesystem::path& root, const std::string& blob);

// The numbers of every generation folder, ascending. Names that are not numbers (leftovers of
// a crash among them) and anything that is not a real folder are not generations.
std::vector<Number> generation_numbers(const std::filesystem::path& root);

// The number in `current` or `last`, or nullopt when the file does not exist. Anything but
// "N\n", and a file another user could have written (see permissions.hpp), throws StateError
// naming the file.
std::optional<Number> read_number_file(const std::filesystem::path& path, Ownership ownership);

void write_number_file(const std::filesystem::path& root, const char* name, Number number);

// generation.json of generation `number`; throws StateError naming what is missing or wrong,
// or a generation folder, record or manifest.toml that another user could have written (see
// permissions.hpp).
GenerationRecord read_record(const std::filesystem::path& root, Number number, Ownership ownership);

// The text of generation `number`'s manifest.toml, checked against the SHA-256 in `record`;
// refused like the record when another user could have written it.
std::string read_manifest_text(const std::filesystem::path& root, const GenerationRecord& record,
                               Ownership ownership);

// The blobs that hold the cached value of a 1Password reference now (values.cpp).
std::set<std::string> value_blobs(const std::filesystem::path& root, Ownership ownership);

}  // namespace secretfs::state
