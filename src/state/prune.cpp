// Removing old generations, then the ciphertexts and template files no remaining generation
// uses, then whatever a crash left behind under a temporary name.
#include <algorithm>
#include <set>
#include <system_error>

#include "secretfs/state.hpp"
#include "state/durable_files.hpp"
#include "state/entry_names.hpp"
#include "state/layout.hpp"

namespace secretfs::state {

namespace {

// The current generation, and the newest one before it: what a rollback goes back to.
std::set<Number> protected_numbers(const std::vector<Number>& numbers,
                                   std::optional<Number> current) {
  std::set<Number> kept;
  if (!current) {
    return kept;
  }
  kept.insert(*current);
  const auto at = std::lower_bound(numbers.begin(), numbers.end(), *current);
  if (at != numbers.begin()) {
    kept.insert(*std::prev(at));
  }
  return kept;
}

void remove_tree(const std::filesystem::path& path) {
  std::error_code error;
  std::filesystem::remove_all(path, error);
  if (error) {
    fail_errno(path, "cannot remove", error.value());
  }
}

// Renamed away first, so a crash halfway through removing the files never leaves a
// generation folder with some of them missing.
void remove_generation(const std::filesystem::path& root, Number number) {
  const auto doomed =
      root / kGenerationsFolder / temporary_name(std::to_string(number) + "-removed");
  rename_new(generation_folder(root, number), doomed);
  remove_tree(doomed);
}

void remove_temporaries(const std::filesystem::path& folder) {
  for (const std::string& name : list_folder(folder)) {
    if (is_temporary_name(name)) {
      remove_tree(folder / name);
    }
  }
}

void remove_unreferenced_blobs(const std::filesystem::path& root, Ownership ownership) {
  // A record that cannot be read throws here, before any blob is touched: a blob is removed
  // only when every remaining generation is known not to use it.
  std::set<std::string> referenced = value_blobs(root, ownership);
  for (const Number number : generation_numbers(root)) {
    const GenerationRecord record = read_record(root, number, ownership);
    for (const StoredSecret& secret : record.secrets) {
      referenced.insert(secret.blob);
    }
    for (const StoredTemplate& stored : record.templates) {
      referenced.insert(stored.blob);
    }
  }
  const auto blobs = root / kBlobsFolder;
  for (const std::string& name : list_folder(blobs)) {
    if (is_temporary_name(name) || (is_blob_name(name) && !referenced.contains(name))) {
      remove_tree(blobs / name);
    }
  }
  fsync_folder(blobs);
}

}  // namespace

std::vector<Number> StateDir::prune(std::size_t keep) {
  const auto numbers = generation_numbers(path_);
  const auto kept = protected_numbers(numbers, current());
  const std::size_t beyond_keep = numbers.size() > keep ? numbers.size() - keep : 0;

  std::vector<Number> removed;
  for (std::size_t i = 0; i < beyond_keep; ++i) {
    if (!kept.contains(numbers[i])) {
      remove_generation(path_, numbers[i]);
      removed.push_back(numbers[i]);
    }
  }
  remove_temporaries(path_ / kGenerationsFolder);
  fsync_folder(path_ / kGenerationsFolder);

  remove_unreferenced_blobs(path_, ownership_);
  remove_temporaries(path_);
  return removed;
}

}  // namespace secretfs::state
