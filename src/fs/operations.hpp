// The FUSE low-level operations of secretfs: one short function per operation, each only
// translating between the kernel's request and the SecretSet that answers it.
#pragma once

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>

#include <memory>

#include "fs/secret_set.hpp"

namespace secretfs::fs {

// The state the operations share, passed to fuse_session_new as userdata.
struct Served {
  std::shared_ptr<const SecretSet> set;
};

const fuse_lowlevel_ops& operations();

}  // namespace secretfs::fs
