// Opening the state directory, its lock, and reading generations back.
#include <fcntl.h>
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
#include "state/permissions.hpp"

namespace secretfs::state {

namespace {

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
  refuse_changeable("state directory", path, status, ownership);
}

// One of a state directory's own folders, for open_existing: a path that lacks it is some other
// folder, and one this user may not look into is root's.
void check_existing_folder(const std::filesystem::path& root, const char* folder) {
  const auto path = root / folder;
  struct stat status {};
  if (::lstat(path.c_str(), &status) == 0) {
    return;
  }
  const int error = errno;
  if (error == ENOENT) {
    throw StateError(root.string() + " is not a state directory (it has no " + folder +
                     "/ folder; see --state-dir)");
  }
  if (error == EACCES && ::lstat(root.c_str(), &status) == 0) {
    throw StateError("state directory " + owner_and_mode(root, status) + ": uid " +
                     std::to_string(::geteuid()) + " may not read it; run the command as root");
  }
  fail_errno(path, "cannot stat state directory", error);
}

std::filesystem::path root_of(const std::filesystem::path& path) {
  auto root = std::filesystem::absolute(path).lexically_normal();
  if (!root.has_filename() && root.has_relative_path()) {
    root = root.parent_path();
  }
  return root;
}

GenerationInfo info_of(const GenerationRecord& record, std::optional<Number> current) {
  GenerationInfo info;
  info.number = record.number;
  info.created = record.created;
  info.manifest_sha256 = record.manifest_sha256;
  info.manifest = record.manifest;
  info.secrets = record.secrets.size() + record.values;
  info.current = current == record.number;
  return info;
}

void refuse(manifest::Manifest& manifest, const std::string& source, manifest::EntryKind kind,
            const std::string& name, int line, const std::string& reason) {
  manifest.problems.push_back(
      {name, manifest::entry_problem(source, line, kind, name, reason), kind});
}

// Why a secret cannot be served from `blob`, or "" when it can: the daemon reads the blob at
// every open, so one that is missing, or that another user could have replaced, is refused.
// Its SHA-256 is checked at every open as well; this names the cause before a reader meets it.
std::string blob_problem(const std::filesystem::path& blob, Ownership ownership) {
  struct stat status {};
  if (::lstat(blob.c_str(), &status) != 0 || !S_ISREG(status.st_mode)) {
    return "its stored ciphertext " + blob.string() + " is missing";
  }
  const Exposure exposure = exposure_of(status, ownership);
  if (exposure == Exposure::none) {
    return {};
  }
  return "its stored ciphertext " + owner_and_mode(blob, status) + ": " + reason(exposure) + "; " +
         fix(exposure, blob, status);
}

// Serves each secret from its stored copy. A secret without one was refused when the
// generation was stored (an owner that did not resolve then, say); serving it now would serve
// a file nobody validated, so it stays refused.
void point_at_blobs(manifest::Manifest& manifest, const GenerationRecord& record,
                    const std::filesystem::path& root, const std::string& source,
                    Ownership ownership) {
  std::map<std::string, std::string> blobs;
  for (const StoredSecret& stored : record.secrets) {
    blobs.emplace(stored.name, stored.blob);
  }
  std::vector<manifest::Secret> served;
  for (manifest::Secret& secret : manifest.secrets) {
    if (secret.from_onepassword) {
      served.push_back(std::move(secret));  // its cached value is attached by attach_values
      continue;
    }
    const auto found = blobs.find(secret.name);
    if (found == blobs.end()) {
      refuse(manifest, source, manifest::EntryKind::secret, secret.name, secret.line,
             "no ciphertext was stored for it in generation " + std::to_string(record.number) +
                 " (it was refused then)");
      continue;
    }
    secret.file = blob_path(root, found->second);
    secret.sha256 = found->second;
    if (const std::string problem = blob_problem(secret.file, ownership); !problem.empty()) {
      refuse(manifest, source, manifest::EntryKind::secret, secret.name, secret.line, problem);
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
  auto root = root_of(path);
  make_folder(root, kFolderMode);
  check_folder(root, ownership);
  for (const char* folder : {kBlobsFolder, kGenerationsFolder}) {
    make_folder(root / folder, kFolderMode);
    check_folder(root / folder, ownership);
  }
  fsync_folder(root);
  return StateDir(std::move(root), ownership);
}

StateDir StateDir::open_existing(const std::filesystem::path& path, Ownership ownership) {
  auto root = root_of(path);
  if (kind_of(root) == Kind::missing) {
    throw StateError("no state directory at " + root.string() +
                     " (nothing was activated there; see --state-dir)");
  }
  check_folder(root, ownership);
  for (const char* folder : {kBlobsFolder, kGenerationsFolder}) {
    check_existing_folder(root, folder);
    check_folder(root / folder, ownership);
  }
  return StateDir(std::move(root), ownership);
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
  return read_number_file(path_ / kCurrentFile, ownership_);
}

std::vector<GenerationInfo> StateDir::generations() const {
  const auto current_number = current();
  std::vector<GenerationInfo> infos;
  for (const Number number : generation_numbers(path_)) {
    // One damaged generation must not hide the others from the admin who has to repair it.
    try {
      infos.push_back(info_of(read_record(path_, number, ownership_), current_number));
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
  return info_of(read_record(path_, number, ownership_), current());
}

void StateDir::set_current(Number number) {
  // Reading the generation first means `current` never names one that cannot be loaded.
  read_manifest_text(path_, read_record(path_, number, ownership_), ownership_);
  write_number_file(path_, kCurrentFile, number);
}

manifest::Manifest StateDir::load(Number number, const manifest::Accounts& accounts) const {
  const GenerationRecord record = read_record(path_, number, ownership_);
  const auto manifest_path = generation_folder(path_, number) / kManifestFile;
  const std::string text = read_manifest_text(path_, record, ownership_);

  manifest::Manifest manifest;
  try {
    manifest =
        manifest::parse(text, record.manifest.parent_path(), manifest_path.string(), accounts);
  } catch (const manifest::ManifestError& error) {
    throw StateError(error.what());
  }
  manifest.path = record.manifest;

  point_at_blobs(manifest, record, path_, manifest_path.string(), ownership_);
  attach_values(manifest);
  read_stored_templates(manifest, record, path_, manifest_path.string());
  // After the secrets: a template whose secret has no stored ciphertext cannot be served.
  templates::resolve(manifest, manifest_path.string());
  return manifest;
}

}  // namespace secretfs::state
