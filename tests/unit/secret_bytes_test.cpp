#include "secretfs/secret_bytes.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <csignal>
#include <cstddef>
#include <string>
#include <vector>

using secretfs::SecretBytes;

TEST_CASE("SecretBytes copies bytes into its own memory") {
  std::vector<std::uint8_t> source = {1, 2, 3, 4};
  const auto copy = SecretBytes::copy_of(source);
  source[0] = 9;
  REQUIRE(copy.size() == 4);
  CHECK(copy.data()[0] == 1);
  CHECK(copy.view() == std::string("\x01\x02\x03\x04", 4));
}

TEST_CASE("SecretBytes of size zero is empty but has memory") {
  const SecretBytes empty(0);
  CHECK(empty.empty());
  CHECK(empty.data() != nullptr);
  CHECK(SecretBytes().empty());
}

TEST_CASE("SecretBytes moves leave the source empty") {
  auto first = SecretBytes::copy_of(std::vector<std::uint8_t>{7, 8});
  const auto* memory = first.data();
  SecretBytes second(std::move(first));
  CHECK(first.empty());
  CHECK(first.data() == nullptr);
  CHECK(second.data() == memory);

  SecretBytes third;
  third = std::move(second);
  CHECK(second.empty());
  CHECK(third.size() == 2);
  CHECK(third.data()[1] == 8);
}

TEST_CASE("SecretBytes::shrink wipes the tail and never grows") {
  auto bytes = SecretBytes::copy_of(std::vector<std::uint8_t>{1, 2, 3, 4});
  bytes.shrink(2);
  CHECK(bytes.size() == 2);
  CHECK(bytes.data()[2] == 0);
  CHECK(bytes.data()[3] == 0);
  bytes.shrink(10);
  CHECK(bytes.size() == 2);
}

namespace {

constexpr std::uint8_t kMarker = 0xA5;

// Writes one byte past the end of a fresh `size`-byte buffer in a child process, after
// `warm_ups` buffers of the same size were released (so that the pool hands one back), and
// returns the signal that ended the child, or 0 when it survived.
int signal_of_overrun(std::size_t size, int warm_ups) {
  const pid_t child = ::fork();
  if (child == 0) {
    // The test framework's own handler would report the fault as a failure of this child.
    std::signal(SIGSEGV, SIG_DFL);
    for (int i = 0; i < warm_ups; ++i) {
      SecretBytes released(size);
    }
    SecretBytes buffer(size);
    volatile std::uint8_t* past_end = buffer.data() + buffer.size();
    *past_end = kMarker;
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

}  // namespace

TEST_CASE("a released small buffer is wiped before it is handed out again") {
  constexpr std::size_t kSize = 100;
  const std::uint8_t* address = nullptr;
  {
    SecretBytes first(kSize);
    std::fill(first.data(), first.data() + first.size(), kMarker);
    address = first.data();
  }
  const SecretBytes second(kSize);
  // The pool hands back the block just released, and nothing of it survives.
  REQUIRE(second.data() == address);
  CHECK(std::all_of(second.data(), second.data() + second.size(),
                    [](std::uint8_t byte) { return byte == 0; }));
}

TEST_CASE("every buffer ends at a guard page, pooled or not") {
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer keeps SIGSEGV to itself and reports the fault instead of letting the child
  // die of it; the plain build checks the guard pages.
  SUCCEED("checked in the build without AddressSanitizer");
  return;
#endif
  CHECK(signal_of_overrun(1, 0) == SIGSEGV);
  CHECK(signal_of_overrun(100, 3) == SIGSEGV);
  CHECK(signal_of_overrun(4080, 1) == SIGSEGV);
  CHECK(signal_of_overrun(100000, 1) == SIGSEGV);
}
