// The FUSE low-level operations of secretfs: one short function per operation, each only
// translating between the kernel's request and the SecretSet that answers it.
#pragma once

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 35
#endif
#include <fuse_lowlevel.h>

#include <memory>
#include <mutex>

#include "fs/audit.hpp"
#include "fs/secret_set.hpp"

namespace secretfs::fs {

// The set of secrets being served, shared by the FUSE operations (passed to fuse_session_new
// as userdata) and the control thread that switches it. Each request takes the current set
// once, so it answers from one set even if a switch happens meanwhile; an open file keeps the
// set it was opened from.
class Served {
 public:
  explicit Served(std::shared_ptr<const SecretSet> set);

  std::shared_ptr<const SecretSet> current() const;

  // The session whose kernel caches a switch must invalidate; null until mounted.
  void attach(fuse_session* session);

  // Serves `next` from now on, invalidates what the kernel cached from the previous set, and
  // returns the previous set.
  std::shared_ptr<const SecretSet> replace(std::shared_ptr<const SecretSet> next);

  AuditTrail& audit() { return audit_; }
  const AuditTrail& audit() const { return audit_; }

 private:
  static void forget_cached(fuse_session* session, const SecretSet& previous);

  mutable std::mutex mutex_;
  std::shared_ptr<const SecretSet> set_;
  fuse_session* session_ = nullptr;
  AuditTrail audit_;
};

const fuse_lowlevel_ops& operations();

}  // namespace secretfs::fs
