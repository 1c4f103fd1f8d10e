// What went wrong in a failed `op` run, read from what it wrote on standard error.
//
// `op` exits with status 1 for every failure and writes one line
// "[ERROR] YYYY/MM/DD HH:MM:SS <message>", so the kind of failure can only be told from the
// message's words.
#pragma once

#include <string>
#include <string_view>

#include "secretfs/onepassword.hpp"

namespace secretfs::onepassword {

// The message of the last "[ERROR] ..." line without its prefix, control characters replaced;
// else a sentence with the exit status (other lines are never repeated).
std::string error_message(std::string_view diagnostics, int exit_status);

// The kind of failure a message of `op` describes; Failure::failed when no known words are in it.
Failure classify(std::string_view message);

// error_message and classify together.
Error error_from_diagnostics(std::string_view diagnostics, int exit_status);

}  // namespace secretfs::onepassword
