// generation.json: what a generation holds besides its manifest's text.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "secretfs/state.hpp"

namespace secretfs::state {

// What identifies one version of a file without reading it, as stat gives it. A file written
// again gets a new change time (and usually a new size or inode), so an unchanged stamp means
// unchanged bytes, unless the file changed within the clock tick of its last change: a stamp
// is recorded only for files whose last change was well before they were read.
struct FileStamp {
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
  std::uint64_t size = 0;
  std::int64_t modified_ns = 0;
  std::int64_t changed_ns = 0;
  bool operator==(const FileStamp&) const = default;
};

// A plain string for the file: a std::filesystem::path also keeps each of its components
// apart, which a record of tens of thousands of secrets feels.
struct StoredSecret {
  std::string name;
  std::string file;                // where the ciphertext was when the generation was stored
  std::string blob;                // SHA-256 hex of the ciphertext, its name under blobs/
  std::optional<FileStamp> stamp;  // of `file` when it was read; absent in older generations
};

// A template given with `file` is stored like a ciphertext: its text as a blob named by its
// SHA-256. (Templates given with `content` are in the manifest's text already.)
using StoredTemplate = StoredSecret;

struct GenerationRecord {
  Number number = 0;
  std::int64_t created = 0;
  std::string manifest_sha256;
  std::filesystem::path manifest;
  std::vector<StoredSecret> secrets;      // sorted by name, as the manifest's secrets are
  std::vector<StoredTemplate> templates;  // sorted by name; without a stamp
  std::size_t values = 0;  // secrets read from 1Password: no blob of their own (values.cpp)
};

// Holds the same manifest and the same ciphertexts and template files under the same names, so
// storing again would change nothing.
bool same_content(const GenerationRecord& a, const GenerationRecord& b);

std::string to_json(const GenerationRecord& record);

// Parses and validates generation.json; `source` names the file in StateError messages.
GenerationRecord parse_record(const std::string& text, const std::filesystem::path& source);

}  // namespace secretfs::state
