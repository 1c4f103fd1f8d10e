#include "fs/loop.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <system_error>

namespace secretfs::fs {

namespace {

// How long the loop polls after a request before it sleeps. Measured on 2 vCPUs
// (docs/benchmarks.md): 20 us already triples a lone reader's opens per second, 50 us adds a
// little more, longer buys nothing.
constexpr auto kPollAfterRequest = std::chrono::microseconds(50);

using Clock = std::chrono::steady_clock;

// A buffer that libfuse grows as it needs and that is freed however the loop ends.
struct RequestBuffer {
  fuse_buf buf{};
  ~RequestBuffer() { std::free(buf.mem); }
};

void set_nonblocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    throw std::system_error(errno, std::generic_category(), "/dev/fuse: O_NONBLOCK");
  }
}

// Sleeps until the device has a request, the session is unmounted, or a signal arrives.
void wait_for_request(int fd) {
  pollfd device{fd, POLLIN, 0};
  ::poll(&device, 1, -1);
}

}  // namespace

int serve_requests(fuse_session* session) {
  const int fd = fuse_session_fd(session);
  set_nonblocking(fd);
  RequestBuffer request;
  auto polling_until = Clock::now();
  while (!fuse_session_exited(session)) {
    const int received = fuse_session_receive_buf(session, &request.buf);
    if (received == -EAGAIN) {
      if (Clock::now() < polling_until) {
        ::sched_yield();
      } else {
        wait_for_request(fd);
      }
      continue;
    }
    if (received == -EINTR) {
      continue;
    }
    // 0: unmounted (libfuse has ended the session); below 0: the device failed.
    if (received <= 0) {
      return received;
    }
    fuse_session_process_buf(session, &request.buf);
    polling_until = Clock::now() + kPollAfterRequest;
  }
  return 0;
}

}  // namespace secretfs::fs
