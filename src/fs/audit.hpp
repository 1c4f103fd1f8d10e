// The audit trail: one record for every open of a secret or template, granted or refused,
// naming who opened what. Never content, never key material.
//
// With the manifest's `audit_log`, records are JSON objects, one per line, appended to that
// root-only file, which is reopened after SIGHUP so that it can be rotated. Without it, the
// same records go to the daemon's log at info level, and so do they while the file cannot be
// opened or written. Opens only queue their records; a thread of the trail's own writes them
// within milliseconds, and the queue is written out in full before the trail goes away.
//
// A trail that does not reach its file must not go unnoticed: the file is opened when the
// daemon starts (and when a switch names another), so that a refusal is an error while someone
// watches, and problem() gives what `status` and `list` report until it is fixed.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "fs/audit_record.hpp"
#include "fs/process_names.hpp"

namespace secretfs::fs {

class AuditTrail {
 public:
  AuditTrail() = default;
  ~AuditTrail();
  AuditTrail(const AuditTrail&) = delete;
  AuditTrail& operator=(const AuditTrail&) = delete;

  // Opens `log` (the served manifest's audit_log; empty for the daemon's log) now, unless it is
  // the file open already, and reports in the daemon's log when it cannot be used. Records
  // bound for it are written there from then on. Never throws.
  void use(const std::filesystem::path& log) noexcept;

  // Records `event` in `log` (the served manifest's audit_log; empty for the daemon's log).
  // Never throws: a trail that cannot be written is reported in the daemon's log, and its
  // records go there instead.
  void record(const std::filesystem::path& log, const AuditEvent& event) noexcept;

  // Why records bound for `log` go to the daemon's log instead, as one line for `status`:
  // "audit log /var/log/a.jsonl not used: <reason>; records go to the daemon's log", or the
  // failure of the last write. Nullopt when its last open and write succeeded, or none was
  // tried.
  std::optional<std::string> problem(const std::filesystem::path& log) const;

  // Asks for the file to be reopened, within a second or before the next record, whichever
  // comes first; safe in a signal handler.
  static void request_reopen() noexcept;

  // Installs request_reopen() as the SIGHUP handler.
  static void reopen_on_sighup();

 private:
  struct Queued {
    std::filesystem::path log;
    AuditEvent event;
    std::string process;  // the caller's command name, read when it opened
    std::chrono::system_clock::time_point time;
  };

  void start_writer();  // with `mutex_` held
  void write_queued();
  void write(const std::vector<Queued>& batch) noexcept;
  void reopen_if_asked() noexcept;

  // With `file_mutex_` held.
  void switch_to(const std::filesystem::path& log) noexcept;
  void append(std::string& lines) noexcept;
  void cut_back(std::size_t sent, std::size_t whole) noexcept;
  void open(const std::filesystem::path& log) noexcept;
  void close() noexcept;

  ProcessNames process_names_;  // the request loop's

  // The queue, shared by the request loop and the writer thread.
  std::mutex mutex_;
  std::condition_variable queued_;   // stopping
  std::condition_variable drained_;  // room in the queue again
  std::vector<Queued> queue_;
  bool stopping_ = false;
  std::thread writer_;

  // The file, written by the writer thread, opened by use() and asked about by problem() from
  // the daemon's other threads.
  mutable std::mutex file_mutex_;
  std::filesystem::path path_;  // of the open file
  int fd_ = -1;  // -1 while `path_` is empty or could not be opened: until SIGHUP or use()
  std::filesystem::path problem_path_;  // the file the last failure concerns
  std::string problem_;                 // that failure, empty once an open or write succeeds
  UtcText time_;                        // the writer thread's alone
};

// Why `log` cannot be the audit log, or nullopt when it can: its folder must exist and, when it
// exists, it must be a regular file (not a symbolic link) that only the daemon's user may read
// or write. What `check` reports, and the daemon's reason when it refuses the file.
std::optional<std::string> audit_log_problem(const std::filesystem::path& log);

}  // namespace secretfs::fs
