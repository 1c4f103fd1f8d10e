#include "fs/audit.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>

#include "fs/signals.hpp"
#include "secretfs/log.hpp"
#include "secretfs/unique_fd.hpp"

namespace secretfs::fs {

namespace {

constexpr mode_t kAuditLogMode = 0600;
constexpr std::size_t kProcessNameSize = 64;  // /proc/PID/comm holds at most 16 bytes
constexpr int kMillisecondsPerSecond = 1000;
// How long a record may wait in the queue before the writer thread writes it.
constexpr auto kWriteInterval = std::chrono::milliseconds(5);
// Records queued at most; beyond it an open waits for the writer.
constexpr std::size_t kQueueLimit = 65536;

std::atomic<bool> reopen_requested{false};

const char* to_string(Outcome outcome) {
  switch (outcome) {
    case Outcome::granted:
      return "granted";
    case Outcome::denied:
      return "denied";
    case Outcome::failed:
      return "failed";
  }
  return "unknown";
}

// The caller's command name; empty when the process has gone already.
std::string process_name(pid_t pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/comm";
  const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    return {};
  }
  std::array<char, kProcessNameSize> name{};
  const ssize_t got = ::read(fd.get(), name.data(), name.size());
  if (got <= 0) {
    return {};
  }
  std::string result(name.data(), static_cast<std::size_t>(got));
  if (!result.empty() && result.back() == '\n') {
    result.pop_back();
  }
  return result;
}

// UTC with milliseconds: 2026-12-03T19:04:13.123Z.
std::string utc(std::chrono::system_clock::time_point now) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto milliseconds =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() %
      kMillisecondsPerSecond;
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  std::array<char, sizeof "2026-12-03T19:04:13"> text{};
  std::strftime(text.data(), text.size(), "%Y-%m-%dT%H:%M:%S", &utc);
  return fmt::format("{}.{:03}Z", text.data(), milliseconds);
}

// The records are the daemon's own: a file anyone else could read or change is not a trail.
void check_private(int fd, const std::filesystem::path& path) {
  struct stat status {};
  if (::fstat(fd, &status) != 0) {
    throw std::runtime_error(path.string() + ": " + std::strerror(errno));
  }
  if (!S_ISREG(status.st_mode)) {
    throw std::runtime_error(path.string() + ": not a regular file");
  }
  if (status.st_uid != ::geteuid() || (status.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    throw std::runtime_error(fmt::format(
        "{}: owned by uid {} with mode {:04o}; the audit log must be the daemon's alone "
        "(chown root, chmod 0600)",
        path.string(), status.st_uid, status.st_mode & 07777));
  }
}

}  // namespace

std::string to_json_line(const AuditEvent& event, std::string_view process_name,
                         std::string_view time) {
  nlohmann::ordered_json record = {{"time", time},
                                   {"secret", event.secret},
                                   {"generation", event.generation},
                                   {"uid", event.uid},
                                   {"gid", event.gid},
                                   {"pid", event.pid},
                                   {"process", process_name},
                                   {"result", to_string(event.outcome)}};
  if (event.outcome != Outcome::granted) {
    record["errno"] = event.error;
  }
  // Names are bytes: anything that is not UTF-8 is replaced rather than breaking the line.
  return record.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

AuditTrail::~AuditTrail() {
  {
    const std::lock_guard<std::mutex> hold(mutex_);
    stopping_ = true;
  }
  queued_.notify_all();
  if (writer_.joinable()) {
    writer_.join();  // writes what is still queued
  }
  close();
}

void AuditTrail::record(const std::filesystem::path& log, const AuditEvent& event) noexcept {
  try {
    // Read now: a refused caller often exits at once, and its name with it.
    std::string process = process_name(event.pid);
    std::unique_lock<std::mutex> hold(mutex_);
    // Started on first use, after the daemon has detached: a thread does not survive a fork.
    if (!writer_.joinable()) {
      writer_ = thread_without_loop_signals([this] { write_queued(); });
    }
    // A writer that cannot keep up holds the opens back rather than losing records.
    drained_.wait(hold, [this] { return queue_.size() < kQueueLimit; });
    queue_.push_back({log, event, std::move(process), std::chrono::system_clock::now()});
  } catch (const std::exception& error) {
    spdlog::error("audit: {}", error.what());
  }
}

// The writer thread: every few milliseconds, or at once when stopping, takes what is queued,
// and writes it. Opens only queue their records, so a record costs an open no more than
// reading the caller's name.
void AuditTrail::write_queued() {
  std::vector<Queued> batch;
  std::unique_lock<std::mutex> hold(mutex_);
  while (!stopping_ || !queue_.empty()) {
    queued_.wait_for(hold, kWriteInterval, [this] { return stopping_; });
    batch.swap(queue_);
    hold.unlock();
    drained_.notify_all();
    for (const auto& queued : batch) {
      write(queued);
    }
    batch.clear();
    hold.lock();
  }
}

void AuditTrail::write(const Queued& queued) noexcept {
  try {
    const std::string line = to_json_line(queued.event, queued.process, utc(queued.time));
    if (reopen_requested.exchange(false) || queued.log != path_) {
      close();
      broken_ = false;
      path_ = queued.log;
    }
    if (!path_.empty() && fd_ < 0 && !broken_) {
      open(path_);
    }
    if (fd_ < 0) {
      spdlog::info("audit {}", line);
      return;
    }
    const std::string text = line + "\n";
    // O_APPEND and one write per record: records from a rotation or a restart never interleave.
    if (::write(fd_, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
      spdlog::error("audit log {}: write failed: {}; this record follows here: {}", path_.string(),
                    std::strerror(errno), line);
    }
  } catch (const std::exception& error) {
    spdlog::error("audit: {}", error.what());
  }
}

void AuditTrail::open(const std::filesystem::path& log) {
  try {
    UniqueFd fd(
        ::open(log.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, kAuditLogMode));
    if (fd.get() < 0) {
      throw std::runtime_error(log.string() + ": " + std::strerror(errno));
    }
    check_private(fd.get(), log);
    fd_ = fd.release();
  } catch (const std::exception& error) {
    broken_ = true;
    spdlog::error("audit log not used: {}; records go to this log until SIGHUP", error.what());
  }
}

void AuditTrail::close() noexcept {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

void AuditTrail::reopen_on_next_record() noexcept {
  reopen_requested = true;
}

void AuditTrail::reopen_on_sighup() {
  struct sigaction action {};
  action.sa_handler = [](int) { reopen_on_next_record(); };
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  if (::sigaction(SIGHUP, &action, nullptr) != 0) {
    throw std::runtime_error(std::string("cannot handle SIGHUP: ") + std::strerror(errno));
  }
}

}  // namespace secretfs::fs
