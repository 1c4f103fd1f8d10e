// Feeds saved inputs (the minimized inputs of past crashes, and the seeds) to a fuzz target's
// entry point, so that every crash found once stays fixed in the ordinary test suite, built by
// any compiler. Each argument is a folder (every regular file in it, in name order) or a
// file; an absent folder holds no inputs yet. A refused input must end in the target's clean
// error: a crash, a sanitizer report or an escaping exception fails the test.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <vector>

#include "fuzz_support.hpp"

namespace {

namespace fs = std::filesystem;

std::vector<fs::path> inputs_in(const fs::path& place) {
  if (fs::is_regular_file(place)) {
    return {place};
  }
  std::vector<fs::path> inputs;
  if (fs::is_directory(place)) {
    for (const auto& entry : fs::directory_iterator(place)) {
      if (entry.is_regular_file()) {
        inputs.push_back(entry.path());
      }
    }
  }
  std::sort(inputs.begin(), inputs.end());
  return inputs;
}

std::vector<std::uint8_t> read_input(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t replayed = 0;
  for (int i = 1; i < argc; ++i) {
    for (const auto& path : inputs_in(argv[i])) {
      // Named before it runs, so that the log of a crash ends with the input that caused it.
      std::cout << "replaying " << path.string() << std::endl;
      const auto input = read_input(path);
      LLVMFuzzerTestOneInput(input.data(), input.size());
      ++replayed;
    }
  }
  std::cout << "replayed " << replayed << " inputs, none crashed" << std::endl;
  return 0;
}
