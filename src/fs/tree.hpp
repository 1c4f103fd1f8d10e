// The directory tree that a set of secrets and templates forms: "db/password" is the file
// "password" in the directory "db". A lookup is a binary search in one directory's sorted children
// and a getattr one hash lookup: neither grows with the number of secrets elsewhere in the tree.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "fs/inodes.hpp"
#include "secretfs/manifest.hpp"
#include "secretfs/template.hpp"

namespace secretfs::fs {

// Directories are root's and may be traversed but not listed by others, as sops-nix's
// /run/secrets: a service opens the paths it knows, an admin lists them as root.
inline constexpr mode_t kDirectoryMode = 0751;

// What the daemon keeps of a manifest's secret while it serves it. The file is a plain string:
// a std::filesystem::path also keeps each of its components apart, hundreds of bytes a secret
// that tens of thousands of secrets feel.
struct ServedSecret {
  explicit ServedSecret(manifest::Secret secret);

  std::string name;
  std::string file;    // absolute path of the age file
  std::string sha256;  // stored generations: the file's expected SHA-256, in hex
  uid_t uid = 0;
  gid_t gid = 0;
  mode_t mode = 0;
};

// What the daemon keeps of a template while it serves it: the text, parsed once, and for each
// placeholder where its secret is in Tree::secrets().
struct ServedTemplate {
  // `served`: the tree's secrets, in which each placeholder's secret is found.
  ServedTemplate(manifest::Template entry, std::span<const ServedSecret> served);

  std::string name;
  std::string file;    // a template file, or its stored copy; empty for `content`
  std::string sha256;  // stored generations: the copy's SHA-256, checked at every open
  uid_t uid = 0;
  gid_t gid = 0;
  mode_t mode = 0;
  templates::Template parsed;
  std::vector<std::size_t> secrets;  // by placeholder
};

struct Entry {
  std::string name;
  Inode inode;
};

struct Node {
  Inode inode = 0;
  Inode parent = 0;
  mode_t mode = 0;  // file type and permission bits, ready for st_mode
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<Entry> children;  // directories only, sorted by name
  manifest::EntryKind entry = manifest::EntryKind::secret;  // files only: what they serve
  std::size_t index = 0;  // files only: into Tree::secrets() or Tree::templates(), by `entry`
  std::uint32_t subdirectories = 0;

  bool is_directory() const { return S_ISDIR(mode); }
  bool is_template() const { return !is_directory() && entry == manifest::EntryKind::template_; }
};

class Tree {
 public:
  // Expects what manifest::parse accepted: valid names, none both file and directory, secrets
  // sorted by name, and templates that templates::resolve accepted against these secrets.
  // Inode numbers come from `inodes`, so that trees built from the same registry agree.
  Tree(std::vector<manifest::Secret> secrets, InodeRegistry& inodes,
       std::vector<manifest::Template> templates = {});

  const Node* node(Inode inode) const;
  const Node* child(Inode parent, std::string_view name) const;
  const ServedSecret& secret(const Node& node) const { return secrets_[node.index]; }
  const ServedTemplate& template_of(const Node& node) const { return templates_[node.index]; }
  const std::string& name(const Node& node) const;  // a secret's or template's full name
  std::span<const ServedSecret> secrets() const { return secrets_; }
  std::span<const ServedTemplate> templates() const { return templates_; }
  std::size_t size() const { return nodes_.size(); }
  std::span<const Node> nodes() const { return nodes_; }

 private:
  void add_path(std::string_view name, const Node& file,
                std::unordered_map<std::string_view, std::size_t>& directories,
                InodeRegistry& inodes);
  std::size_t add_child(std::size_t parent, std::string_view path, std::string_view name, Kind kind,
                        InodeRegistry& inodes);

  std::vector<ServedSecret> secrets_;
  std::vector<ServedTemplate> templates_;
  std::vector<Node> nodes_;                         // the root first
  std::unordered_map<Inode, std::size_t> indexes_;  // inode -> position in nodes_
};

}  // namespace secretfs::fs
