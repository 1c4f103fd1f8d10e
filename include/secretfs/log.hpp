// The one logger of secretfs. Every part logs through spdlog's default logger, which this
// sets up; nothing else writes diagnostics. Secret bytes and key material are never logged.
#pragma once

#include <spdlog/spdlog.h>

namespace secretfs::log {

enum class Destination {
  standard_error,  // foreground runs and CLI commands
  syslog,          // a daemon that has detached from its terminal
};

// Installs the default logger. `verbose` lowers the level from info to debug.
enum class Verbosity { normal, verbose };
void setup(Destination destination, Verbosity verbosity = Verbosity::normal);

}  // namespace secretfs::log
