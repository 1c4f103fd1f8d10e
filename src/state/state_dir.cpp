// Opening the state directory, its lock, and reading generations back.
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <map>
#include <utility>

#include "manifest/names.hpp"
#include "secretfs/state.hpp"
#include "secretfs/template.hpp"
#include "state/durable_files.hpp"
#include "state/layout.hpp"

namespace secretfs::state {

namespace {

constexpr mode_t kWritableByOthers = S_IWGRP | S_IWOTH;
constexpr uid_t kRootUid = 0;
constexpr std::size_t kModeTextSize = 8;

std::string mode_text(mode_t mode) {
  std::array<char, kModeTextSize> text{};
  std::snprintf(text.data(), text.size(), "%04o", static_cast<unsigned>(mode & 07777));
  return text.data();
}

// Refuses rather than repairs: a state directory that others could write to may already hold
// their files, and chmod would hide that.
void check_folder(const std::filesystem::path& path, Ownership ownership) {
  struct stat status {};
  if (::lstat(path.c_str(), &status) != 0) {
    fail_errno(path, "cannot stat state directory", errno);
  }
  const std::string name = "state directory " + path.string();
  if (S_ISLNK(status.st_mode)) {
    throw StateError(name + ": is a symbolic link; it must be a real folder");
  }
  if (!S_ISDIR(status.st_mode)) {
    throw StateError(name + ": is not a folder");
  }
  const std::string described = name + " (owner uid " + std::to_string(status.st_uid) + ", mode " +
                                mode_text(status.st_mode) + ")";
  if ((status.st_mode & kWritableByOthers) != 0) {
    throw StateError(described + ": group or others may write to it; want mode 0700");
  }
  if (ownership == Ownership::root && status.st_uid != kRootUid) {
    throw StateError(described + ": not owned by root");
  }
}

GenerationInfo info_of(const GenerationRecord& record, std::optional<Number> current) {
  GenerationInfo info;
  info.number = record.number;
  info.created = record.created;
  info.manifest_sha256 = record.manifest_sha256;
  info.manifest = record.manifest;
  info.secrets = record.secrets.size();
  info.current = current == record.number;
  return info;
}

void refuse(manifest::Manifest& manifest, const std::string& source, manifest::EntryKind kind,
            const std::string& name, int line, const std::string& reason) {
  manifest.problems.push_back(
      {name, manifest::entry_problem(source, line, kind, name, reason), kind});
}

// Serves each secret from its stored copy. A secret without one was refused when the
// generation was stored (an owner that did not resolve then, say); serving it now would serve
// a file nobody validated, so it stays refused.
void point_at_blobs(manifest::Manifest& manifest, const GenerationRecord& record,
                    const std::filesystem::path& root, const std::string& source) {
  std::map<std::string, std::string> blobs;
  for (const StoredSecret& stored : record.secrets) {
    blobs.emplace(stored.name, stored.blob);
  }
  std::vector<manifest::Secret> served;
  for (manifest::Secret& secret : manifest.secrets) {
    const auto found = blobs.find(secret.name);
    if (found == blobs.end()) {
      refuse(manifest, source, manifest::EntryKind::secret, secret.name, secret.line,
             "no ciphertext was stored for it in generation " + std::to_string(record.number) +
                 " (it was refused then)");
      continue;
    }
    secret.file = blob_path(root, found->second);
    secret.sha256 = found->second;
    if (kind_of(secret.file) != Kind::file) {
      refuse(manifest, source, manifest::EntryKind::secret, secret.name, secret.line,
             "its stored ciphertext " + secret.file.string() + " is missing");
      continue;
    }
    served.push_back(std::move(secret));
  }
  manifest.secrets = std::move(served);
}

// The text of a template given with `file` is read from its stored copy and checked against
// the copy's SHA-256 name, so that what is served is what was validated when it was stored.
// The daemon checks that name again at every open of the template.
std::optional<std::string> read_stored_template(manifest::Template& entry,
                                                const GenerationRecord& record,
                                                const std::filesystem::path& root) {
  const auto found =
      std::find_if(record.templates.begin(), record.templates.end(),
                   [&](const StoredTemplate& stored) { return stored.name == entry.name; });
  if (found == record.templates.end()) {
    return "no template file was stored for it in generation " + std::to_string(record.number) +
           " (it was refused then)";
  }
  entry.file = blob_path(root, found->blob);
  entry.sha256 = found->blob;
  try {
    entry.text = read_file(entry.file, templates::kMaxTemplateSize, Links::refuse);
  } catch (const StateError& error) {
    return std::string("its stored copy cannot be read: ") + error.what();
  }
  if (sha256_hex(entry.text) != entry.sha256) {
    return "its stored copy " + entry.file.string() +
           " does not match its SHA-256 name; the state directory was changed";
  }
  return std::nullopt;
}

void read_stored_templates(manifest::Manifest& manifest, const GenerationRecord& record,
                           const std::filesystem::path& root, const std::string& source) {
  std::vector<manifest::Template> kept;
  for (manifest::Template& entry : manifest.templates) {
    if (!entry.file.empty()) {
      if (const auto reason = read_stored_template(entry, record, root)) {
        refuse(manifest, source, manifest::EntryKind::template_, entry.name, entry.line, *reason);
        continue;
      }
    }
    kept.push_back(std::move(entry));
  }
  manifest.templates = std::move(kept);
}

}  // namespace

Lock::~Lock() {
  // Closing the last descriptor of the open file releases the flock.
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

Lock::Lock(Lock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

StateDir StateDir::open(const std::filesystem::path& path, Ownership ownership) {
  auto root = std::filesystem::absolute(path).lexically_normal();
  if (!root.has_filename() && root.has_relative_path()) {
    root = root.parent_path();
  }
  make_folder(root, kFolderMode);
  check_folder(root, ownership);
  for (const char* folder : {kBlobsFolder, kGenerationsFolder}) {
    make_folder(root / folder, kFolderMode);
    check_folder(root / folder, ownership);
  }
  fsync_folder(root);
  return StateDir(std::move(root));
}

Lock StateDir::lock() const {
  const auto path = path_ / kLockFile;
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, kFileMode);
  if (fd < 0) {
    fail_errno(path, "cannot open lock", errno);
  }
  Lock lock(fd);
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) {
      fail_errno(path, "cannot lock", errno);
    }
  }
  return lock;
}

std::optional<Number> StateDir::current() const {
  return read_number_file(path_ / kCurrentFile);
}

std::vector<GenerationInfo> StateDir::generations() const {
  const auto current_number = current();
  std::vector<GenerationInfo> infos;
  for (const Number number : generation_numbers(path_)) {
    // One damaged generation must not hide the others from the admin who has to repair it.
    try {
      infos.push_back(info_of(read_record(path_, number), current_number));
    } catch (const StateError& error) {
      GenerationInfo damaged;
      damaged.number = number;
      damaged.current = current_number == number;
      damaged.problem = error.what();
      infos.push_back(std::move(damaged));
    }
  }
  return infos;
}

std::optional<GenerationInfo> StateDir::generation(Number number) const {
  if (kind_of(generation_folder(path_, number)) != Kind::folder) {
    return std::nullopt;
  }
  return info_of(read_record(path_, number), current());
}

void StateDir::set_current(Number number) {
  // Reading the generation first means `current` never names one that cannot be loaded.
  read_manifest_text(path_, read_record(path_, number));
  write_number_file(path_, kCurrentFile, number);
}

manifest::Manifest StateDir::load(Number number, const manifest::Accounts& accounts) const {
  const GenerationRecord record = read_record(path_, number);
  const auto manifest_path = generation_folder(path_, number) / kManifestFile;
  const std::string text = read_manifest_text(path_, record);

  manifest::Manifest manifest;
  try {
    manifest =
        manifest::parse(text, record.manifest.parent_path(), manifest_path.string(), accounts);
  } catch (const manifest::ManifestError& error) {
    throw StateError(error.what());
  }
  manifest.path = record.manifest;

  point_at_blobs(manifest, record, path_, manifest_path.string());
  read_stored_templates(manifest, record, path_, manifest_path.string());
  // After the secrets: a template whose secret has no stored ciphertext cannot be served.
  templates::resolve(manifest, manifest_path.string());
  return manifest;
}

}  // namespace secretfs::state
