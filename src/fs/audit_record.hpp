// An audit record: what one open of a secret leaves in the trail, and its JSON line.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>

namespace secretfs::fs {

enum class Outcome {
  granted,  // the open succeeded
  denied,   // the caller may not read the secret (errno EACCES)
  failed,   // the caller may, but the secret could not be decrypted (errno EIO)
  refreshed,  // not an open: the daemon read a new value from 1Password (uid 0, its own pid)
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

// One record as its JSON line (no newline), for the file and for tests. Its strings hold nothing
// that acts on a terminal or reorders text on screen: such characters are written as \uXXXX.
std::string to_json_line(const AuditEvent& event, std::string_view process_name,
                         std::string_view time);

}  // namespace secretfs::fs
