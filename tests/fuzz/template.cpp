// Fuzzes the template parser and renderer from text to rendered bytes. Any text may be refused
// with syntax problems; text that parses must keep the promises template.hpp makes.
//
// Promises checked: one literal more than placeholders, every placeholder named and written
// with its braces; rendering with fixed plaintexts either throws RenderError or gives exactly
// rendered_size() bytes when that size is exact, and no more when it is an upper bound.
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "secretfs/template.hpp"

namespace {

using secretfs::fuzz::require;
namespace templates = secretfs::templates;

// A secret with a trailing CRLF, one with binary bytes, and an empty one, in turn.
const std::vector<std::string>& plaintexts() {
  static const std::vector<std::string> values = {"pass\r\n", std::string("\0\xff\n", 3), ""};
  return values;
}

constexpr std::uint64_t kMaxRendered = 1 << 20;

void check_rendering(const templates::Template& parsed) {
  std::vector<secretfs::SecretBytes> values;
  std::vector<const secretfs::SecretBytes*> inputs;
  std::vector<std::uint64_t> sizes;
  values.reserve(parsed.placeholders.size());
  for (std::size_t index = 0; index < parsed.placeholders.size(); ++index) {
    const std::string& value = plaintexts()[index % plaintexts().size()];
    values.push_back(secretfs::SecretBytes::copy_of(secretfs::fuzz::as_bytes(value)));
    inputs.push_back(&values.back());
    sizes.push_back(value.size());
  }
  const templates::Size size = templates::rendered_size(parsed, sizes);
  try {
    const secretfs::SecretBytes rendered = templates::render(parsed, inputs, kMaxRendered);
    require(size.exact ? rendered.size() == size.bytes : rendered.size() <= size.bytes,
            "the rendered size is the size announced, or at most it when not exact");
  } catch (const templates::RenderError&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const templates::Parsed result = templates::parse(secretfs::fuzz::as_text(data, size));
  if (!result.problems.empty()) {
    return 0;
  }
  const templates::Template& parsed = result.parsed;
  require(parsed.literals.size() == parsed.placeholders.size() + 1,
          "there is one literal more than placeholders");
  for (const auto& placeholder : parsed.placeholders) {
    require(!placeholder.secret.empty(), "every placeholder names a secret");
    require(placeholder.text.starts_with("{{") && placeholder.text.ends_with("}}"),
            "a placeholder is written with its braces");
  }
  check_rendering(parsed);
  return 0;
}
