#include "state/layout.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>

#include "state/durable_files.hpp"
#include "state/entry_names.hpp"
#include "state/permissions.hpp"

namespace secretfs::state {

namespace {

// "18446744073709551615\n" and a little room; a longer file is not ours.
constexpr std::size_t kMaxNumberFileSize = 32;

}  // namespace

std::filesystem::path generation_folder(const std::filesystem::path& root, Number number) {
  return root / kGenerationsFolder / std::to_string(number);
}

std::filesystem::path blob_path(const std::filesystem::path& root, const std::string& blob) {
  return root / kBlobsFolder / blob;
}

std::vector<Number> generation_numbers(const std::filesystem::path& root) {
  std::vector<Number> numbers;
  const auto folder = root / kGenerationsFolder;
  for (const std::string& name : list_folder(folder)) {
    const auto number = parse_number(name);
    if (number && kind_of(folder / name) == Kind::folder) {
      numbers.push_back(*number);
    }
  }
  std::sort(numbers.begin(), numbers.end());
  return numbers;
}

std::optional<Number> read_number_file(const std::filesystem::path& path, Ownership ownership) {
  if (kind_of(path) == Kind::missing) {
    return std::nullopt;
  }
  struct stat status {};
  const std::string text = read_file(path, kMaxNumberFileSize, Links::refuse, &status);
  refuse_changeable("", path, status, ownership);
  const auto number = text.ends_with('\n')
                          ? parse_number(std::string_view(text).substr(0, text.size() - 1))
                          : std::nullopt;
  if (!number) {
    throw StateError(path.string() + ": corrupt: want a generation number and a newline");
  }
  return number;
}

void write_number_file(const std::filesystem::path& root, const char* name, Number number) {
  replace_file(root, name, std::to_string(number) + "\n", kFileMode);
}

GenerationRecord read_record(const std::filesystem::path& root, Number number,
                             Ownership ownership) {
  const auto folder = generation_folder(root, number);
  if (kind_of(folder) != Kind::folder) {
    throw StateError("generation " + std::to_string(number) + " does not exist (no " +
                     folder.string() + ")");
  }
  struct stat status {};
  if (::lstat(folder.c_str(), &status) != 0) {
    fail_errno(folder, "cannot stat", errno);
  }
  refuse_changeable_generation(number, folder, folder, status, ownership);

  const auto path = folder / kRecordFile;
  const std::string text = read_file(path, kMaxRecordSize, Links::refuse, &status);
  refuse_changeable_generation(number, folder, path, status, ownership);
  // The manifest is read only when the generation is loaded; a listing still names one that
  // another user could have rewritten (with the hash above, when the record is writable too).
  const auto manifest = folder / kManifestFile;
  if (::lstat(manifest.c_str(), &status) == 0) {
    refuse_changeable_generation(number, folder, manifest, status, ownership);
  }
  GenerationRecord record = parse_record(text, path);
  if (record.number != number) {
    throw StateError(path.string() + ": says it is generation " + std::to_string(record.number));
  }
  return record;
}

std::string read_manifest_text(const std::filesystem::path& root, const GenerationRecord& record,
                               Ownership ownership) {
  const auto folder = generation_folder(root, record.number);
  const auto path = folder / kManifestFile;
  struct stat status {};
  std::string text = read_file(path, kMaxManifestSize, Links::refuse, &status);
  refuse_changeable_generation(record.number, folder, path, status, ownership);
  if (sha256_hex(text) != record.manifest_sha256) {
    throw StateError(path.string() + ": corrupt: its SHA-256 is not the one in " + kRecordFile);
  }
  return text;
}

}  // namespace secretfs::state
