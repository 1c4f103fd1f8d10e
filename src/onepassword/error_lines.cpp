#include "error_lines.hpp"

#include <algorithm>
#include <array>
#include <cctype>

namespace secretfs::onepassword {

namespace {

constexpr std::string_view kErrorPrefix = "[ERROR] ";
constexpr std::string_view kWhitespace = " \t\r\n";
constexpr std::string_view kTimestampShape = "dddd/dd/dd dd:dd:dd ";
constexpr std::size_t kMaxMessageSize = 1000;  // one line; more is noise in a status report

// Words of each kind of failure, lower case. Several are from third-party reports of `op`'s
// output rather than its documentation, hence the generous lists.
constexpr std::array kRateLimitWords = {std::string_view("429"),
                                        std::string_view("too many requests")};
constexpr std::array kAuthWords = {
    std::string_view("decodesacredentials"), std::string_view("invalid token"),
    std::string_view("unauthorized"),        std::string_view("401"),
    std::string_view("authentication"),      std::string_view("parsetoken")};
constexpr std::array kRevokedWords = {std::string_view("deleted"), std::string_view("expired"),
                                      std::string_view("revoked")};
constexpr std::array kAmbiguousWords = {std::string_view("more than one")};
constexpr std::array kNotFoundWords = {
    std::string_view("isn't an item"), std::string_view("isn't a vault"),
    std::string_view("isn't a field"), std::string_view("does not have a field"),
    std::string_view("not found"),     std::string_view("404")};

std::string_view trimmed(std::string_view text) {
  const auto first = text.find_first_not_of(kWhitespace);
  if (first == std::string_view::npos) {
    return {};
  }
  return text.substr(first, text.find_last_not_of(kWhitespace) - first + 1);
}

bool has_timestamp(std::string_view text) {
  if (text.size() < kTimestampShape.size()) {
    return false;
  }
  for (std::size_t i = 0; i < kTimestampShape.size(); ++i) {
    const bool digit = std::isdigit(static_cast<unsigned char>(text[i])) != 0;
    if (kTimestampShape[i] == 'd' ? !digit : text[i] != kTimestampShape[i]) {
      return false;
    }
  }
  return true;
}

std::string_view without_prefix(std::string_view line) {
  line.remove_prefix(kErrorPrefix.size());
  if (has_timestamp(line)) {
    line.remove_prefix(kTimestampShape.size());
  }
  return trimmed(line);
}

// A quote that opens a name: at the start or after a space, colon or parenthesis, so that the
// apostrophes of "isn't" and "You've" are not taken for quotes.
bool opens_quote(std::string_view text, std::size_t at) {
  return at == 0 || text[at - 1] == ' ' || text[at - 1] == ':' || text[at - 1] == '(';
}

// The message in lower case with its quoted names (vaults, items, fields, references) left
// out: an item called "db-429" must not read as a rate limit.
std::string words_of(std::string_view message) {
  std::string words;
  for (std::size_t i = 0; i < message.size(); ++i) {
    const char c = message[i];
    if ((c == '"' || c == '\'') && opens_quote(message, i)) {
      const auto close = message.find(c, i + 1);
      if (close != std::string_view::npos) {
        i = close;
        words += ' ';
        continue;
      }
    }
    words += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return words;
}

template <std::size_t N>
bool has_any(std::string_view words, const std::array<std::string_view, N>& wanted) {
  return std::any_of(wanted.begin(), wanted.end(), [&](std::string_view word) {
    return words.find(word) != std::string_view::npos;
  });
}

}  // namespace

// The message as it may reach a terminal or a log: control characters (C0, DEL, C1) and the
// bidirectional controls, which would act on whoever reads it, become '?'.
std::string printable(std::string_view message) {
  std::string text;
  for (std::size_t i = 0; i < message.size(); ++i) {
    const auto c = static_cast<unsigned char>(message[i]);
    const auto next = i + 1 < message.size() ? static_cast<unsigned char>(message[i + 1]) : 0;
    const auto third = i + 2 < message.size() ? static_cast<unsigned char>(message[i + 2]) : 0;
    if (c < 0x20 || c == 0x7f) {
      text += '?';
    } else if (c == 0xc2 && next >= 0x80 && next <= 0x9f) {
      text += '?';
      ++i;
    } else if (c == 0xe2 && ((next == 0x80 && third >= 0xaa && third <= 0xae) ||
                             (next == 0x81 && third >= 0xa6 && third <= 0xa9))) {
      text += '?';
      i += 2;
    } else {
      text += static_cast<char>(c);
    }
  }
  return text;
}

// Only `op`'s own error lines are repeated: anything else on its standard error (a crash's
// dump, say) could hold what it was handling, values included.
std::string error_message(std::string_view diagnostics, int exit_status) {
  std::string_view last_error;
  for (std::string_view rest = diagnostics; !rest.empty();) {
    const auto end = rest.find('\n');
    const std::string_view line = trimmed(rest.substr(0, end));
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 1);
    if (line.starts_with(kErrorPrefix)) {
      last_error = without_prefix(line);
    }
  }
  if (last_error.empty()) {
    return "`op` exited with status " + std::to_string(exit_status) + " without an error line";
  }
  return printable(last_error.substr(0, kMaxMessageSize));
}

Failure classify(std::string_view message) {
  const std::string words = words_of(message);
  if (has_any(words, kRateLimitWords)) {
    return Failure::rate_limited;
  }
  const bool revoked_account =
      words.find("service account") != std::string::npos && has_any(words, kRevokedWords);
  if (has_any(words, kAuthWords) || revoked_account) {
    return Failure::auth;
  }
  if (has_any(words, kAmbiguousWords)) {
    return Failure::ambiguous;
  }
  if (has_any(words, kNotFoundWords)) {
    return Failure::not_found;
  }
  return Failure::failed;
}

Error error_from_diagnostics(std::string_view diagnostics, int exit_status) {
  std::string message = error_message(diagnostics, exit_status);
  const Failure failure = classify(message);
  return {failure, std::move(message)};
}

}  // namespace secretfs::onepassword
