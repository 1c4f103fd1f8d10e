// The directory tree that a set of secrets forms: "db/password" is the file "password" in the
// directory "db". A lookup is a binary search in one directory's sorted children and a getattr
// one hash lookup: neither grows with the number of secrets elsewhere in the tree.
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
  std::size_t secret = 0;       // secrets only: index into Tree::secrets()
  std::uint32_t subdirectories = 0;

  bool is_directory() const { return S_ISDIR(mode); }
};

class Tree {
 public:
  // Expects names that manifest::parse accepted: valid, and none both file and directory.
  // Inode numbers come from `inodes`, so that trees built from the same registry agree.
  Tree(std::vector<manifest::Secret> secrets, InodeRegistry& inodes);

  const Node* node(Inode inode) const;
  const Node* child(Inode parent, std::string_view name) const;
  const ServedSecret& secret(const Node& node) const { return secrets_[node.secret]; }
  std::span<const ServedSecret> secrets() const { return secrets_; }
  std::size_t size() const { return nodes_.size(); }
  std::span<const Node> nodes() const { return nodes_; }

 private:
  void add_path(const ServedSecret& secret, std::size_t index,
                std::unordered_map<std::string_view, std::size_t>& directories,
                InodeRegistry& inodes);
  std::size_t add_child(std::size_t parent, std::string_view path, std::string_view name, Kind kind,
                        InodeRegistry& inodes);

  std::vector<ServedSecret> secrets_;
  std::vector<Node> nodes_;                         // the root first
  std::unordered_map<Inode, std::size_t> indexes_;  // inode -> position in nodes_
};

}  // namespace secretfs::fs
