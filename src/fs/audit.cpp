#include "fs/audit.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "fs/signals.hpp"
#include "secretfs/log.hpp"
#include "secretfs/unique_fd.hpp"

namespace secretfs::fs {

namespace {

constexpr mode_t kAuditLogMode = 0600;
// How long the writer lets records gather once the first one is queued: a burst of opens then
// costs one write, and the writer thread wakes at most this often however busy the mount is.
constexpr auto kWriteInterval = std::chrono::milliseconds(5);
// Records queued at most, a few hundred milliseconds of the busiest mount; beyond it an open
// waits for the writer.
constexpr std::size_t kQueueLimit = 4096;
// The writer's nice value. Records may wait a few milliseconds, readers may not: a reader woken
// on the writer's CPU runs at once instead of after a batch has been written.
constexpr int kWriterNice = 10;
// How long an idle writer sleeps before it looks whether SIGHUP asked for the file to be
// reopened: a log that was fixed is in use again within this, with no record needed to notice.
constexpr auto kReopenCheckInterval = std::chrono::seconds(1);

std::atomic<bool> reopen_requested{false};

std::string_view kind_of(mode_t mode) {
  if (S_ISDIR(mode)) {
    return "a directory";
  }
  if (S_ISCHR(mode)) {
    return "a character device";
  }
  if (S_ISBLK(mode)) {
    return "a block device";
  }
  if (S_ISFIFO(mode)) {
    return "a FIFO";
  }
  if (S_ISSOCK(mode)) {
    return "a socket";
  }
  return "something else";
}

// The records are the daemon's own: a file anyone else could read or change is not a trail, and
// neither is a device, a FIFO or a link to a file that may be anyone's.
std::optional<std::string> file_problem(const struct stat& status) {
  if (S_ISLNK(status.st_mode)) {
    return "is a symbolic link; name the file itself (links are not followed)";
  }
  if (!S_ISREG(status.st_mode)) {
    return fmt::format("is {}, not a regular file", kind_of(status.st_mode));
  }
  if (status.st_uid != ::geteuid() || (status.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    return fmt::format(
        "owned by uid {} with mode {:04o}; the audit log must be the daemon's alone "
        "(chown root, chmod 0600)",
        status.st_uid, status.st_mode & 07777);
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> audit_log_problem(const std::filesystem::path& log) {
  const auto folder = log.parent_path();
  struct stat status {};
  if (::stat(folder.c_str(), &status) != 0) {
    if (errno == ENOENT) {
      return "folder " + folder.string() + " does not exist";
    }
    return "folder " + folder.string() + ": " + std::strerror(errno);
  }
  if (!S_ISDIR(status.st_mode)) {
    return folder.string() + " is not a folder";
  }
  if (::lstat(log.c_str(), &status) != 0) {
    if (errno == ENOENT) {
      return std::nullopt;  // the daemon creates it
    }
    return std::strerror(errno);
  }
  return file_problem(status);
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
  const std::lock_guard<std::mutex> hold(file_mutex_);
  close();
}

// Started on first use, which comes after the daemon has forked to leave the terminal: a thread
// does not survive a fork.
void AuditTrail::start_writer() {
  if (!writer_.joinable()) {
    writer_ = thread_without_loop_signals([this] { write_queued(); });
  }
}

void AuditTrail::use(const std::filesystem::path& log) noexcept {
  try {
    if (!log.empty()) {
      // The writer also reopens the file after SIGHUP when no records come.
      const std::lock_guard<std::mutex> hold(mutex_);
      start_writer();
    }
    const std::lock_guard<std::mutex> hold(file_mutex_);
    // A file that could not be opened is tried again: a new generation is a moment to look.
    if (log != path_ || fd_ < 0) {
      switch_to(log);
    }
  } catch (const std::exception& error) {
    spdlog::error("audit: {}", error.what());
  }
}

std::optional<std::string> AuditTrail::problem(const std::filesystem::path& log) const {
  const std::lock_guard<std::mutex> hold(file_mutex_);
  if (log.empty() || log != problem_path_ || problem_.empty()) {
    return std::nullopt;
  }
  return problem_ + "; records go to the daemon's log";
}

void AuditTrail::record(const std::filesystem::path& log, const AuditEvent& event) noexcept {
  try {
    // Read now: a refused caller often exits at once, and its name with it.
    std::string process = process_names_.of(event.pid);
    std::unique_lock<std::mutex> hold(mutex_);
    start_writer();
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
// so a record costs an open no more than reading the caller's name. Idle, it wakes once a
// second to reopen the file if SIGHUP asked for it: the signal handler cannot wake it.
void AuditTrail::write_queued() {
  // Linux keeps a nice value per thread: this lowers the writer's alone.
  ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kWriterNice);
  std::vector<Queued> batch;
  std::unique_lock<std::mutex> hold(mutex_);
  for (;;) {
    queued_.wait_for(hold, kReopenCheckInterval, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) {
      if (stopping_) {
        return;  // everything is written
      }
      hold.unlock();
      reopen_if_asked();
      hold.lock();
      continue;
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
  const std::lock_guard<std::mutex> hold(file_mutex_);
  std::string pending;  // lines for the open file, not yet written
  for (const Queued& queued : batch) {
    try {
      const std::string line = to_json_line(queued.event, queued.process, time_.of(queued.time));
      if (reopen_requested.exchange(false) || queued.log != path_) {
        append(pending);
        switch_to(queued.log);
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
  try {
    append(pending);
  } catch (const std::exception& error) {
    spdlog::error("audit: {}", error.what());
  }
}

void AuditTrail::reopen_if_asked() noexcept {
  try {
    const std::lock_guard<std::mutex> hold(file_mutex_);
    if (reopen_requested.exchange(false)) {
      const std::filesystem::path log = path_;
      switch_to(log);
    }
  } catch (const std::exception& error) {
    spdlog::error("audit: {}", error.what());
  }
}

void AuditTrail::switch_to(const std::filesystem::path& log) noexcept {
  close();
  try {
    path_ = log;
    if (!path_.empty()) {
      open(path_);
    }
  } catch (const std::exception& error) {
    spdlog::error("audit: {}", error.what());
  }
}

// O_APPEND and one write for many whole lines: records from a rotation or a restart never
// interleave with these. A write cut short (a full disk) is cut back to its last whole line, so
// that every line of the file stays one record and the next one starts a line of its own; the
// lines that did not reach the file whole follow in the daemon's log.
void AuditTrail::append(std::string& lines) noexcept {
  if (lines.empty()) {
    return;
  }
  std::size_t sent = 0;
  int error = 0;
  while (sent < lines.size()) {
    const ssize_t written = ::write(fd_, lines.data() + sent, lines.size() - sent);
    if (written < 0 && errno == EINTR) {
      continue;
    }
    if (written <= 0) {
      error = written < 0 ? errno : ENOSPC;
      break;
    }
    sent += static_cast<std::size_t>(written);
  }
  try {
    if (error == 0) {
      if (problem_path_ == path_ && !problem_.empty()) {
        spdlog::info("audit log {}: written again", path_.string());
        problem_.clear();
      }
      lines.clear();
      return;
    }
    const auto newline = sent == 0 ? std::string::npos : lines.rfind('\n', sent - 1);
    const std::size_t whole = newline == std::string::npos ? 0 : newline + 1;
    if (sent > whole) {
      cut_back(sent, whole);
    }
    problem_path_ = path_;
    problem_ = fmt::format("audit log {}: write failed: {}", path_.string(), std::strerror(error));
    spdlog::error("{}; the records not written follow here:", problem_);
    std::string_view rest = std::string_view(lines).substr(whole);
    while (!rest.empty()) {
      const auto end = rest.find('\n');
      spdlog::info("audit {}", rest.substr(0, end));
      rest.remove_prefix(end + 1);
    }
  } catch (const std::exception& failure) {
    spdlog::error("audit: {}", failure.what());
  }
  lines.clear();
}

// Removes the last `sent - whole` bytes this trail wrote: the start of a line that did not fit.
// After a write with O_APPEND the file offset is the end of what that write put in the file, and
// a failed write leaves it there, so it marks the end of our own bytes even if another process
// appended meanwhile.
void AuditTrail::cut_back(std::size_t sent, std::size_t whole) noexcept {
  const off_t end = ::lseek(fd_, 0, SEEK_CUR);
  const off_t part = static_cast<off_t>(sent - whole);
  if (end < part || ::ftruncate(fd_, end - part) != 0) {
    spdlog::error("audit log {}: could not remove a record written in part: {}", path_.string(),
                  std::strerror(end < part ? EINVAL : errno));
  }
}

void AuditTrail::open(const std::filesystem::path& log) noexcept {
  try {
    // O_NONBLOCK: a FIFO in the log's place fails (ENXIO) or is refused as not a regular file,
    // instead of blocking the writer, and with it every open, until someone reads it.
    UniqueFd fd(::open(log.c_str(),
                       O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK,
                       kAuditLogMode));
    std::optional<std::string> reason;
    struct stat status {};
    if (fd.get() < 0) {
      const int error = errno;
      // Says more than errno would: ELOOP for a link, ENOENT for a missing folder.
      reason = audit_log_problem(log);
      if (!reason) {
        reason = std::strerror(error);
      }
    } else if (::fstat(fd.get(), &status) != 0) {
      reason = std::strerror(errno);
    } else {
      reason = file_problem(status);
    }
    if (reason) {
      problem_path_ = log;
      problem_ = fmt::format("audit log {} not used: {}", log.string(), *reason);
      spdlog::error("{}; records go to this log until it is fixed and the daemon gets SIGHUP",
                    problem_);
      return;
    }
    fd_ = fd.release();
    if (problem_path_ == log && !problem_.empty()) {
      spdlog::info("audit log {}: in use again", log.string());
      problem_.clear();
    }
  } catch (const std::exception& error) {
    spdlog::error("audit log {}: {}", log.string(), error.what());
  }
}

void AuditTrail::close() noexcept {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

void AuditTrail::request_reopen() noexcept {
  reopen_requested = true;
}

void AuditTrail::reopen_on_sighup() {
  struct sigaction action {};
  action.sa_handler = [](int) { request_reopen(); };
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  if (::sigaction(SIGHUP, &action, nullptr) != 0) {
    throw std::runtime_error(std::string("cannot handle SIGHUP: ") + std::strerror(errno));
  }
}

}  // namespace secretfs::fs
