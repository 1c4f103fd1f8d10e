// Storing a manifest as a new generation: ciphertexts first, then the generation folder, then
// `last`. A crash between any two steps leaves blobs nobody references (removed by the next
// prune) or a temporary folder (ignored, and removed by the next prune), never a half
// generation.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <functional>
#include <limits>
#include <optional>
#include <system_error>
#include <unordered_set>
#include <utility>
#include <vector>

#include "manifest/names.hpp"
#include "secretfs/state.hpp"
#include "state/durable_files.hpp"
#include "state/entry_names.hpp"
#include "state/layout.hpp"

namespace secretfs::state {

namespace {

// A file changed within this long before it was read might change again within the same
// clock tick without its stamp showing it; its stamp is not recorded, so it is always hashed.
constexpr std::int64_t kSettledNanoseconds = 2'000'000'000;
constexpr std::int64_t kNanosecondsPerSecond = 1'000'000'000;

std::int64_t nanoseconds(const std::timespec& time) {
  return static_cast<std::int64_t>(time.tv_sec) * kNanosecondsPerSecond + time.tv_nsec;
}

FileStamp stamp_of(const struct stat& status) {
  return {static_cast<std::uint64_t>(status.st_dev), static_cast<std::uint64_t>(status.st_ino),
          static_cast<std::uint64_t>(status.st_size), nanoseconds(status.st_mtim),
          nanoseconds(status.st_ctim)};
}

// The stamp of `status`, if the file had settled before it was read.
std::optional<FileStamp> settled_stamp(const struct stat& status) {
  std::timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  if (nanoseconds(status.st_ctim) > nanoseconds(now) - kSettledNanoseconds) {
    return std::nullopt;
  }
  return stamp_of(status);
}

struct Ciphertext {
  std::string bytes;
  std::optional<FileStamp> stamp;
};

Ciphertext read_ciphertext(const manifest::Secret& secret) {
  try {
    struct stat status {};
    std::string bytes = read_file(secret.file, kMaxCiphertextSize, Links::follow, &status);
    return {std::move(bytes), settled_stamp(status)};
  } catch (const StateError& error) {
    throw StateError("secret `" + manifest::printable_name(secret.name) + "`: " + error.what());
  }
}

// New blobs are written under temporary names without an fsync each, made durable together by
// one sync of the file system, and only then renamed into place: a crash leaves either no blob
// or a whole one, never a blob whose content was not yet on disk.
class BlobWriter {
 public:
  explicit BlobWriter(const std::filesystem::path& root) : root_(root) {}
  ~BlobWriter() {
    for (std::size_t index = 0; index < pending_.size(); ++index) {
      ::unlink(temporary(index).c_str());
    }
  }
  BlobWriter(const BlobWriter&) = delete;
  BlobWriter& operator=(const BlobWriter&) = delete;

  // Identical ciphertexts share one blob, so a blob that exists already is left as it is.
  void add(const std::string& blob, const std::string& content) {
    const auto path = blob_path(root_, blob);
    const Kind kind = kind_of(path);
    if (kind == Kind::file || planned_.contains(blob)) {
      return;
    }
    if (kind != Kind::missing) {
      throw StateError(path.string() + ": not a regular file");
    }
    pending_.push_back(blob);
    planned_.insert(blob);
    write_new_file(temporary(pending_.size() - 1), content, kFileMode, Sync::later);
  }

  void commit() {
    if (pending_.empty()) {
      return;
    }
    sync_file_system(folder());
    while (!pending_.empty()) {
      rename_new(temporary(pending_.size() - 1), blob_path(root_, pending_.back()));
      pending_.pop_back();
    }
    fsync_folder(folder());
  }

 private:
  std::filesystem::path folder() const { return root_ / kBlobsFolder; }

  // The temporary name of the blob at `index` of pending_. Blob names only are kept, and one
  // temporary prefix: a generation may bring tens of thousands of blobs.
  std::filesystem::path temporary(std::size_t index) const {
    return folder() / (prefix_ + std::to_string(index));
  }

  std::filesystem::path root_;
  std::string prefix_ = temporary_name("blob") + "-";
  std::vector<std::string> pending_;  // blobs written under temporary names, in order
  std::unordered_set<std::string> planned_;
};

enum class Blobs { store, leave };

// The secrets a generation stores a ciphertext for: those read from 1Password have their
// cached value instead (values.cpp), which a refresh replaces without a new generation.
std::vector<std::reference_wrapper<const manifest::Secret>> stored_secrets(
    const manifest::Manifest& manifest) {
  std::vector<std::reference_wrapper<const manifest::Secret>> stored;
  for (const manifest::Secret& secret : manifest.secrets) {
    if (!secret.from_onepassword) {
      stored.push_back(secret);
    }
  }
  return stored;
}

// Templates given with `file`, as they are stored: their text, read when the manifest was,
// becomes a blob like a ciphertext, so that a rollback renders them after the file is gone.
std::vector<StoredTemplate> stored_templates(const manifest::Manifest& manifest) {
  std::vector<StoredTemplate> stored;
  for (const manifest::Template& entry : manifest.templates) {
    if (!entry.file.empty()) {
      stored.push_back({entry.name, entry.file.native(), sha256_hex(entry.text), std::nullopt});
    }
  }
  return stored;
}

// The record `manifest` would be stored as; with Blobs::store, each ciphertext and template
// file is also copied into its blob when that blob is missing.
GenerationRecord record_of(const std::filesystem::path& root, const manifest::Manifest& manifest,
                           const std::string& text, Blobs blobs) {
  GenerationRecord record;
  record.manifest_sha256 = sha256_hex(text);
  record.manifest = manifest.path;
  record.secrets.reserve(manifest.secrets.size());
  BlobWriter writer(root);
  for (const manifest::Secret& secret : stored_secrets(manifest)) {
    const Ciphertext ciphertext = read_ciphertext(secret);
    record.secrets.push_back(
        {secret.name, secret.file.native(), sha256_hex(ciphertext.bytes), ciphertext.stamp});
    if (blobs == Blobs::store) {
      writer.add(record.secrets.back().blob, ciphertext.bytes);
    }
  }
  record.values = manifest.secrets.size() - record.secrets.size();
  record.templates = stored_templates(manifest);
  if (blobs == Blobs::store) {
    for (std::size_t index = 0; const manifest::Template& entry : manifest.templates) {
      if (!entry.file.empty()) {
        writer.add(record.templates[index++].blob, entry.text);
      }
    }
  }
  writer.commit();
  return record;
}

// Whether `secret`'s file still holds the ciphertext stored as `was`.
bool holds(const StoredSecret& was, const manifest::Secret& secret) {
  if (was.stamp) {
    struct stat status {};
    if (::stat(secret.file.c_str(), &status) == 0 && stamp_of(status) == *was.stamp) {
      return true;
    }
  }
  return sha256_hex(read_ciphertext(secret).bytes) == was.blob;
}

// A current generation that cannot be read is not "identical": storing anew repairs it.
bool same_as_generation(const std::filesystem::path& root, std::optional<Number> number,
                        const GenerationRecord& record, Ownership ownership) {
  if (!number) {
    return false;
  }
  try {
    return same_content(read_record(root, *number, ownership), record);
  } catch (const StateError&) {
    return false;
  }
}

// Above both `last` and every folder, so a number is never given twice, even after a crash
// between renaming a generation into place and writing `last`, or after pruning.
Number next_number(const std::filesystem::path& root, Ownership ownership) {
  Number highest = read_number_file(root / kLastFile, ownership).value_or(0);
  const auto numbers = generation_numbers(root);
  if (!numbers.empty()) {
    highest = std::max(highest, numbers.back());
  }
  if (highest == std::numeric_limits<Number>::max()) {
    throw StateError(root.string() + ": no generation numbers are left");
  }
  return highest + 1;
}

void write_generation(const std::filesystem::path& root, const GenerationRecord& record,
                      const std::string& text) {
  const std::string json = to_json(record);
  const auto generations = root / kGenerationsFolder;
  const auto temporary = generations / temporary_name(std::to_string(record.number));
  if (::mkdir(temporary.c_str(), kFolderMode) != 0) {
    fail_errno(temporary, "cannot create folder", errno);
  }
  try {
    write_new_file(temporary / kManifestFile, text, kFileMode);
    write_new_file(temporary / kRecordFile, json, kFileMode);
    fsync_folder(temporary);
    rename_new(temporary, generation_folder(root, record.number));
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove_all(temporary, ignored);
    throw;
  }
  fsync_folder(generations);
}

std::int64_t now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Stored StateDir::store(const manifest::Manifest& manifest, const std::string& text) {
  // Relative paths in the manifest (identities) are resolved against its folder again when
  // the generation is loaded, so that folder must be known.
  if (!manifest.path.is_absolute()) {
    throw StateError("cannot store a manifest whose own absolute path is unknown");
  }
  GenerationRecord record = record_of(path_, manifest, text, Blobs::store);
  const auto current_number = current();
  if (same_as_generation(path_, current_number, record, ownership_)) {
    return {*current_number, false};
  }

  record.number = next_number(path_, ownership_);
  record.created = now();
  write_generation(path_, record, text);
  write_number_file(path_, kLastFile, record.number);
  return {record.number, true};
}

// A restart asks this of thousands of files at every boot. A file whose stamp is the one
// recorded when the generation was stored is taken to hold the bytes stored then, with one
// stat instead of a read and a SHA-256; any other file is read and hashed.
bool StateDir::is_current(const manifest::Manifest& manifest, const std::string& text) const {
  const auto number = current();
  if (!number) {
    return false;
  }
  try {
    const GenerationRecord stored = read_record(path_, *number, ownership_);
    const auto secrets = stored_secrets(manifest);
    if (stored.manifest_sha256 != sha256_hex(text) || stored.manifest != manifest.path ||
        stored.secrets.size() != secrets.size()) {
      return false;
    }
    for (std::size_t index = 0; index < stored.secrets.size(); ++index) {
      const StoredSecret& was = stored.secrets[index];
      const manifest::Secret& secret = secrets[index];
      if (was.name != secret.name || !holds(was, secret) ||
          kind_of(blob_path(path_, was.blob)) != Kind::file) {
        return false;
      }
    }
    // Template files were read with the manifest: comparing their hashes costs no reading.
    const auto templates = stored_templates(manifest);
    for (const StoredTemplate& entry : stored.templates) {
      if (kind_of(blob_path(path_, entry.blob)) != Kind::file) {
        return false;
      }
    }
    return std::equal(
        templates.begin(), templates.end(), stored.templates.begin(), stored.templates.end(),
        [](const auto& a, const auto& b) { return a.name == b.name && a.blob == b.blob; });
  } catch (const StateError&) {
    return false;  // a file that cannot be read: the manifest is not what is stored
  }
}

}  // namespace secretfs::state
