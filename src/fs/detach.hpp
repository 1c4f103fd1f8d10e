// Becoming a daemon, for `secretfs mount` without --foreground.
//
// The fork comes first, before any manifest, identity or secret is read: memory that libsodium
// has locked is not locked in a forked child (mlock is not inherited), and the child is the
// daemon that keeps it. The parent waits on a pipe until the daemon says its mount is live,
// then exits 0; when the daemon fails first, the parent exits with the daemon's status. Until
// it is ready the daemon still prints on the terminal, so errors reach whoever ran the command.
#pragma once

#include <sys/types.h>

namespace secretfs::fs {

class Detacher {
 public:
  // Forks; both processes return, and in_daemon() tells them apart.
  Detacher();
  ~Detacher();
  Detacher(const Detacher&) = delete;
  Detacher& operator=(const Detacher&) = delete;

  bool in_daemon() const { return daemon_ == 0; }

  // In the parent: 0 once the daemon is ready, else the daemon's exit status.
  int wait_for_daemon();

  // In the daemon, once the mount is live: leaves the terminal (a new session, standard input,
  // output and error on /dev/null, the working folder /), logs to syslog from now on, and lets
  // the parent exit.
  void ready();

 private:
  pid_t daemon_ = -1;
  int ready_fd_ = -1;  // the daemon's writing end, or the parent's reading end
};

}  // namespace secretfs::fs
