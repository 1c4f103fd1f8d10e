#include "fs/inodes.hpp"

namespace secretfs::fs {

Inode InodeRegistry::inode_for(std::string_view path, Kind kind) {
  if (path.empty()) {
    return kRootInode;
  }
  std::string key(1, kind == Kind::directory ? 'd' : 'f');
  key += path;

  const std::lock_guard<std::mutex> hold(mutex_);
  auto [found, added] = inodes_.try_emplace(std::move(key), next_);
  if (added) {
    ++next_;
  }
  return found->second;
}

}  // namespace secretfs::fs
