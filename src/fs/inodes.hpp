// Inode numbers that stay the same across generations.
//
// The kernel caches which inode a name leads to. When the daemon switches to another set of
// secrets, a path present in both must keep its inode number: a reader whose cached entry
// still points at the old number then reaches the new secret, never ENOENT. A path that
// changes between file and directory gets a new number, because an inode never changes type.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace secretfs::fs {

using Inode = std::uint64_t;
inline constexpr Inode kRootInode = 1;  // what FUSE calls FUSE_ROOT_ID

enum class Kind { file, directory };

class InodeRegistry {
 public:
  // The number of `path` ("" is the root, "db/password" a secret) as a `kind`; the same
  // number every time it is asked, from any thread.
  Inode inode_for(std::string_view path, Kind kind);

 private:
  std::mutex mutex_;
  std::unordered_map<std::string, Inode> inodes_;  // key: kind letter, then the path
  Inode next_ = kRootInode + 1;
};

}  // namespace secretfs::fs
