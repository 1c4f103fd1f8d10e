// The daemon's control socket: a Unix stream socket in the state directory on which root asks
// the running daemon to switch generations or to report its status. One JSON object per line
// each way, one request per connection, answered one at a time, so that switches never overlap.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>

namespace secretfs::fs {

class ControlServer {
 public:
  using Handler = std::function<nlohmann::json(const nlohmann::json& request)>;

  // Listens on `socket_path` (replacing a socket left by a dead daemon) and answers each
  // request with `handler` on a thread of its own. Peers other than root are refused by their
  // credentials, whatever the socket file's mode says.
  ControlServer(std::filesystem::path socket_path, Handler handler);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

 private:
  void serve();
  void answer(int connection);

  std::filesystem::path socket_path_;
  Handler handler_;
  int listener_ = -1;
  int stop_[2] = {-1, -1};  // a pipe whose write end wakes the thread to stop
  std::thread thread_;
};

// Sends `request` to the daemon listening on `socket_path` and returns its answer, or nullopt
// when no daemon listens there. Throws std::runtime_error when the daemon does not answer in
// `timeout` or answers with something that is not JSON.
std::optional<nlohmann::json> ask_daemon(const std::filesystem::path& socket_path,
                                         const nlohmann::json& request,
                                         std::chrono::milliseconds timeout);

}  // namespace secretfs::fs
