#include "fs/tree.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <stdexcept>
#include <unordered_map>

namespace secretfs::fs {

namespace {

bool by_name(const Entry& entry, std::string_view name) {
  return entry.name < name;
}

// A file node with an entry's owner and mode, before it has a place in the tree.
Node file_node(manifest::EntryKind entry, std::size_t index, uid_t uid, gid_t gid, mode_t mode) {
  Node node;
  node.mode = S_IFREG | mode;
  node.uid = uid;
  node.gid = gid;
  node.entry = entry;
  node.index = index;
  return node;
}

// Where the secret `name` is in `secrets`, which are sorted by name as the manifest's are.
std::size_t secret_index(std::span<const ServedSecret> secrets, const std::string& name) {
  const auto found = std::lower_bound(
      secrets.begin(), secrets.end(), name,
      [](const ServedSecret& secret, const std::string& wanted) { return secret.name < wanted; });
  if (found == secrets.end() || found->name != name) {
    throw std::logic_error("a template names secret `" + name + "`, which is not served");
  }
  return static_cast<std::size_t>(found - secrets.begin());
}

}  // namespace

ServedSecret::ServedSecret(manifest::Secret secret)
    : name(std::move(secret.name)),
      file(secret.file.native()),
      sha256(std::move(secret.sha256)),
      uid(secret.uid),
      gid(secret.gid),
      mode(secret.mode) {}

ServedTemplate::ServedTemplate(manifest::Template entry, std::span<const ServedSecret> served)
    : name(std::move(entry.name)),
      file(entry.file.native()),
      sha256(std::move(entry.sha256)),
      uid(entry.uid),
      gid(entry.gid),
      mode(entry.mode) {
  templates::Parsed parsed_text = templates::parse(entry.text);
  if (!parsed_text.problems.empty()) {
    throw std::logic_error("template `" + name + "` is served without being resolved");
  }
  parsed = std::move(parsed_text.parsed);
  for (const templates::Placeholder& placeholder : parsed.placeholders) {
    secrets.push_back(secret_index(served, placeholder.secret));
  }
}

Tree::Tree(std::vector<manifest::Secret> secrets, InodeRegistry& inodes,
           std::vector<manifest::Template> templates) {
  secrets_.reserve(secrets.size());
  for (auto& secret : secrets) {
    secrets_.emplace_back(std::move(secret));
  }
  secrets.clear();
  secrets.shrink_to_fit();
  templates_.reserve(templates.size());
  for (auto& entry : templates) {
    templates_.emplace_back(std::move(entry), secrets_);
  }
  Node root;
  root.inode = kRootInode;
  root.parent = kRootInode;
  root.mode = S_IFDIR | kDirectoryMode;
  nodes_.push_back(root);

  // Children are appended while building and sorted once at the end, so that building is
  // O(n log n) however the secrets are spread over directories.
  std::unordered_map<std::string_view, std::size_t> directories;
  for (std::size_t index = 0; index < secrets_.size(); ++index) {
    const ServedSecret& secret = secrets_[index];
    add_path(secret.name,
             file_node(manifest::EntryKind::secret, index, secret.uid, secret.gid, secret.mode),
             directories, inodes);
  }
  for (std::size_t index = 0; index < templates_.size(); ++index) {
    const ServedTemplate& entry = templates_[index];
    add_path(entry.name,
             file_node(manifest::EntryKind::template_, index, entry.uid, entry.gid, entry.mode),
             directories, inodes);
  }
  indexes_.reserve(nodes_.size());
  for (std::size_t position = 0; position < nodes_.size(); ++position) {
    Node& node = nodes_[position];
    indexes_.emplace(node.inode, position);
    std::sort(node.children.begin(), node.children.end(),
              [](const Entry& a, const Entry& b) { return a.name < b.name; });
    auto duplicate =
        std::adjacent_find(node.children.begin(), node.children.end(),
                           [](const Entry& a, const Entry& b) { return a.name == b.name; });
    if (duplicate != node.children.end()) {
      throw std::logic_error("two entries share the path segment `" + duplicate->name + "`");
    }
  }
}

const Node* Tree::node(Inode inode) const {
  const auto found = indexes_.find(inode);
  return found == indexes_.end() ? nullptr : &nodes_[found->second];
}

const std::string& Tree::name(const Node& node) const {
  return node.is_template() ? template_of(node).name : secret(node).name;
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

// Walks the name's segments, creating directories on the way; the last segment is the file,
// which takes `file`'s owner, mode and what it serves. `directories` maps each directory's full
// path (a prefix of some name) to its position in nodes_.
void Tree::add_path(std::string_view name, const Node& file,
                    std::unordered_map<std::string_view, std::size_t>& directories,
                    InodeRegistry& inodes) {
  std::size_t directory = 0;
  std::size_t begin = 0;
  for (auto slash = name.find('/'); slash != std::string_view::npos;
       slash = name.find('/', begin)) {
    const std::string_view path = name.substr(0, slash);
    auto [found, added] = directories.try_emplace(path, 0);
    if (added) {
      found->second =
          add_child(directory, path, name.substr(begin, slash - begin), Kind::directory, inodes);
    }
    directory = found->second;
    begin = slash + 1;
  }

  const std::size_t position = add_child(directory, name, name.substr(begin), Kind::file, inodes);
  Node& node = nodes_[position];
  node.mode = file.mode;
  node.uid = file.uid;
  node.gid = file.gid;
  node.entry = file.entry;
  node.index = file.index;
}

std::size_t Tree::add_child(std::size_t parent, std::string_view path, std::string_view name,
                            Kind kind, InodeRegistry& inodes) {
  Node node;
  node.inode = inodes.inode_for(path, kind);
  node.parent = nodes_[parent].inode;
  node.mode = kind == Kind::directory ? S_IFDIR | kDirectoryMode : S_IFREG;
  nodes_.push_back(node);

  Node& directory = nodes_[parent];
  directory.children.push_back(Entry{std::string(name), node.inode});
  if (kind == Kind::directory) {
    ++directory.subdirectories;
  }
  return nodes_.size() - 1;
}

}  // namespace secretfs::fs
