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

// Runs settings.op with `arguments` and the service account `token`; creates or checks
// settings.config_dir first. Never throws for a failure of `op` itself.
Output run_op(const Settings& settings, const SecretBytes& token,
              const std::vector<std::string>& arguments);

}  // namespace secretfs::onepassword
