// Running `op` once: a clean environment, no standard input, its output in locked memory, and
// a wall-clock limit.
#pragma once

#include <string>
#include <variant>
#include <vector>

#include "secretfs/onepassword.hpp"

namespace secretfs::onepassword {

// What one successful run printed on standard output (any bytes), or why the run failed.
using Output = std::variant<SecretBytes, Error>;

// What standard output may hold: one value, or an item's JSON (whose values each are at most
// one value's size, and which holds a few of them).
enum class Printed { value, item };

// Runs settings.op with `arguments` and the service account `token`; creates or checks
// settings.config_dir first, and refuses a program that another user could have changed
// (Failure::unusable), since it runs with the token and as root. Never throws for a failure of
// `op` itself.
Output run_op(const Settings& settings, const SecretBytes& token,
              const std::vector<std::string>& arguments, Printed printed);

}  // namespace secretfs::onepassword
