// A template's text split into literals and placeholders. The grammar is small on purpose:
// `{{`, a secret's name, `| filter` any number of times, `}}`, all on one line; `\{{` is a
// literal `{{`; everything else is literal text, a lone `}}` and other backslashes included.
#include <algorithm>
#include <array>

#include "manifest/names.hpp"
#include "secretfs/template.hpp"

namespace secretfs::templates {

namespace {

constexpr std::string_view kOpen = "{{";
constexpr std::string_view kClose = "}}";
constexpr char kEscape = '\\';
constexpr char kFilterSeparator = '|';
constexpr std::string_view kBlanks = " \t";
// An unterminated placeholder is quoted up to the end of its line, but no further than this.
constexpr std::size_t kMaxQuoted = 60;

struct FilterName {
  std::string_view name;
  Filter filter;
};
constexpr std::array kFilterNames = {
    FilterName{"chomp", Filter::chomp},
    FilterName{"base64", Filter::base64},
    FilterName{"hex", Filter::hex},
};
constexpr std::string_view kExpectedFilters = "expected chomp, base64 or hex";

std::string_view trimmed(std::string_view text) {
  const auto first = text.find_first_not_of(kBlanks);
  if (first == std::string_view::npos) {
    return {};
  }
  return text.substr(first, text.find_last_not_of(kBlanks) + 1 - first);
}

std::string in_backticks(std::string_view text) {
  return "`" + manifest::printable_name(text) + "`";
}

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Parsed parse() && {
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(text_.data());
    if (!is_text({bytes, text_.size()})) {
      problem(SyntaxError::not_text, "the text has a NUL byte or is not UTF-8");
      return std::move(parsed_);
    }
    while (position_ < text_.size()) {
      const auto open = text_.find(kOpen, position_);
      if (open == std::string_view::npos) {
        literal() += text_.substr(position_);
        break;
      }
      if (open > position_ && text_[open - 1] == kEscape) {
        literal() += text_.substr(position_, open - 1 - position_);
        literal() += kOpen;
        position_ = open + kOpen.size();
        continue;
      }
      literal() += text_.substr(position_, open - position_);
      read_placeholder(open);
    }
    return std::move(parsed_);
  }

 private:
  std::string& literal() { return parsed_.parsed.literals.back(); }

  void problem(SyntaxError error, std::string message) {
    parsed_.problems.push_back({error, std::move(message)});
  }

  // A placeholder ends on its own line: a `{{` whose `}}` is missing would otherwise swallow
  // the lines after it and report a confusing name.
  void read_placeholder(std::size_t open) {
    const auto close = text_.find(kClose, open + kOpen.size());
    const auto line_end = text_.find('\n', open);
    if (close == std::string_view::npos ||
        (line_end != std::string_view::npos && line_end < close)) {
      std::string_view rest = text_.substr(
          open, line_end == std::string_view::npos ? std::string_view::npos : line_end - open);
      std::string shown(rest.substr(0, kMaxQuoted));
      if (rest.size() > kMaxQuoted) {
        shown += "...";
      }
      problem(SyntaxError::unterminated,
              "placeholder " + in_backticks(shown) + " has no `}}` on its line");
      position_ = line_end == std::string_view::npos ? text_.size() : line_end;
      return;
    }
    const auto end = close + kClose.size();
    Placeholder placeholder;
    placeholder.text = std::string(text_.substr(open, end - open));
    read_inside(text_.substr(open + kOpen.size(), close - open - kOpen.size()), placeholder);
    parsed_.parsed.placeholders.push_back(std::move(placeholder));
    parsed_.parsed.literals.emplace_back();
    position_ = end;
  }

  // "NAME | filter | filter", blanks around each part optional.
  void read_inside(std::string_view inside, Placeholder& placeholder) {
    const auto separator = inside.find(kFilterSeparator);
    placeholder.secret = std::string(trimmed(inside.substr(0, separator)));
    if (placeholder.secret.empty()) {
      problem(SyntaxError::no_name,
              "placeholder " + in_backticks(placeholder.text) + " names no secret");
    }
    if (separator == std::string_view::npos) {
      return;
    }
    std::string_view filters = inside.substr(separator + 1);
    while (true) {
      const auto next = filters.find(kFilterSeparator);
      read_filter(trimmed(filters.substr(0, next)), placeholder);
      if (next == std::string_view::npos) {
        return;
      }
      filters.remove_prefix(next + 1);
    }
  }

  void read_filter(std::string_view name, Placeholder& placeholder) {
    const auto found = std::find_if(kFilterNames.begin(), kFilterNames.end(),
                                    [&](const FilterName& known) { return known.name == name; });
    if (found != kFilterNames.end()) {
      placeholder.filters.push_back(found->filter);
      return;
    }
    const std::string what =
        name.empty() ? "a `|` with no filter after it" : "unknown filter " + in_backticks(name);
    problem(SyntaxError::unknown_filter, "placeholder " + in_backticks(placeholder.text) + ": " +
                                             what + " (" + std::string(kExpectedFilters) + ")");
  }

  std::string_view text_;
  std::size_t position_ = 0;
  Parsed parsed_;
};

}  // namespace

Parsed parse(std::string_view text) {
  return Parser(text).parse();
}

}  // namespace secretfs::templates
