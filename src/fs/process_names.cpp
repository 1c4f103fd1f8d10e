#include "fs/process_names.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>

namespace secretfs::fs {

namespace {

constexpr std::size_t kNameBuffer = 64;  // comm holds at most 16 bytes

}  // namespace

std::string ProcessNames::of(pid_t pid) {
  const std::lock_guard<std::mutex> hold(mutex_);
  ++uses_;
  const auto known =
      std::find_if(callers_.begin(), callers_.end(), [&](const Caller& c) { return c.pid == pid; });
  if (known != callers_.end()) {
    std::string name = read_name(known->comm.get());
    if (!name.empty()) {
      known->last_use = uses_;
      return name;
    }
    // The process it was opened for has gone; the pid may name another one by now.
    callers_.erase(known);
  }

  const std::string path = "/proc/" + std::to_string(pid) + "/comm";
  UniqueFd comm(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (comm.get() < 0) {
    return {};
  }
  std::string name = read_name(comm.get());
  if (!name.empty()) {
    keep(pid, std::move(comm));
  }
  return name;
}

std::size_t ProcessNames::kept() const {
  const std::lock_guard<std::mutex> hold(mutex_);
  return callers_.size();
}

std::string ProcessNames::read_name(int comm) {
  std::array<char, kNameBuffer> name{};
  const ssize_t got = ::pread(comm, name.data(), name.size(), 0);
  if (got <= 0) {
    return {};
  }
  std::string result(name.data(), static_cast<std::size_t>(got));
  if (result.back() == '\n') {
    result.pop_back();
  }
  return result;
}

// Keeps `comm` in place of the caller used longest ago once kKept are kept.
void ProcessNames::keep(pid_t pid, UniqueFd comm) {
  if (callers_.size() < kKept) {
    callers_.push_back({pid, std::move(comm), uses_});
    return;
  }
  const auto oldest =
      std::min_element(callers_.begin(), callers_.end(),
                       [](const Caller& a, const Caller& b) { return a.last_use < b.last_use; });
  *oldest = {pid, std::move(comm), uses_};
}

}  // namespace secretfs::fs
