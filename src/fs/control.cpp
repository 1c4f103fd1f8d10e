#include "fs/control.hpp"

#include "fs/signals.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include "fs/signals.hpp"
#include "secretfs/log.hpp"

namespace secretfs::fs {

namespace {

constexpr std::size_t kMaxMessageSize = 64 * 1024;
constexpr int kBacklog = 16;
constexpr mode_t kSocketMode = 0600;
// A client that connects and then says nothing must not hold up every later request.
constexpr int kRequestTimeoutMilliseconds = 5000;

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

sockaddr_un address_of(const std::filesystem::path& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.native().size() >= sizeof address.sun_path) {
    throw std::runtime_error("control socket path " + path.string() + " is longer than " +
                             std::to_string(sizeof address.sun_path - 1) + " bytes");
  }
  std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
  return address;
}

// Reads up to the first newline, or fails after `timeout_ms` without one.
std::string read_line(int fd, int timeout_ms) {
  std::string line;
  char buffer[4096];
  for (;;) {
    pollfd ready{fd, POLLIN, 0};
    const int polled = ::poll(&ready, 1, timeout_ms);
    if (polled < 0 && errno == EINTR) {
      continue;
    }
    if (polled <= 0) {
      throw std::runtime_error("no answer within " + std::to_string(timeout_ms) + " ms");
    }
    const ssize_t got = ::recv(fd, buffer, sizeof buffer, 0);
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got < 0) {
      fail("control socket: read");
    }
    if (got == 0) {
      return line;
    }
    line.append(buffer, static_cast<std::size_t>(got));
    if (const auto newline = line.find('\n'); newline != std::string::npos) {
      line.resize(newline);
      return line;
    }
    if (line.size() > kMaxMessageSize) {
      throw std::runtime_error("control message longer than " + std::to_string(kMaxMessageSize) +
                               " bytes");
    }
  }
}

void write_line(int fd, const nlohmann::json& message) {
  const std::string line = message.dump() + "\n";
  std::size_t sent = 0;
  while (sent < line.size()) {
    const ssize_t wrote = ::send(fd, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (wrote < 0 && errno == EINTR) {
      continue;
    }
    if (wrote < 0) {
      fail("control socket: write");
    }
    sent += static_cast<std::size_t>(wrote);
  }
}

nlohmann::json refusal(const std::string& reason) {
  return {{"ok", false}, {"error", reason}};
}

}  // namespace

ControlServer::ControlServer(std::filesystem::path socket_path, Handler handler)
    : socket_path_(std::move(socket_path)), handler_(std::move(handler)) {
  const sockaddr_un address = address_of(socket_path_);
  listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener_ < 0) {
    fail("control socket");
  }
  // A socket file left by a daemon that died is in the way; nothing listens on it any more.
  ::unlink(socket_path_.c_str());
  if (::bind(listener_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 ||
      ::chmod(socket_path_.c_str(), kSocketMode) != 0 || ::listen(listener_, kBacklog) != 0 ||
      ::pipe2(stop_, O_CLOEXEC) != 0) {
    const int error = errno;
    ::close(listener_);
    errno = error;
    fail("control socket " + socket_path_.string());
  }
  thread_ = thread_without_loop_signals([this] { serve(); });
}

ControlServer::~ControlServer() {
  const char wake = 1;
  [[maybe_unused]] const auto wrote = ::write(stop_[1], &wake, 1);
  if (thread_.joinable()) {
    thread_.join();
  }
  ::close(listener_);
  ::close(stop_[0]);
  ::close(stop_[1]);
  ::unlink(socket_path_.c_str());
}

void ControlServer::serve() {
  for (;;) {
    pollfd ready[2] = {{listener_, POLLIN, 0}, {stop_[0], POLLIN, 0}};
    if (::poll(ready, 2, -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      spdlog::error("control socket: poll: {}", std::strerror(errno));
      return;
    }
    if (ready[1].revents != 0) {
      return;
    }
    const int connection = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (connection < 0) {
      continue;
    }
    answer(connection);
    ::close(connection);
  }
}

void ControlServer::answer(int connection) {
  try {
    ucred peer{};
    socklen_t length = sizeof peer;
    if (::getsockopt(connection, SOL_SOCKET, SO_PEERCRED, &peer, &length) != 0 || peer.uid != 0) {
      spdlog::warn("control socket: refused a request from uid {} pid {}: only root may use it",
                   peer.uid, peer.pid);
      write_line(connection, refusal("only root may control secretfs"));
      return;
    }
    const auto request = nlohmann::json::parse(read_line(connection, kRequestTimeoutMilliseconds));
    write_line(connection, handler_(request));
  } catch (const std::exception& error) {
    try {
      write_line(connection, refusal(error.what()));
    } catch (const std::exception&) {
      // The client is gone; there is no one left to tell.
    }
  }
}

std::optional<nlohmann::json> ask_daemon(const std::filesystem::path& socket_path,
                                         const nlohmann::json& request,
                                         std::chrono::milliseconds timeout) {
  const sockaddr_un address = address_of(socket_path);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    fail("control socket");
  }
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    const int error = errno;
    ::close(fd);
    if (error == ENOENT || error == ECONNREFUSED) {
      return std::nullopt;
    }
    errno = error;
    fail("control socket " + socket_path.string());
  }
  try {
    write_line(fd, request);
    const std::string line = read_line(fd, static_cast<int>(timeout.count()));
    ::close(fd);
    return nlohmann::json::parse(line);
  } catch (...) {
    ::close(fd);
    throw;
  }
}

}  // namespace secretfs::fs
