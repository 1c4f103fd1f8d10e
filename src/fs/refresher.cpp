#include "fs/refresher.hpp"

#include <sodium.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "fs/signals.hpp"
#include "fs/values.hpp"
#include "secretfs/counted.hpp"

namespace secretfs::fs {

namespace {

constexpr int kJitterDivisor = 10;  // up to a tenth of the interval earlier

std::int64_t seconds_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string names_of(const std::vector<std::string>& secrets) {
  std::string names;
  for (const auto& secret : secrets) {
    names += (names.empty() ? "`" : ", `") + secret + "`";
  }
  return names;
}

// "250 ms", "4 s", "2 min".
std::string describe(std::chrono::steady_clock::duration wait) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(wait).count();
  if (ms < 1000) {
    return std::to_string(ms) + " ms";
  }
  if (ms < 120'000) {
    return std::to_string(ms / 1000) + " s";
  }
  return std::to_string(ms / 60'000) + " min";
}

std::string describe(const onepassword::Error& error) {
  return std::string(onepassword::to_string(error.failure)) + ": " + error.message;
}

std::string utc_time(std::int64_t seconds) {
  const std::time_t time = seconds;
  std::tm parts{};
  ::gmtime_r(&time, &parts);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text;
}

}  // namespace

Refresher::Refresher(state::StateDir& state, Current current, Changed changed)
    : state_(state),
      current_(std::move(current)),
      changed_(std::move(changed)),
      stop_(stopping_.get_token()) {
  thread_ = thread_without_loop_signals<std::jthread>([this](std::stop_token stop) { run(stop); });
}

Refresher::~Refresher() {
  thread_.request_stop();
  stopping_.request_stop();  // kills an `op` that runs now
  woken_.notify_all();
}

void Refresher::wake() {
  const std::lock_guard lock(mutex_);
  wake_ = true;
  woken_.notify_all();
}

// Sleeps until the next reference is due, a switch wakes it, or the daemon stops.
void Refresher::run(std::stop_token stop) {
  while (!stop.stop_requested()) {
    const auto set = current_();
    {
      const std::lock_guard lock(mutex_);
      wake_ = false;
      plan(*set);
    }
    try {
      read_due(*set);
    } catch (const std::exception& error) {
      spdlog::error("1Password: {}", error.what());
    }
    std::unique_lock lock(mutex_);
    auto until = Clock::time_point::max();
    for (const auto& [reference, schedule] : schedules_) {
      until = std::min(until, schedule.next);
    }
    woken_.wait_until(lock, stop, until, [this] { return wake_; });
  }
}

// The references of `set`, each with when it is read next. A reference seen before keeps its
// schedule, brought forward when a switch shortened `refresh` or `retry`, and takes a value that
// an activation read meanwhile; a new one is read now when it has no cached value, else when
// that value is due.
void Refresher::plan(const SecretSet& set) {
  const auto& settings = set.onepassword();
  const bool shortened = planned_with_ && (settings.refresh < planned_with_->refresh ||
                                           settings.retry < planned_with_->retry);
  std::map<std::string, Schedule> planned;
  for (const auto& secret : set.refreshed()) {
    auto [found, added] = planned.try_emplace(secret.reference);
    found->second.secrets.push_back(secret.name);
    if (!added) {
      continue;
    }
    Schedule& schedule = found->second;
    if (const auto old = schedules_.find(secret.reference); old != schedules_.end()) {
      auto secrets = std::move(schedule.secrets);
      schedule = old->second;
      schedule.secrets = std::move(secrets);
      if (schedule.last_error) {
        adopt_cached_value(secret.reference, settings, schedule);
      }
      if (shortened) {
        schedule.next = std::min(schedule.next, latest_next(settings, schedule));
      }
      continue;
    }
    schedule.next = Clock::now();
    adopt_cached_value(secret.reference, settings, schedule);
  }
  schedules_ = std::move(planned);
  planned_with_ = Intervals{settings.refresh, settings.retry};
}

// When the state directory holds a value of `reference` read later than `schedule` knows of (by
// `secretfs activate`, or before this daemon started), `schedule` starts from it.
void Refresher::adopt_cached_value(const std::string& reference,
                                   const manifest::OnePassword& settings, Schedule& schedule) {
  try {
    const auto cached = state_.cached_value(reference);
    if (!cached || cached->fetched <= schedule.fetched) {
      return;
    }
    schedule.fetched = cached->fetched;
    schedule.failures = 0;
    schedule.last_error.reset();
    const auto age =
        std::chrono::seconds(std::max<std::int64_t>(0, seconds_now() - cached->fetched));
    const auto wait = next_refresh(settings);
    schedule.next = Clock::now() + (age < wait ? wait - age : Clock::duration::zero());
  } catch (const std::exception& error) {
    spdlog::error("1Password: {}", error.what());
  }
}

// The latest a reference may be read next under `settings`: `refresh` after its last value, or
// its backoff from now after a failure.
Refresher::Clock::time_point Refresher::latest_next(const manifest::OnePassword& settings,
                                                   const Schedule& schedule) const {
  if (schedule.last_error) {
    return Clock::now() + backoff(settings, schedule.failures);
  }
  const auto age =
      std::chrono::seconds(std::max<std::int64_t>(0, seconds_now() - schedule.fetched));
  return Clock::now() + (age < settings.refresh ? settings.refresh - age : Clock::duration::zero());
}

// The item a reference reads, as `op item get` is run for it: references of one item are read
// together, so that an item costs one request however many of its fields are used.
std::string item_of(const std::string& reference) {
  const auto parsed = onepassword::parse_reference(reference);
  if (const auto* ok = std::get_if<onepassword::Reference>(&parsed)) {
    std::string key = ok->vault + "/" + ok->item;
    std::transform(key.begin(), key.end(), key.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return key;
  }
  return reference;
}

void Refresher::read_due(const SecretSet& set) {
  std::vector<std::string> due;
  {
    const std::lock_guard lock(mutex_);
    std::set<std::string> items;
    for (const auto& [reference, schedule] : schedules_) {
      if (schedule.next <= Clock::now()) {
        items.insert(item_of(reference));
      }
    }
    for (const auto& [reference, schedule] : schedules_) {
      if (items.contains(item_of(reference))) {
        due.push_back(reference);
      }
    }
  }
  if (due.empty()) {
    return;
  }
  const auto& settings = set.onepassword();
  // A switch while `op` runs may bring other identities: a value read for these is not kept.
  const auto still_current = [this, &set] { return current_().get() == &set; };
  const auto outcomes = read_values(state_, settings, set.keyring(), due, set.max_secret_size(),
                                    stop_, Locking::per_value, still_current);
  if (stop_.stop_requested()) {
    return;  // the daemon stops: `op` was killed, which says nothing about 1Password
  }
  const auto changed = note(settings, outcomes);
  // Outside the lock: the daemon builds and serves a new set, and wakes this refresher.
  if (!changed.empty()) {
    changed_(changed);
  }
}

// Reschedules each reference read; returns the secrets whose value changed. Each reference
// backs off by its own failures in a row (the references of one item are still read together,
// whenever the first of them is due), and a rate limit or a refused token, which every request
// would meet, holds back every reference, read this time or not.
std::vector<std::string> Refresher::note(const manifest::OnePassword& settings,
                                         const std::vector<ValueOutcome>& outcomes) {
  std::vector<std::string> changed;
  const std::lock_guard lock(mutex_);
  const auto now = Clock::now();
  const auto refreshed = now + next_refresh(settings);
  std::optional<Clock::time_point> hold;
  for (const auto& outcome : outcomes) {
    const auto found = schedules_.find(outcome.reference);
    if (found == schedules_.end()) {
      continue;
    }
    Schedule& schedule = found->second;
    if (outcome.superseded) {
      schedule.next = now;  // read again for the set served now
      continue;
    }
    if (!outcome.error) {
      schedule.failures = 0;
      schedule.last_error.reset();
      schedule.fetched = seconds_now();
      schedule.next = refreshed;
      if (outcome.changed) {
        spdlog::info("1Password: new value of {} for secret {}", outcome.reference,
                     names_of(schedule.secrets));
        changed.insert(changed.end(), schedule.secrets.begin(), schedule.secrets.end());
      }
      continue;
    }
    ++schedule.failures;
    schedule.last_error = outcome.error;
    const auto wait = backoff(settings, schedule.failures);
    schedule.next = now + wait;
    const auto failure = outcome.error->failure;
    if (failure == onepassword::Failure::rate_limited || failure == onepassword::Failure::auth) {
      hold = std::max(hold.value_or(now), now + wait);
    }
    spdlog::warn("1Password: reading {} for secret {} failed ({} in a row): {}; {}; next try in "
                 "{}",
                 outcome.reference, names_of(schedule.secrets), schedule.failures,
                 describe(*outcome.error),
                 schedule.fetched == 0 ? "it has no value yet, opening it fails with EIO"
                                       : "serving its value read " + utc_time(schedule.fetched),
                 describe(wait));
  }
  if (hold) {
    for (auto& [reference, schedule] : schedules_) {
      schedule.next = std::max(schedule.next, *hold);
    }
  }
  return changed;
}

Refresher::Clock::duration Refresher::next_refresh(const manifest::OnePassword& settings) const {
  const auto jitter_range = static_cast<std::uint32_t>(
      std::min<std::int64_t>(settings.refresh.count() / kJitterDivisor, UINT32_MAX));
  const auto jitter =
      std::chrono::milliseconds(jitter_range == 0 ? 0 : randombytes_uniform(jitter_range));
  return settings.refresh - jitter;
}

Refresher::Clock::duration Refresher::backoff(const manifest::OnePassword& settings,
                                              unsigned failures) const {
  auto wait = settings.retry;
  for (unsigned i = 1; i < failures && wait < settings.refresh; ++i) {
    wait *= 2;
  }
  return std::min(wait, settings.refresh);
}

nlohmann::json Refresher::status() const {
  const std::lock_guard lock(mutex_);
  nlohmann::json values = nlohmann::json::array();
  const auto now = Clock::now();
  for (const auto& [reference, schedule] : schedules_) {
    nlohmann::json value = {
        {"reference", reference},
        {"secrets", schedule.secrets},
        {"fetched", schedule.fetched == 0 ? nlohmann::json(nullptr)
                                          : nlohmann::json(utc_time(schedule.fetched))},
        {"age_seconds", schedule.fetched == 0 ? nlohmann::json(nullptr)
                                              : nlohmann::json(seconds_now() - schedule.fetched)},
        {"failures", schedule.failures},
        {"next_in_seconds",
         std::max<std::int64_t>(
             0, std::chrono::duration_cast<std::chrono::seconds>(schedule.next - now).count())},
        {"error", schedule.last_error ? nlohmann::json(describe(*schedule.last_error))
                                      : nlohmann::json(nullptr)}};
    values.push_back(std::move(value));
  }
  return values;
}

std::vector<std::string> Refresher::warnings() const {
  const std::lock_guard lock(mutex_);
  std::vector<std::string> lines;
  for (const auto& [reference, schedule] : schedules_) {
    if (!schedule.last_error) {
      continue;
    }
    const std::string secrets = "secret " + names_of(schedule.secrets) + " (" + reference + ")";
    if (schedule.fetched == 0) {
      lines.push_back(secrets + ": no value from 1Password yet, opening it fails with EIO: " +
                      describe(*schedule.last_error));
    } else {
      lines.push_back(secrets + ": serving the value read " + utc_time(schedule.fetched) + " (" +
                      std::to_string((seconds_now() - schedule.fetched) / 60) +
                      " min ago); reading it again failed: " + describe(*schedule.last_error));
    }
  }
  return lines;
}

}  // namespace secretfs::fs
