#include "fs/tree.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <stdexcept>
#include <unordered_map>

namespace secretfs::fs {

namespace {

bool by_name(const Entry& entry, std::string_view name) { return entry.name < name; }

}  // namespace

Tree::Tree(std::vector<manifest::Secret> secrets) : secrets_(std::move(secrets)) {
  Node root;
  root.inode = kRootInode;
  root.parent = kRootInode;
  root.mode = S_IFDIR | kDirectoryMode;
  nodes_.push_back(root);

  // Children are appended while building and sorted once at the end, so that building is
  // O(n log n) however the secrets are spread over directories.
  std::unordered_map<std::string_view, Inode> directories;
  for (std::size_t index = 0; index < secrets_.size(); ++index) {
    add_path(secrets_[index], index, directories);
  }
  for (Node& node : nodes_) {
    std::sort(node.children.begin(), node.children.end(),
              [](const Entry& a, const Entry& b) { return a.name < b.name; });
    auto duplicate = std::adjacent_find(node.children.begin(), node.children.end(),
                                        [](const Entry& a, const Entry& b) { return a.name == b.name; });
    if (duplicate != node.children.end()) {
      throw std::logic_error("two secrets share the path segment `" + duplicate->name + "`");
    }
  }
}

const Node* Tree::node(Inode inode) const {
  if (inode < kRootInode || inode > nodes_.size()) {
    return nullptr;
  }
  return &nodes_[inode - 1];
}

const Node* Tree::child(Inode parent, std::string_view name) const {
  const Node* directory = node(parent);
  if (directory == nullptr || !directory->is_directory()) {
    return nullptr;
  }
  const auto& children = directory->children;
  auto found = std::lower_bound(children.begin(), children.end(), name, by_name);
  if (found == children.end() || found->name != name) {
    return nullptr;
  }
  return node(found->inode);
}

// Walks the name's segments, creating directories on the way; the last segment is the file.
// `directories` maps each directory's full path (a prefix of some secret's name) to its inode.
void Tree::add_path(const manifest::Secret& secret, std::size_t index,
                    std::unordered_map<std::string_view, Inode>& directories) {
  const std::string_view name = secret.name;
  Inode directory = kRootInode;
  std::size_t begin = 0;
  for (auto slash = name.find('/'); slash != std::string_view::npos;
       slash = name.find('/', begin)) {
    const std::string_view path = name.substr(0, slash);
    auto [found, added] = directories.try_emplace(path, 0);
    if (added) {
      found->second = add_child(directory, name.substr(begin, slash - begin),
                                S_IFDIR | kDirectoryMode);
    }
    directory = found->second;
    begin = slash + 1;
  }

  const Inode file = add_child(directory, name.substr(begin), S_IFREG | secret.mode);
  Node& node = nodes_[file - 1];
  node.uid = secret.uid;
  node.gid = secret.gid;
  node.secret = index;
}

Inode Tree::add_child(Inode parent, std::string_view name, mode_t mode) {
  const Inode inode = nodes_.size() + 1;
  Node node;
  node.inode = inode;
  node.parent = parent;
  node.mode = mode;
  nodes_.push_back(node);

  Node& directory = nodes_[parent - 1];
  directory.children.push_back(Entry{std::string(name), inode});
  if (S_ISDIR(mode)) {
    ++directory.subdirectories;
  }
  return inode;
}

}  // namespace secretfs::fs
