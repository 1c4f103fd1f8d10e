// The command names of the processes that open secrets, for the audit trail.
//
// A name is read from /proc/PID/comm at every open, so that a process that renamed itself or
// ran exec since its last open is recorded as it is now. What is kept between opens is the
// open descriptor of each recent caller's comm file: reading it again is one pread instead of
// an open, a read and a close, the largest cost an audit record adds to an open. A descriptor
// stays bound to the process it was opened for and fails with ESRCH once that process has
// gone, so a pid used again by another process is never given the old one's name.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "secretfs/unique_fd.hpp"

namespace secretfs::fs {

class ProcessNames {
 public:
  // Descriptors kept at most: the callers of the last few opens.
  static constexpr std::size_t kKept = 16;

  // The command name of `pid` (a thread id, as FUSE gives it); empty when it has gone.
  std::string of(pid_t pid);

  // Descriptors kept now, for tests.
  std::size_t kept() const;

 private:
  struct Caller {
    pid_t pid = 0;
    UniqueFd comm;
    std::uint64_t last_use = 0;
  };

  static std::string read_name(int comm);
  void keep(pid_t pid, UniqueFd comm);

  mutable std::mutex mutex_;
  std::vector<Caller> callers_;  // at most kKept
  std::uint64_t uses_ = 0;
};

}  // namespace secretfs::fs
