#include "secretfs/age/error.hpp"

namespace secretfs::age {

std::string_view to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::header:
      return "header failure";
    case ErrorKind::hmac:
      return "HMAC failure";
    case ErrorKind::no_match:
      return "no match";
    case ErrorKind::payload:
      return "payload failure";
    case ErrorKind::armor:
      return "armor failure";
    case ErrorKind::io:
      return "I/O error";
    case ErrorKind::key:
      return "invalid key";
    case ErrorKind::unsupported:
      return "unsupported";
  }
  return "unknown error";
}

}  // namespace secretfs::age
