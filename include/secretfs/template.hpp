// Templates: text files rendered from secrets when they are opened.
//
//   DATABASE_URL=postgres://app:{{ db/password | chomp }}@db/app
//
// A placeholder `{{ NAME }}` inserts the bytes of the secret NAME; filters after `|` change
// them, left to right: `chomp` removes one trailing "\n" or "\r\n", `base64` and `hex` encode.
// `\{{` writes a literal `{{`. Spaces inside the braces are optional.
//
// This layer knows text and bytes only: parsing a template, the size it renders to, and
// rendering it from plaintexts the caller decrypted. Rendered bytes live in SecretBytes alone.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "secretfs/manifest.hpp"
#include "secretfs/secret_bytes.hpp"

namespace secretfs::templates {

// A template is a configuration file; anything this large is the wrong file.
inline constexpr std::size_t kMaxTemplateSize = std::size_t{1} << 20;

// What a template may render to: room for a large secret encoded in hex, and still a bound on
// the locked memory one template can take.
inline constexpr std::uint64_t max_rendered_size(std::uint64_t max_secret_size) {
  constexpr std::uint64_t kTimesLargestSecret = 4;
  return max_secret_size * kTimesLargestSecret;
}

enum class Filter { chomp, base64, hex };

struct Placeholder {
  std::string text;    // as written, "{{ db/password | chomp }}", for messages
  std::string secret;  // "db/password"
  std::vector<Filter> filters;
};

// The text around the placeholders, with `\{{` already turned into `{{`: literals[0], then
// placeholders[0], literals[1], and so on. There is always one literal more than placeholders.
struct Template {
  std::vector<std::string> literals{std::string()};
  std::vector<Placeholder> placeholders;
};

enum class SyntaxError {
  not_text,        // the template has a NUL byte or is not UTF-8
  unterminated,    // `{{` without `}}` on the same line
  no_name,         // `{{ }}`, `{{ | chomp }}`
  unknown_filter,  // `{{ a | base32 }}`
};

struct SyntaxProblem {
  SyntaxError error;
  std::string message;  // "placeholder `{{ a | base32 }}`: unknown filter `base32` (...)"
};

struct Parsed {
  Template parsed;  // complete only when there are no problems
  std::vector<SyntaxProblem> problems;
};

// Splits `text` into literals and placeholders. Every problem is reported, not only the first,
// so that one run of `secretfs check` shows all of them.
Parsed parse(std::string_view text);

// Whether `bytes` can be inserted into a text file as they are: no NUL, valid UTF-8.
bool is_text(std::span<const std::uint8_t> bytes);

// What `stat` can say before anything is decrypted. `chomp` on a secret's own bytes depends on
// its last bytes, so such a size is an upper bound (nothing removed); `chomp` after `base64`
// or `hex` removes nothing and keeps the size exact.
struct Size {
  std::uint64_t bytes = 0;
  bool exact = true;
};

// The size `parsed` renders to when the secret of placeholder i has `secret_sizes[i]` bytes.
Size rendered_size(const Template& parsed, std::span<const std::uint64_t> secret_sizes);

// Why a template could not be rendered; names the placeholder and its secret, never bytes.
class RenderError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Renders `parsed` with `plaintexts[i]` for placeholder i, whole or not at all: a placeholder
// whose result is not text (a NUL, invalid UTF-8: see is_text) or a result over `max_size`
// bytes throws RenderError. Every intermediate buffer is wiped.
SecretBytes render(const Template& parsed, std::span<const SecretBytes* const> plaintexts,
                   std::uint64_t max_size);

// Checks every template of `manifest` whose text is known: its syntax, its size, and that each
// placeholder names a secret the manifest serves (not a template, not a refused secret). A
// template that fails is refused: taken out of `templates`, with one problem per fault naming
// the template and the placeholder. Each accepted template gets its `references`. `source`
// names the manifest in messages, as manifest::parse's does.
void resolve(manifest::Manifest& manifest, std::string_view source);

// Reads the text of every template given with `file` from that file; a template whose file
// cannot be read is refused. Stored generations read their own copies instead.
void read_files(manifest::Manifest& manifest, std::string_view source);

}  // namespace secretfs::templates
