// Reading values from 1Password through its CLI, `op`, run as a child process.
//
// A secret reference names one value: op://<vault>/<item>[/<section>]/<field>, optionally with a
// query such as ?attribute=otp that is passed through to `op`. Every value comes back in a
// SecretBytes: `op`'s output is read straight into locked memory, and the JSON of an item is
// parsed there too, so no value ever sits in ordinary heap memory, a file or a log.
//
// `op` runs with a clean environment (the token as OP_SERVICE_ACCOUNT_TOKEN, a private config
// folder, no Connect variables), standard input from /dev/null and a wall-clock timeout. Fields
// of one item are read with one `op item get`; a file attachment or a query needs `op read`.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <stop_token>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "secretfs/secret_bytes.hpp"

namespace secretfs::onepassword {

struct Reference {
  std::string text;     // as written: "op://vault/item/section/field?attribute=otp"
  std::string vault;    // name or ID
  std::string item;     // name or ID
  std::string section;  // empty: none given
  std::string field;    // a field's label or ID, or a file attachment's name
  std::string query;    // after '?', without it; empty: none
};

// Parses `text`, or returns why it is not a secret reference (a complete sentence without the
// reference itself, e.g. "expected op://<vault>/<item>[/<section>]/<field>").
std::variant<Reference, std::string> parse_reference(std::string_view text);

// Whether `reference` asks for a one-time password (?attribute=otp or totp): a code good for
// 30 seconds, which a value served from its last read can never be.
bool is_one_time_password(const Reference& reference);

// Why such a reference is refused, for messages.
inline constexpr std::string_view kOneTimePasswordRefused =
    "a one-time password changes every 30 seconds, and secretfs serves the value it read last: "
    "read the field's secret instead (no query)";

enum class Failure {
  not_found,     // the vault, item, section or field does not exist (or is not shared with us)
  ambiguous,     // more than one item or field matches
  auth,          // the token is missing, malformed, expired or revoked
  rate_limited,  // 1Password answered 429
  timeout,       // `op` did not finish within the timeout (it was killed)
  unusable,      // `op` cannot be run, or is not safe to run as this user (a local mistake)
  too_large,     // the value is larger than the limit (a local mistake, or the wrong field)
  failed,        // anything else: `op` crashed, unreadable output, network, stopped
};

// "not found", "ambiguous", "authentication failed", "rate limited", "timed out", "cannot run
// op", "too large", "failed".
std::string_view to_string(Failure failure);

struct Error {
  Failure failure = Failure::failed;
  std::string message;  // `op`'s own error line without its "[ERROR] date time " prefix, or ours
};

// One reference's outcome: its value, exactly as 1Password holds it (no newline added or
// removed, any bytes), or why there is none.
using Result = std::variant<SecretBytes, Error>;

struct Settings {
  std::filesystem::path op = "op";  // a bare name is looked up in PATH
  std::chrono::milliseconds timeout{30'000};
  std::filesystem::path config_dir;  // given to `op` as OP_CONFIG_DIR; created 0700 if missing
  // A larger value: Failure::too_large. An item's JSON may be a few times larger than that.
  std::uint64_t max_value_size = std::uint64_t{16} << 20;
  // A stop requested here kills a running `op` at once (the daemon is stopping).
  std::stop_token stop;
};

// Why `program` (a path, or a bare name looked up in PATH) must not be run with the token
// (Failure::unusable), or its real absolute path. It runs as root with the token, so no user
// but root (or the caller) may be able to change what runs: the program and every folder above
// it, and every folder of the path as written, must belong to root or the caller and not be
// writable by group or others (a sticky folder excepted); a link on the way must belong to
// root or the caller too, since in a sticky folder its owner may replace it.
std::variant<std::filesystem::path, Error> trusted_program(const std::filesystem::path& program);

// For commands run by hand (check, activate, sync): from now on, an interrupt (SIGINT, SIGTERM,
// SIGHUP, SIGQUIT) kills the `op` that runs at that moment, which has a process group of its
// own and so would not get the terminal's Ctrl-C, before the command dies of it as it would
// have. Not for the daemon, which stops `op` through Settings::stop.
void kill_op_on_interrupt();

// One `op` invocation as recorded for the budget: "item get" or "read", and the reference(s).
struct Request {
  std::string command;
  std::string item;  // "vault/item"
};

class Client {
 public:
  // `token` is the service account token (without a trailing newline).
  Client(Settings settings, SecretBytes token);

  // Reads every reference, grouping fields of the same vault and item into one `op item get`.
  // Results are in the order of `references`. Never throws for a failure of `op`: each failure
  // is in its reference's Result. A failure of a whole item (auth, rate limit, timeout) is given
  // to each of its references. After an authentication failure or a rate limit no more `op`
  // runs are made: every remaining reference gets the same error, since each run would only
  // fail again and spend quota. Items are grouped by vault and item as written (ignoring
  // case), so an item named once by name and once by ID is fetched twice.
  std::vector<Result> fetch(std::span<const Reference> references);

  // The `op` invocations of the last fetch, in order.
  const std::vector<Request>& requests() const { return requests_; }

 private:
  Settings settings_;
  SecretBytes token_;
  std::vector<Request> requests_;
};

// Reads a token file, held to the rules of an identity file (read_private_file, strict): a
// regular file owned by root (or by the current user when not root, for tests), no access for
// group or others, in a folder no other user can change. Surrounding whitespace is removed.
// Throws std::runtime_error naming the file and the reason.
SecretBytes read_token_file(const std::filesystem::path& path);

}  // namespace secretfs::onepassword
