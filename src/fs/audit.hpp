// The audit trail: one record for every open of a secret or template, granted or refused,
// naming who opened what. Never content, never key material.
//
// With the manifest's `audit_log`, records are JSON objects, one per line, appended to that
// root-only file, which is reopened after SIGHUP so that it can be rotated. Without it, the
// same records go to the daemon's log at info level. Opens only queue their records; a thread
// of the trail's own writes them within milliseconds, and the queue is written out in full
// before the trail goes away.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <ctime>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fs/process_names.hpp"

namespace secretfs::fs {

enum class Outcome {
  granted,  // the open succeeded
  denied,   // the caller may not read the secret (errno EACCES)
  failed,   // the caller may, but the secret could not be decrypted (errno EIO)
};

struct AuditEvent {
  std::string secret;  // the secret's or template's name
  std::uint64_t generation = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  pid_t pid = 0;
  Outcome outcome = Outcome::granted;
  int error = 0;  // the errno returned, when not granted
};

// A record's time as text, UTC with milliseconds: 2026-12-03T19:04:13.123Z. The part up to the
// seconds is formatted once a second, not once a record.
class UtcText {
 public:
  std::string of(std::chrono::system_clock::time_point time);

 private:
  std::time_t second_ = -1;
  std::string second_text_;
};

class AuditTrail {
 public:
  AuditTrail() = default;
  ~AuditTrail();
  AuditTrail(const AuditTrail&) = delete;
  AuditTrail& operator=(const AuditTrail&) = delete;

  // Records `event` in `log` (the served manifest's audit_log; empty for the daemon's log).
  // Never throws: a trail that cannot be written is reported in the daemon's log, and its
  // records go there instead.
  void record(const std::filesystem::path& log, const AuditEvent& event) noexcept;

  // Asks for the file to be reopened before the next record; safe in a signal handler.
  static void reopen_on_next_record() noexcept;

  // Installs reopen_on_next_record() as the SIGHUP handler.
  static void reopen_on_sighup();

 private:
  struct Queued {
    std::filesystem::path log;
    AuditEvent event;
    std::string process;  // the caller's command name, read when it opened
    std::chrono::system_clock::time_point time;
  };

  void write_queued();
  void write(const std::vector<Queued>& batch) noexcept;
  void append(std::string& lines) noexcept;
  void open(const std::filesystem::path& log);
  void close() noexcept;

  ProcessNames process_names_;  // the request loop's

  // Shared with the writer thread.
  std::mutex mutex_;
  std::condition_variable queued_;   // stopping
  std::condition_variable drained_;  // room in the queue again
  std::vector<Queued> queue_;
  bool stopping_ = false;
  std::thread writer_;

  // The writer thread's alone.
  std::filesystem::path path_;  // of the open file
  int fd_ = -1;
  bool broken_ = false;  // opening `path_` failed; not retried until SIGHUP or a new path
  UtcText time_;
};

// One record as its JSON line (no newline), for the file and for tests.
std::string to_json_line(const AuditEvent& event, std::string_view process_name,
                         std::string_view time);

}  // namespace secretfs::fs
