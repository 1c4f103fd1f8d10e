#include "fs/detach.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include "secretfs/log.hpp"

namespace secretfs::fs {

namespace {

constexpr char kReady = '1';
constexpr int kFailed = 1;

[[noreturn]] void fail(const char* what) {
  throw std::runtime_error(std::string("could not detach from the terminal: ") + what + ": " +
                           std::strerror(errno));
}

}  // namespace

Detacher::Detacher() {
  int ends[2];
  if (::pipe2(ends, O_CLOEXEC) != 0) {
    fail("pipe");
  }
  daemon_ = ::fork();
  if (daemon_ < 0) {
    ::close(ends[0]);
    ::close(ends[1]);
    fail("fork");
  }
  // Each process keeps one end: the daemon writes, the parent reads.
  const bool daemon = daemon_ == 0;
  ::close(daemon ? ends[0] : ends[1]);
  ready_fd_ = daemon ? ends[1] : ends[0];
  // A session of its own, so that the terminal's signals no longer reach the daemon.
  if (daemon && ::setsid() < 0) {
    fail("setsid");
  }
}

Detacher::~Detacher() {
  if (ready_fd_ >= 0) {
    ::close(ready_fd_);
  }
}

int Detacher::wait_for_daemon() {
  char answer = 0;
  ssize_t got = 0;
  do {
    got = ::read(ready_fd_, &answer, 1);
  } while (got < 0 && errno == EINTR);
  if (got == 1 && answer == kReady) {
    return 0;
  }
  // The daemon closed the pipe without a word: it has ended, with its reason on the terminal.
  int status = 0;
  while (::waitpid(daemon_, &status, 0) < 0) {
    if (errno != EINTR) {
      return kFailed;
    }
  }
  return WIFEXITED(status) && WEXITSTATUS(status) != 0 ? WEXITSTATUS(status) : kFailed;
}

void Detacher::ready() {
  if (::chdir("/") != 0) {
    fail("chdir /");
  }
  log::setup(log::Destination::syslog);
  const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0) {
    fail("/dev/null");
  }
  for (const int fd : {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO}) {
    if (::dup2(null, fd) < 0) {
      fail("dup2");
    }
  }
  ::close(null);
  const char answer = kReady;
  if (::write(ready_fd_, &answer, 1) != 1) {
    fail("telling the parent");
  }
  ::close(ready_fd_);
  ready_fd_ = -1;
}

}  // namespace secretfs::fs
