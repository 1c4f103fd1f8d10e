// The ways reading or writing an age file can fail.
//
// The classes follow the age test vectors (C2SP CCTV) so that a test can assert the exact
// class of every failure, and so that a log line can say which kind of problem a secret has.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace secretfs::age {

enum class ErrorKind {
  header,       // the header does not parse, or a stanza we understand is malformed
  hmac,         // a file key was found but the header MAC does not match
  no_match,     // no identity could unwrap any stanza
  payload,      // the payload does not authenticate, is truncated or has trailing data
  armor,        // the ASCII armor is malformed
  io,           // a file could not be read or written
  key,          // a key, identity or recipient string or file is malformed
  unsupported,  // valid input that secretfs cannot handle (ssh-rsa, encrypted ssh key, PQ)
};

// A short stable name, e.g. "header failure", as the test vectors spell them.
std::string_view to_string(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}

  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

}  // namespace secretfs::age
