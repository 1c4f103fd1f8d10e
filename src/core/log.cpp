#include "secretfs/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/syslog_sink.h>

#include <syslog.h>

#include <memory>

namespace secretfs::log {

void setup(Destination destination, Verbosity verbosity) {
  // Setting up again (a daemon moving from stderr to syslog) replaces the earlier logger.
  spdlog::drop_all();
  std::shared_ptr<spdlog::logger> logger;
  if (destination == Destination::syslog) {
    logger = spdlog::syslog_logger_mt("secretfs-syslog", "secretfs", LOG_PID, LOG_DAEMON);
    // syslog stamps time and program itself.
    logger->set_pattern("%v");
  } else {
    logger = spdlog::stderr_color_mt("secretfs-stderr");
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  }
  logger->set_level(verbosity == Verbosity::verbose ? spdlog::level::debug : spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace secretfs::log
