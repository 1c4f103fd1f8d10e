#include "fs/secret_set.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <limits>
#include <map>
#include <vector>

#include "fs/parallel.hpp"
#include "secretfs/age/age.hpp"
#include "secretfs/age/armor.hpp"
#include "secretfs/age/format.hpp"
#include "secretfs/age/stream.hpp"
#include "secretfs/unique_fd.hpp"

namespace secretfs::fs {

namespace {

constexpr std::uint64_t kNotRendered = std::numeric_limits<std::uint64_t>::max();

std::string describe(const ServedSecret& secret) {
  return "secret `" + secret.name + "`: file " + secret.file;
}

[[noreturn]] void throw_io(const std::filesystem::path& path, const char* what) {
  throw age::Error(age::ErrorKind::io, path.string() + ": " + what + ": " + std::strerror(errno));
}

// Reads up to `limit` bytes from the start of the file.
std::vector<std::uint8_t> read_prefix(int fd, const std::filesystem::path& path,
                                      std::size_t limit) {
  std::vector<std::uint8_t> prefix(limit);
  std::size_t filled = 0;
  while (filled < limit) {
    const ssize_t got = ::pread(fd, prefix.data() + filled, limit - filled, filled);
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got < 0) {
      throw_io(path, "read");
    }
    if (got == 0) {
      break;
    }
    filled += static_cast<std::size_t>(got);
  }
  prefix.resize(filled);
  return prefix;
}

std::string template_prefix(const ServedTemplate& entry) {
  return "template `" + entry.name + "`: ";
}

// A stored generation's copy of a template file is checked as a stored ciphertext is, although
// the text rendered is the one parsed when the set was built: a state directory changed behind
// the daemon's back must not go unnoticed. Throws OpenFailure.
void check_stored_copy(const ServedTemplate& entry) {
  if (entry.sha256.empty()) {
    return;
  }
  try {
    read_stored_file(entry.file, entry.sha256, templates::kMaxTemplateSize);
  } catch (const age::Error& error) {
    throw OpenFailure(template_prefix(entry) + error.what());
  }
}

// "class: message" for an age::Error, the message alone for anything else.
std::string failure_reason(const std::exception& error) {
  if (const auto* age_error = dynamic_cast<const age::Error*>(&error)) {
    return std::string(age::to_string(age_error->kind())) + ": " + error.what();
  }
  return error.what();
}

// inspect_size, or 0 for a file that gives no size.
std::uint64_t size_or_zero(const std::filesystem::path& path) {
  try {
    return inspect_size(path);
  } catch (const age::Error&) {
    return 0;
  }
}

}  // namespace

std::uint64_t inspect_size(const std::filesystem::path& path) {
  // O_NONBLOCK: a FIFO in the file's place must be refused below, not block the open forever.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0) {
    throw_io(path, "open");
  }
  struct stat status {};
  if (::fstat(fd.get(), &status) != 0) {
    throw_io(path, "stat");
  }
  if (!S_ISREG(status.st_mode)) {
    throw age::Error(age::ErrorKind::io, path.string() + ": not a regular file");
  }

  // A binary header is at most kMaxHeaderSize bytes, so that prefix is all we read. Armor has
  // to be decoded whole to learn where the payload starts.
  const auto total = static_cast<std::uint64_t>(status.st_size);
  const auto prefix =
      read_prefix(fd.get(), path, std::min<std::uint64_t>(total, age::kMaxHeaderSize));
  if (age::is_armored(prefix)) {
    return age::plaintext_size(age::read_regular_file(path).bytes);
  }
  const age::Header header = age::parse_header(prefix);
  const auto size = age::plaintext_size(total - header.payload_offset);
  if (!size) {
    throw age::Error(age::ErrorKind::payload,
                     "payload of " + std::to_string(total - header.payload_offset) +
                         " bytes cannot be a whole number of chunks (truncated or padded)");
  }
  return *size;
}

SecretSet::SecretSet(manifest::Manifest manifest, std::shared_ptr<const Keyring> keyring,
                     InodeRegistry& inodes, std::uint64_t generation, FileChecks checks)
    : refreshing_(refreshing_of(manifest)),
      tree_(std::move(manifest.secrets), inodes, std::move(manifest.templates)),
      keyring_(std::move(keyring)),
      generation_(generation),
      mount_point_(manifest.mount_point),
      audit_log_(manifest.audit_log),
      identities_(keyring_->pointers()),
      opened_(tree_.secrets().size(), manifest.max_secret_size),
      max_rendered_size_(templates::max_rendered_size(manifest.max_secret_size)) {
  ::clock_gettime(CLOCK_REALTIME, &time_);
  for (const auto& problem : manifest.problems) {
    problems_.push_back(problem.message + " (not served)");
  }
  problems_.insert(problems_.end(), keyring_->problems.begin(), keyring_->problems.end());
  setup_problem_count_ = problems_.size();
  if (checks == FileChecks::now) {
    check_all();
  } else {
    read_sizes();
  }
  size_templates();
}

SecretSet::Refreshing SecretSet::refreshing_of(const manifest::Manifest& manifest) {
  Refreshing refreshing;
  refreshing.settings = manifest.onepassword;
  refreshing.max_secret_size = manifest.max_secret_size;
  for (const auto& secret : manifest.secrets) {
    if (secret.from_onepassword) {
      refreshing.secrets.push_back({secret.name, secret.source, !secret.file.empty()});
    }
    if (!secret.units.restart.empty() || !secret.units.reload.empty()) {
      refreshing.units.emplace(secret.name, secret.units);
    }
  }
  for (const auto& entry : manifest.templates) {
    if (!entry.units.restart.empty() || !entry.units.reload.empty()) {
      refreshing.units.emplace(entry.name, entry.units);
    }
  }
  return refreshing;
}

manifest::Units SecretSet::units_for(const std::vector<std::string>& changed) const {
  std::vector<std::string> names(changed.begin(), changed.end());
  for (const ServedTemplate& entry : tree_.templates()) {
    for (const std::size_t secret : entry.secrets) {
      if (std::find(changed.begin(), changed.end(), tree_.secrets()[secret].name) !=
          changed.end()) {
        names.push_back(entry.name);
        break;
      }
    }
  }
  manifest::Units units;
  const auto add = [](std::vector<std::string>& to, const std::vector<std::string>& from) {
    for (const auto& unit : from) {
      if (std::find(to.begin(), to.end(), unit) == to.end()) {
        to.push_back(unit);
      }
    }
  };
  for (const auto& name : names) {
    if (const auto found = refreshing_.units.find(name); found != refreshing_.units.end()) {
      add(units.restart, found->second.restart);
      add(units.reload, found->second.reload);
    }
  }
  return units;
}

// Checks every secret's file as its first open would, so that first opens cost no X25519, and
// learns each size. The files are independent and the unwrap dominates, so every CPU takes
// a share. A file that fails keeps the size its header gives, when it gives one.
void SecretSet::check_all() {
  const std::size_t count = tree_.secrets().size();
  sizes_.assign(count, 0);
  std::vector<std::string> failures(count);
  for_each_index(count, [&](std::size_t index) {
    const ServedSecret& secret = tree_.secrets()[index];
    if (secret.file.empty()) {
      return;  // a 1Password value not read yet: waiting, not broken (see decrypt)
    }
    try {
      sizes_[index] = opened_.check(index, secret, identities_);
    } catch (const std::exception& error) {
      failures[index] = describe(secret) + ": " + failure_reason(error);
      sizes_[index] = size_or_zero(secret.file);
    }
  });
  for (auto& failure : failures) {
    if (!failure.empty()) {
      problems_.push_back(std::move(failure) + " (opening it fails with EIO)");
    }
  }
}

// What stat needs before anything is checked: each size, from the file's header alone.
void SecretSet::read_sizes() {
  const std::size_t count = tree_.secrets().size();
  sizes_.assign(count, 0);
  for_each_index(
      count, [&](std::size_t index) { sizes_[index] = size_or_zero(tree_.secrets()[index].file); });
}

// What stat shows of each template before it is rendered, from its secrets' sizes alone.
void SecretSet::size_templates() {
  const auto served = tree_.templates();
  rendered_sizes_ = std::make_unique<std::atomic<std::uint64_t>[]>(served.size());
  for (std::size_t index = 0; index < served.size(); ++index) {
    std::vector<std::uint64_t> secret_sizes;
    for (const std::size_t secret : served[index].secrets) {
      secret_sizes.push_back(sizes_[secret]);
    }
    template_sizes_.push_back(templates::rendered_size(served[index].parsed, secret_sizes));
    rendered_sizes_[index].store(kNotRendered);
  }
}

std::uint64_t SecretSet::size(const Node& node) const {
  if (node.is_directory()) {
    return 0;
  }
  return node.is_template() ? template_size_of(node.index) : sizes_[node.index];
}

bool SecretSet::size_is_exact(const Node& node) const {
  return !node.is_template() || template_size_is_exact(node.index);
}

// The last rendering's size wins: it is what a reader got, even if a secret served straight
// from a manifest has changed since its size was read.
std::uint64_t SecretSet::template_size_of(std::size_t index) const {
  const std::uint64_t rendered = rendered_sizes_[index].load();
  return rendered == kNotRendered ? template_sizes_[index].bytes : rendered;
}

bool SecretSet::template_size_is_exact(std::size_t index) const {
  return template_sizes_[index].exact || rendered_sizes_[index].load() != kNotRendered;
}

std::vector<std::string> SecretSet::check_files(std::stop_token stop) const {
  const std::size_t secrets = tree_.secrets().size();
  std::vector<std::string> problems(secrets + tree_.templates().size());
  for_each_index(problems.size(), [&](std::size_t index) {
    if (stop.stop_requested()) {
      return;
    }
    if (index < secrets) {
      problems[index] = check_file(index);
      return;
    }
    try {
      check_stored_copy(tree_.templates()[index - secrets]);
    } catch (const OpenFailure& failure) {
      problems[index] = failure.what();
    }
  });
  std::erase(problems, std::string());
  return problems;
}

std::string SecretSet::check_file(std::size_t index) const {
  const ServedSecret& secret = tree_.secrets()[index];
  if (secret.file.empty()) {
    return {};  // a 1Password value not read yet: the refresher reports why
  }
  try {
    opened_.check(index, secret, identities_);
    return {};
  } catch (const std::exception& error) {
    return describe(secret) + ": " + failure_reason(error);
  }
}

std::string SecretSet::check_template(std::size_t index) const {
  const ServedTemplate& entry = tree_.templates()[index];
  try {
    check_stored_copy(entry);
  } catch (const OpenFailure& failure) {
    return failure.what();
  }
  for (const std::size_t secret : entry.secrets) {
    if (tree_.secrets()[secret].file.empty()) {
      return template_prefix(entry) + "secret `" + tree_.secrets()[secret].name +
             "`: no value from 1Password yet, opening it fails with EIO";
    }
    if (std::string problem = check_file(secret); !problem.empty()) {
      return template_prefix(entry) + problem;
    }
  }
  return {};
}

SecretBytes SecretSet::open(const Node& node) const {
  return node.is_template() ? render(node) : decrypt(node.index);
}

SecretBytes SecretSet::decrypt(std::size_t index) const {
  const ServedSecret& secret = tree_.secrets()[index];
  if (secret.file.empty()) {
    throw OpenFailure("secret `" + secret.name +
                      "`: no value from 1Password yet (see `secretfs status`)");
  }
  if (keyring_->identities.empty()) {
    throw OpenFailure(describe(secret) + ": no identity is loaded");
  }
  try {
    return opened_.decrypt(index, secret, identities_);
  } catch (const age::Error& error) {
    throw OpenFailure(describe(secret) + ": " + std::string(age::to_string(error.kind())) + ": " +
                      error.what());
  }
}

// All or nothing: every secret is decrypted and every placeholder filled before anything is
// returned, and what was decrypted is wiped when this returns, rendered or not.
SecretBytes SecretSet::render(const Node& node) const {
  const ServedTemplate& entry = tree_.template_of(node);
  check_stored_copy(entry);
  // Each secret is decrypted once, however many placeholders insert it.
  std::map<std::size_t, SecretBytes> plaintexts;
  std::vector<const SecretBytes*> inputs;
  for (const std::size_t secret : entry.secrets) {
    auto [found, added] = plaintexts.try_emplace(secret);
    if (added) {
      try {
        found->second = decrypt(secret);
      } catch (const OpenFailure& failure) {
        throw OpenFailure(template_prefix(entry) + failure.what());
      }
    }
    inputs.push_back(&found->second);
  }
  try {
    SecretBytes rendered = templates::render(entry.parsed, inputs, max_rendered_size_);
    rendered_sizes_[node.index].store(rendered.size());
    return rendered;
  } catch (const templates::RenderError& error) {
    throw OpenFailure(template_prefix(entry) + error.what());
  }
}

}  // namespace secretfs::fs
