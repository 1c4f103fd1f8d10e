// Work on many independent secrets at once: checking a file is mostly the X25519 unwrap, which
// spreads over every CPU.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <thread>
#include <vector>

namespace secretfs::fs {

// Below this many items one thread does them all: a thread costs more than it saves.
inline constexpr std::size_t kItemsPerHelper = 64;
inline constexpr unsigned kMostHelpers = 7;

// Calls work(index) for every index below `count`, on the calling thread and one helper per
// further CPU. `work` must not throw, and must be safe to call from several threads at once.
template <typename Work>
void for_each_index(std::size_t count, const Work& work) {
  const unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
  const std::size_t helpers =
      std::min<std::size_t>({cpus - 1, kMostHelpers, count / kItemsPerHelper});
  std::atomic<std::size_t> next{0};
  const auto take_turns = [&] {
    for (std::size_t index = next++; index < count; index = next++) {
      work(index);
    }
  };
  std::vector<std::jthread> threads;
  threads.reserve(helpers);
  for (std::size_t i = 0; i < helpers; ++i) {
    threads.emplace_back(take_turns);
  }
  take_turns();
}

}  // namespace secretfs::fs
