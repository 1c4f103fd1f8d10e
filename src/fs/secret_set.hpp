// What the daemon serves: the tree of secrets and templates of one manifest, each one's size,
// and the identities that open them. Plain C++ with no FUSE in it, so it is tested without a
// mount; the FUSE layer only translates its answers.
#pragma once

#include <atomic>
#include <ctime>
#include <map>
#include <memory>
#include <span>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <vector>

#include "fs/keyring.hpp"
#include "fs/opened_files.hpp"
#include "fs/tree.hpp"
#include "secretfs/manifest.hpp"
#include "secretfs/secret_bytes.hpp"

namespace secretfs::fs {

// Why a secret or template could not be opened; the message names the template, the secret, its
// file and the reason.
class OpenFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// When a set checks its secrets' files. `now`: before it is served, so that its problems are
// known and its first opens cost no X25519. `later`: only each size is read now (from the
// header), and check_files() does the rest while the set already serves; a daemon starting
// with thousands of secrets mounts in a fraction of the time that way.
enum class FileChecks { now, later };

// A secret that the daemon reads from 1Password, as the refresher needs it.
struct RefreshedSecret {
  std::string name;
  std::string reference;
  bool has_value = false;  // whether a cached value was attached when the set was built
};

class SecretSet {
 public:
  // Checks each secret's file as its first open would (header, MAC, payload length, stored
  // hash) and learns its size; a secret whose file is missing, broken or for other identities
  // is still served (its open fails with the reason), so one bad file never hides the others.
  // `generation` is the stored generation the manifest came from, 0 for a manifest served
  // directly.
  SecretSet(manifest::Manifest manifest, std::shared_ptr<const Keyring> keyring,
            InodeRegistry& inodes, std::uint64_t generation = 0,
            FileChecks checks = FileChecks::now);

  const Tree& tree() const { return tree_; }
  std::uint64_t size(const Node& node) const;

  // Whether size(node) is the exact size. Only a template can say otherwise: one that chomps a
  // secret's own bytes shows the size with nothing chomped (at most 2 bytes a placeholder more)
  // until it is first rendered, and the rendered size from then on.
  bool size_is_exact(const Node& node) const;
  const std::timespec& time() const { return time_; }
  std::uint64_t generation() const { return generation_; }
  const std::filesystem::path& mount_point() const { return mount_point_; }
  const std::filesystem::path& audit_log() const { return audit_log_; }
  const Keyring& keyring() const { return *keyring_; }
  std::shared_ptr<const Keyring> shared_keyring() const { return keyring_; }

  // The secrets read from 1Password, and how.
  const std::vector<RefreshedSecret>& refreshed() const { return refreshing_.secrets; }
  const manifest::OnePassword& onepassword() const { return refreshing_.settings; }
  std::uint64_t max_secret_size() const { return refreshing_.max_secret_size; }

  // The units to restart and reload because the secrets named in `changed` have new values:
  // theirs, and those of every template that inserts one of them; each unit once.
  manifest::Units units_for(const std::vector<std::string>& changed) const;

  // Everything wrong with this set, one line each: refused secrets, unusable identity files,
  // secrets whose file could not be inspected.
  const std::vector<std::string>& problems() const { return problems_; }

  // The first part of problems(): refused secrets and unusable identity files.
  std::span<const std::string> setup_problems() const {
    return std::span(problems_).first(setup_problem_count_);
  }

  // One line per secret whose file does not open with the keyring (read, stored hash, header,
  // MAC and payload length are checked, not the payload itself), then one per template whose
  // stored copy no longer matches its hash. What it learns is kept, so the first open of each
  // secret after a switch costs no X25519. Every CPU takes a share; a stop requested through
  // `stop` ends it early, with the problems found so far.
  std::vector<std::string> check_files(std::stop_token stop = {}) const;

  // check_files for the secret at `index` of tree().secrets(): its problem, or "".
  std::string check_file(std::size_t index) const;
  std::uint64_t size_of(std::size_t index) const { return sizes_[index]; }

  // The template at `index` of tree().templates(): what keeps it from rendering now (its stored
  // copy, or a secret it inserts, checked as check_file does), or "".
  std::string check_template(std::size_t index) const;
  std::uint64_t template_size_of(std::size_t index) const;
  bool template_size_is_exact(std::size_t index) const;

  // Decrypts the secret behind `node`, whole and authenticated, or renders the template behind
  // it from such secrets; throws OpenFailure.
  SecretBytes open(const Node& node) const;

 private:
  struct Refreshing {
    std::vector<RefreshedSecret> secrets;
    manifest::OnePassword settings;
    std::uint64_t max_secret_size = 0;
    std::map<std::string, manifest::Units> units;  // by secret or template name, when any
  };
  static Refreshing refreshing_of(const manifest::Manifest& manifest);

  Refreshing refreshing_;  // before tree_, which takes the manifest's secrets
  Tree tree_;
  std::vector<std::uint64_t> sizes_;  // by secret index
  std::shared_ptr<const Keyring> keyring_;
  std::vector<std::string> problems_;
  std::size_t setup_problem_count_ = 0;
  std::timespec time_{};
  std::uint64_t generation_ = 0;
  std::filesystem::path mount_point_;
  std::filesystem::path audit_log_;

  std::vector<const age::Identity*> identities_;  // the keyring's, for the age calls
  OpenedFiles opened_;

  // By template index: the size known before rendering, and the size of its last rendering
  // (kNotRendered until then).
  std::vector<templates::Size> template_sizes_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> rendered_sizes_;
  std::uint64_t max_rendered_size_ = 0;

  void check_all();
  void read_sizes();
  void size_templates();
  SecretBytes decrypt(std::size_t index) const;
  SecretBytes render(const Node& node) const;
};

// The exact plaintext size of the age file at `path`, reading only its header when it is
// binary. Throws age::Error.
std::uint64_t inspect_size(const std::filesystem::path& path);

}  // namespace secretfs::fs
