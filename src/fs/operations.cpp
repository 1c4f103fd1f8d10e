#include "fs/operations.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "secretfs/log.hpp"

namespace secretfs::fs {

namespace {

// How long the kernel may keep names and attributes. Short, because a change of what is
// served must reach readers quickly; a secret is opened a few times per service start, so
// the extra lookups cost nothing that matters.
constexpr double kEntryTimeoutSeconds = 1.0;
constexpr double kAttrTimeoutSeconds = 1.0;
constexpr blksize_t kBlockSize = 4096;
constexpr unsigned long kMaxNameLength = 255;
constexpr std::size_t kStatBlockSize = 512;
// Supplementary groups read for a permission check: room for most callers at first, and at
// most Linux's NGROUPS_MAX.
constexpr std::size_t kFewGroups = 32;
constexpr std::size_t kMostGroups = 65536;

// An errno an operation answers with; thrown inside an operation, replied in one place.
struct Refusal {
  int error;
};

// One open file: the plaintext of one secret, or one rendering of a template, for one reader,
// wiped when released. It keeps its SecretSet alive so that an open file outlives a switch to
// another set.
struct OpenFile {
  std::shared_ptr<const SecretSet> set;
  SecretBytes plaintext;
};

Served& served(fuse_req_t req) {
  return *static_cast<Served*>(fuse_req_userdata(req));
}

// The single place where failures become errno: nothing throws into libfuse's C code.
template <typename Operation>
void answer(fuse_req_t req, const char* name, Operation&& operation) noexcept {
  try {
    operation();
  } catch (const Refusal& refusal) {
    fuse_reply_err(req, refusal.error);
  } catch (const std::bad_alloc&) {
    spdlog::error("{}: out of memory", name);
    fuse_reply_err(req, ENOMEM);
  } catch (const std::exception& error) {
    spdlog::error("{}: {}", name, error.what());
    fuse_reply_err(req, EIO);
  } catch (...) {
    spdlog::error("{}: unknown failure", name);
    fuse_reply_err(req, EIO);
  }
}

const Node& find(const SecretSet& set, fuse_ino_t inode) {
  const Node* node = set.tree().node(inode);
  if (node == nullptr) {
    throw Refusal{ENOENT};
  }
  return *node;
}

struct stat attributes(const SecretSet& set, const Node& node) {
  struct stat attr {};
  attr.st_ino = node.inode;
  attr.st_mode = node.mode;
  attr.st_uid = node.uid;
  attr.st_gid = node.gid;
  attr.st_nlink = node.is_directory() ? 2 + node.subdirectories : 1;
  attr.st_size = static_cast<off_t>(set.size(node));
  attr.st_blksize = kBlockSize;
  attr.st_blocks = static_cast<blkcnt_t>((attr.st_size + kStatBlockSize - 1) / kStatBlockSize);
  attr.st_atim = attr.st_mtim = attr.st_ctim = set.time();
  return attr;
}

// A size that is not exact yet (a template that chomps, before its first rendering) is not
// cached by the kernel at all, so that stat asks again and shows the rendered size as soon as
// there is one.
double attr_timeout(const SecretSet& set, const Node& node) {
  return set.size_is_exact(node) ? kAttrTimeoutSeconds : 0.0;
}

fuse_entry_param entry(const SecretSet& set, const Node& node) {
  fuse_entry_param param{};
  param.ino = node.inode;
  param.generation = 1;
  param.attr = attributes(set, node);
  param.attr_timeout = attr_timeout(set, node);
  param.entry_timeout = kEntryTimeoutSeconds;
  return param;
}

void lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  answer(req, "lookup", [&] {
    const auto current = served(req).current();
    const SecretSet& set = *current;
    const Node* node = set.tree().child(parent, name);
    if (node == nullptr) {
      throw Refusal{ENOENT};
    }
    const fuse_entry_param param = entry(set, *node);
    fuse_reply_entry(req, &param);
  });
}

void getattr(fuse_req_t req, fuse_ino_t inode, fuse_file_info* /*file*/) {
  answer(req, "getattr", [&] {
    const auto current = served(req).current();
    const SecretSet& set = *current;
    const Node& node = find(set, inode);
    const struct stat attr = attributes(set, node);
    fuse_reply_attr(req, &attr, attr_timeout(set, node));
  });
}

// The entry at `position` of a listing: ".", "..", then the children in name order.
const Node& listed_node(const SecretSet& set, const Node& directory, std::size_t position,
                        const char*& name) {
  if (position == 0) {
    name = ".";
    return directory;
  }
  if (position == 1) {
    name = "..";
    return find(set, directory.parent);
  }
  const Entry& child = directory.children[position - 2];
  name = child.name.c_str();
  return find(set, child.inode);
}

// Answers readdir and readdirplus from `offset` on. An entry's offset is its position plus
// one, so a listing resumes where the kernel's buffer filled up. `add_entry` writes one entry
// into the room left and returns its size, as fuse_add_direntry does.
template <typename AddEntry>
void list(fuse_req_t req, const char* operation, fuse_ino_t inode, size_t size, off_t offset,
          AddEntry add_entry) {
  answer(req, operation, [&] {
    const auto current = served(req).current();
    const SecretSet& set = *current;
    const Node& directory = find(set, inode);
    if (!directory.is_directory()) {
      throw Refusal{ENOTDIR};
    }
    std::string buffer(size, '\0');
    std::size_t used = 0;
    const std::size_t count = directory.children.size() + 2;
    for (auto position = static_cast<std::size_t>(std::max<off_t>(offset, 0)); position < count;
         ++position) {
      const char* name = nullptr;
      const Node& node = listed_node(set, directory, position, name);
      const std::size_t added = add_entry(buffer.data() + used, size - used, set, node, name,
                                          position, static_cast<off_t>(position + 1));
      if (added > size - used) {
        break;
      }
      used += added;
    }
    fuse_reply_buf(req, buffer.data(), used);
  });
}

void readdir(fuse_req_t req, fuse_ino_t inode, size_t size, off_t offset,
             fuse_file_info* /*file*/) {
  list(req, "readdir", inode, size, offset,
       [&](char* out, std::size_t room, const SecretSet& /*set*/, const Node& node,
           const char* name, std::size_t /*position*/, off_t next) {
         struct stat attr {};
         attr.st_ino = node.inode;
         attr.st_mode = node.mode;
         return fuse_add_direntry(req, out, room, name, &attr, next);
       });
}

// Like readdir with each entry's attributes, so that `ls -l` needs no lookup per name.
void readdirplus(fuse_req_t req, fuse_ino_t inode, size_t size, off_t offset,
                 fuse_file_info* /*file*/) {
  list(req, "readdirplus", inode, size, offset,
       [&](char* out, std::size_t room, const SecretSet& set, const Node& node, const char* name,
           std::size_t position, off_t next) {
         fuse_entry_param param{};
         if (position < 2) {
           // The kernel takes no reference for "." and ".."; an inode of 0 says so.
           param.attr.st_ino = node.inode;
           param.attr.st_mode = node.mode;
         } else {
           param = entry(set, node);
         }
         return fuse_add_direntry_plus(req, out, room, name, &param, next);
       });
}

// Whether the caller's supplementary groups include `gid`. The kernel passes only the primary
// group; the others come from /proc, and a caller that has gone meanwhile has none.
bool in_supplementary_groups(fuse_req_t req, gid_t gid) {
  std::vector<gid_t> groups(kFewGroups);
  int count = fuse_req_getgroups(req, static_cast<int>(groups.size()), groups.data());
  // The answer is the total, which may not have fitted: ask again with room for all of them.
  if (count > static_cast<int>(groups.size())) {
    groups.resize(std::min<std::size_t>(static_cast<std::size_t>(count), kMostGroups));
    count = fuse_req_getgroups(req, static_cast<int>(groups.size()), groups.data());
  }
  if (count <= 0) {
    return false;
  }
  groups.resize(std::min<std::size_t>(groups.size(), static_cast<std::size_t>(count)));
  return std::find(groups.begin(), groups.end(), gid) != groups.end();
}

// Whether the caller may read `node`, by the usual owner, group and other bits; root reads
// everything. Decided here, not by the kernel (the mount has no default_permissions), so that
// every refused open of a secret reaches the audit trail.
bool may_read(fuse_req_t req, const Node& node) {
  const fuse_ctx* caller = fuse_req_ctx(req);
  if (caller->uid == 0) {
    return true;
  }
  if (caller->uid == node.uid) {
    return (node.mode & S_IRUSR) != 0;
  }
  if (caller->gid == node.gid || in_supplementary_groups(req, node.gid)) {
    return (node.mode & S_IRGRP) != 0;
  }
  return (node.mode & S_IROTH) != 0;
}

void record(fuse_req_t req, const SecretSet& set, const Node& node, Outcome outcome, int error) {
  const fuse_ctx* caller = fuse_req_ctx(req);
  served(req).audit().record(set.audit_log(), {set.tree().name(node), set.generation(), caller->uid,
                                               caller->gid, caller->pid, outcome, error});
}

void open(fuse_req_t req, fuse_ino_t inode, fuse_file_info* file) {
  answer(req, "open", [&] {
    std::shared_ptr<const SecretSet> set = served(req).current();
    const Node& node = find(*set, inode);
    if (node.is_directory()) {
      throw Refusal{EISDIR};
    }
    if ((file->flags & O_ACCMODE) != O_RDONLY || (file->flags & O_TRUNC) != 0) {
      throw Refusal{EROFS};
    }
    if (!may_read(req, node)) {
      record(req, *set, node, Outcome::denied, EACCES);
      throw Refusal{EACCES};
    }

    const fuse_ctx* caller = fuse_req_ctx(req);
    SecretBytes plaintext;
    try {
      plaintext = set->open(node);
    } catch (const OpenFailure& failure) {
      spdlog::error("{} (opened by uid {} pid {})", failure.what(), caller->uid, caller->pid);
      record(req, *set, node, Outcome::failed, EIO);
      throw Refusal{EIO};
    }
    record(req, *set, node, Outcome::granted, 0);

    auto open_file = std::make_unique<OpenFile>(OpenFile{std::move(set), std::move(plaintext)});
    // Direct I/O keeps plaintext out of the page cache: every read comes here instead.
    file->direct_io = 1;
    file->keep_cache = 0;
    file->noflush = 1;
    file->fh = reinterpret_cast<std::uint64_t>(open_file.get());
    if (fuse_reply_open(req, file) == 0) {
      open_file.release();
    }
  });
}

// Listing a folder needs its read bit, as open does for a secret.
void opendir(fuse_req_t req, fuse_ino_t inode, fuse_file_info* file) {
  answer(req, "opendir", [&] {
    const auto current = served(req).current();
    const Node& node = find(*current, inode);
    if (!node.is_directory()) {
      throw Refusal{ENOTDIR};
    }
    if (!may_read(req, node)) {
      throw Refusal{EACCES};
    }
    fuse_reply_open(req, file);
  });
}

// access(2): reading follows may_read; secrets are never executable, folders always searchable
// (their mode gives everyone the search bit); writing is refused by the read-only mount first.
void access(fuse_req_t req, fuse_ino_t inode, int mask) {
  answer(req, "access", [&] {
    const auto current = served(req).current();
    const Node& node = find(*current, inode);
    if ((mask & W_OK) != 0) {
      throw Refusal{EROFS};
    }
    if ((mask & R_OK) != 0 && !may_read(req, node)) {
      throw Refusal{EACCES};
    }
    if ((mask & X_OK) != 0 && !node.is_directory()) {
      throw Refusal{EACCES};
    }
    fuse_reply_err(req, 0);
  });
}

void read(fuse_req_t req, fuse_ino_t /*inode*/, size_t size, off_t offset, fuse_file_info* file) {
  answer(req, "read", [&] {
    const auto* open_file = reinterpret_cast<const OpenFile*>(file->fh);
    const std::size_t length = open_file->plaintext.size();
    const auto start = std::min(static_cast<std::size_t>(std::max<off_t>(offset, 0)), length);
    const std::size_t count = std::min(size, length - start);
    fuse_reply_buf(req, reinterpret_cast<const char*>(open_file->plaintext.data()) + start, count);
  });
}

void release(fuse_req_t req, fuse_ino_t /*inode*/, fuse_file_info* file) {
  // Destroying the OpenFile wipes and frees its plaintext.
  delete reinterpret_cast<OpenFile*>(file->fh);
  fuse_reply_err(req, 0);
}

void statfs(fuse_req_t req, fuse_ino_t /*inode*/) {
  answer(req, "statfs", [&] {
    struct statvfs stats {};
    stats.f_bsize = kBlockSize;
    stats.f_frsize = kBlockSize;
    stats.f_files = served(req).current()->tree().size();
    stats.f_namemax = kMaxNameLength;
    stats.f_flag = ST_RDONLY | ST_NOSUID | ST_NODEV;
    fuse_reply_statfs(req, &stats);
  });
}

// The mount is read-only, so the kernel refuses these before they reach us; they answer
// EROFS too in case a kernel ever lets one through.
void refuse(fuse_req_t req) {
  fuse_reply_err(req, EROFS);
}

void setattr(fuse_req_t req, fuse_ino_t, struct stat*, int, fuse_file_info*) {
  refuse(req);
}
void mknod(fuse_req_t req, fuse_ino_t, const char*, mode_t, dev_t) {
  refuse(req);
}
void mkdir(fuse_req_t req, fuse_ino_t, const char*, mode_t) {
  refuse(req);
}
void unlink(fuse_req_t req, fuse_ino_t, const char*) {
  refuse(req);
}
void rmdir(fuse_req_t req, fuse_ino_t, const char*) {
  refuse(req);
}
void symlink(fuse_req_t req, const char*, fuse_ino_t, const char*) {
  refuse(req);
}
void rename(fuse_req_t req, fuse_ino_t, const char*, fuse_ino_t, const char*, unsigned) {
  refuse(req);
}
void link(fuse_req_t req, fuse_ino_t, fuse_ino_t, const char*) {
  refuse(req);
}
void write(fuse_req_t req, fuse_ino_t, const char*, size_t, off_t, fuse_file_info*) {
  refuse(req);
}
void create(fuse_req_t req, fuse_ino_t, const char*, mode_t, fuse_file_info*) {
  refuse(req);
}
void setxattr(fuse_req_t req, fuse_ino_t, const char*, const char*, size_t, int) {
  refuse(req);
}
void removexattr(fuse_req_t req, fuse_ino_t, const char*) {
  refuse(req);
}
void fallocate(fuse_req_t req, fuse_ino_t, int, off_t, off_t, fuse_file_info*) {
  refuse(req);
}

fuse_lowlevel_ops make_operations() {
  fuse_lowlevel_ops ops{};
  ops.lookup = lookup;
  ops.getattr = getattr;
  ops.readdir = readdir;
  ops.readdirplus = readdirplus;
  ops.open = open;
  ops.opendir = opendir;
  ops.access = access;
  ops.read = read;
  ops.release = release;
  ops.statfs = statfs;
  ops.setattr = setattr;
  ops.mknod = mknod;
  ops.mkdir = mkdir;
  ops.unlink = unlink;
  ops.rmdir = rmdir;
  ops.symlink = symlink;
  ops.rename = rename;
  ops.link = link;
  ops.write = write;
  ops.create = create;
  ops.setxattr = setxattr;
  ops.removexattr = removexattr;
  ops.fallocate = fallocate;
  return ops;
}

}  // namespace

Served::Served(std::shared_ptr<const SecretSet> set) : set_(std::move(set)) {}

std::shared_ptr<const SecretSet> Served::current() const {
  const std::lock_guard<std::mutex> hold(mutex_);
  return set_;
}

void Served::attach(fuse_session* session) {
  const std::lock_guard<std::mutex> hold(mutex_);
  session_ = session;
}

std::shared_ptr<const SecretSet> Served::replace(std::shared_ptr<const SecretSet> next) {
  fuse_session* session = nullptr;
  std::shared_ptr<const SecretSet> previous;
  {
    const std::lock_guard<std::mutex> hold(mutex_);
    previous = std::exchange(set_, std::move(next));
    session = session_;
  }
  if (session != nullptr) {
    forget_cached(session, *previous);
  }
  return previous;
}

// After a switch the kernel must ask again for every name and attribute it learned from the
// previous set: a removed secret must vanish and a revoked permission stop at once, instead of
// living on until the cache times out. Inodes the kernel no longer knows answer ENOENT, which
// is not a failure here.
void Served::forget_cached(fuse_session* session, const SecretSet& previous) {
  for (const Node& node : previous.tree().nodes()) {
    for (const Entry& entry : node.children) {
      fuse_lowlevel_notify_inval_entry(session, node.inode, entry.name.c_str(), entry.name.size());
    }
  }
  for (const Node& node : previous.tree().nodes()) {
    fuse_lowlevel_notify_inval_inode(session, node.inode, 0, 0);
  }
}

const fuse_lowlevel_ops& operations() {
  static const fuse_lowlevel_ops kOperations = make_operations();
  return kOperations;
}

}  // namespace secretfs::fs
