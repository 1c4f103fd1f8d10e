// How a test program that cannot run here says so: see main.cpp.
#pragma once

#include <string>

namespace secretfs::test {

// meson's exit status for a skipped test.
inline constexpr int kSkipped = 77;

// Empty when the program's tests can run here; otherwise "NAME: why", printed after "SKIP ".
std::string skip_reason();

}  // namespace secretfs::test
