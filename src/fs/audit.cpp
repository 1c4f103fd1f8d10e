#include "fs/audit.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <iterator>
#include <nlohmann/json.hpp>

#include "fs/signals.hpp"
#include "secretfs/log.hpp"
#include "secretfs/unique_fd.hpp"

namespace secretfs::fs {

namespace {

constexpr mode_t kAuditLogMode = 0600;
constexpr int kMillisecondsPerSecond = 1000;
// How long the writer lets records gather once the first one is queued: a burst of opens then
// costs one write, and the writer thread wakes at most this often however busy the mount is.
constexpr auto kWriteInterval = std::chrono::milliseconds(5);
// Records queued at most, a few hundred milliseconds of the busiest mount; beyond it an open
// waits for the writer.
constexpr std::size_t kQueueLimit = 4096;
// The writer's nice value. Records may wait a few milliseconds, readers may not: a reader woken
// on the writer's CPU runs at once instead of after a batch has been written.
constexpr int kWriterNice = 10;

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

// A JSON string of `text`, quotes included. Names are bytes: anything that is not UTF-8 is
// replaced rather than breaking the line.
std::string json_string(std::string_view text) {
  return nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
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
  std::string line;
  fmt::format_to(std::back_inserter(line),
                 R"({{"time":"{}","secret":{},"generation":{},"uid":{},"gid":{},"pid":{},)"
                 R"("process":{},"result":"{}")",
                 time, json_string(event.secret), event.generation, event.uid, event.gid, event.pid,
                 json_string(process_name), to_string(event.outcome));
  if (event.outcome != Outcome::granted) {
    fmt::format_to(std::back_inserter(line), R"(,"errno":{})", event.error);
  }
  line += '}';
  return line;
}

std::string UtcText::of(std::chrono::system_clock::time_point time) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(time);
  if (seconds != second_) {
    std::tm utc{};
    ::gmtime_r(&seconds, &utc);
    std::array<char, sizeof "2026-12-03T19:04:13"> text{};
    std::strftime(text.data(), text.size(), "%Y-%m-%dT%H:%M:%S", &utc);
    second_ = seconds;
    second_text_ = text.data();
  }
  const auto milliseconds =
      std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count() %
      kMillisecondsPerSecond;
  return fmt::format("{}.{:03}Z", second_text_, milliseconds);
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
    std::string process = process_names_.of(event.pid);
    std::unique_lock<std::mutex> hold(mutex_);
    // Started on first use, after the daemon has detached: a thread does not survive a fork.
    if (!writer_.joinable()) {
      writer_ = thread_without_loop_signals([this] { write_queued(); });
    }
    // A writer that cannot keep up holds the opens back rather than losing records.
    drained_.wait(hold, [this] { return queue_.size() < kQueueLimit; });
    const bool first = queue_.empty();
    queue_.push_back({log, event, std::move(process), std::chrono::system_clock::now()});
    hold.unlock();
    // Only the first record of a batch wakes the writer; it gathers the rest itself.
    if (first) {
      queued_.notify_one();
    }
  } catch (const std::exception& error) {
    spdlog::error("audit: {}", error.what());
  }
}

// The writer thread: sleeps until a record is queued, lets others gather for a few
// milliseconds (or none when stopping), and writes them all. Opens only queue their records,
// so a record costs an open no more than reading the caller's name.
void AuditTrail::write_queued() {
  // Linux keeps a nice value per thread: this lowers the writer's alone.
  ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kWriterNice);
  std::vector<Queued> batch;
  std::unique_lock<std::mutex> hold(mutex_);
  for (;;) {
    queued_.wait(hold, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) {
      return;  // stopping, and everything is written
    }
    queued_.wait_for(hold, kWriteInterval, [this] { return stopping_; });
    batch.swap(queue_);
    hold.unlock();
    drained_.notify_all();
    write(batch);
    batch.clear();
    hold.lock();
  }
}

// Writes `batch` in order. Records bound for the file go out in one write for each run of them,
// so that a busy mount costs the file one append every few milliseconds, not one per open.
void AuditTrail::write(const std::vector<Queued>& batch) noexcept {
  std::string pending;  // lines for the open file, not yet written
  for (const Queued& queued : batch) {
    try {
      const std::string line = to_json_line(queued.event, queued.process, time_.of(queued.time));
      if (reopen_requested.exchange(false) || queued.log != path_) {
        append(pending);
        close();
        broken_ = false;
        path_ = queued.log;
      }
      if (!path_.empty() && fd_ < 0 && !broken_) {
        open(path_);
      }
      if (fd_ < 0) {
        spdlog::info("audit {}", line);
        continue;
      }
      pending += line;
      pending += '\n';
    } catch (const std::exception& error) {
      spdlog::error("audit: {}", error.what());
    }
  }
  append(pending);
}

// O_APPEND and one write for many whole lines: records from a rotation or a restart never
// interleave with these. Lines that could not be written follow in the daemon's log.
void AuditTrail::append(std::string& lines) noexcept {
  if (lines.empty()) {
    return;
  }
  const ssize_t written = ::write(fd_, lines.data(), lines.size());
  if (written != static_cast<ssize_t>(lines.size())) {
    const int error = written < 0 ? errno : ENOSPC;
    spdlog::error("audit log {}: write failed: {}; the records not written follow here:",
                  path_.string(), std::strerror(error));
    // From the first line that did not reach the file whole.
    std::string_view rest(lines);
    const auto whole = written <= 0 ? std::string_view::npos
                                    : rest.rfind('\n', static_cast<std::size_t>(written) - 1);
    rest.remove_prefix(whole == std::string_view::npos ? 0 : whole + 1);
    while (!rest.empty()) {
      const auto end = rest.find('\n');
      spdlog::info("audit {}", rest.substr(0, end));
      rest.remove_prefix(end + 1);
    }
  }
  lines.clear();
}

void AuditTrail::open(const std::filesystem::path& log) {
  try {
    // O_NONBLOCK: a FIFO in the log's place fails (ENXIO) or is refused as not a regular file,
    // instead of blocking the writer, and with it every open, until someone reads it.
    UniqueFd fd(::open(log.c_str(),
                       O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK,
                       kAuditLogMode));
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
