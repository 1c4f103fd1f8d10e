// The daemon's refresher: reads every 1Password value the served set needs, on its own
// schedule, and keeps the last good one when 1Password cannot be reached.
//
// A secret without a cached value is read at once (the mount never waits for it); one with a
// value is read again `refresh` after it was last read, a little earlier by a random jitter so
// that many hosts do not ask together. A failure is retried after `retry`, doubling with each
// failure in a row up to `refresh`, whatever the failure (a rate limit included), so 1Password
// is never asked in a tight loop. A new value is stored encrypted, then `changed` is called
// with the names of the secrets that have it, for the daemon to serve it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "fs/secret_set.hpp"
#include "fs/values.hpp"
#include "secretfs/onepassword.hpp"
#include "secretfs/state.hpp"

namespace secretfs::fs {

class Refresher {
 public:
  using Current = std::function<std::shared_ptr<const SecretSet>()>;
  using Changed = std::function<void(const std::vector<std::string>& secrets)>;

  Refresher(state::StateDir& state, Current current, Changed changed);
  ~Refresher();
  Refresher(const Refresher&) = delete;
  Refresher& operator=(const Refresher&) = delete;

  // The served set changed (a switch): its references are looked at now.
  void wake();

  // For `secretfs status`: one object per reference, and one line per secret that is served
  // from an old value or has none.
  nlohmann::json status() const;
  std::vector<std::string> warnings() const;

 private:
  using Clock = std::chrono::steady_clock;

  struct Schedule {
    std::vector<std::string> secrets;  // the secrets that read this reference
    Clock::time_point next;
    unsigned failures = 0;
    std::optional<onepassword::Error> last_error;
    std::int64_t fetched = 0;  // wall clock: when its value was last read; 0: never
  };

  // The intervals of the last plan, to see a switch shorten them.
  struct Intervals {
    std::chrono::milliseconds refresh;
    std::chrono::milliseconds retry;
  };

  void run(std::stop_token stop);
  void plan(const SecretSet& set);
  void adopt_cached_value(const std::string& reference, const manifest::OnePassword& settings,
                          Schedule& schedule);
  Clock::time_point latest_next(const manifest::OnePassword& settings,
                                const Schedule& schedule) const;
  void read_due(const SecretSet& set);
  std::vector<std::string> note(const manifest::OnePassword& settings,
                                const std::vector<ValueOutcome>& outcomes);
  Clock::duration next_refresh(const manifest::OnePassword& settings) const;
  Clock::duration backoff(const manifest::OnePassword& settings, unsigned failures) const;

  state::StateDir& state_;
  Current current_;
  Changed changed_;
  std::stop_source stopping_;
  std::stop_token stop_;

  mutable std::mutex mutex_;
  std::condition_variable_any woken_;
  bool wake_ = true;
  std::map<std::string, Schedule> schedules_;  // by reference
  std::optional<Intervals> planned_with_;
  std::jthread thread_;  // last: stopped and joined before the rest goes
};

}  // namespace secretfs::fs
