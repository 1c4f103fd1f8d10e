// Templates as text: the parser, what counts as text, the size before rendering and rendering.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "secretfs/template.hpp"

using secretfs::SecretBytes;
using secretfs::templates::Filter;
using secretfs::templates::parse;
using secretfs::templates::Parsed;
using secretfs::templates::RenderError;
using secretfs::templates::SyntaxError;
using secretfs::templates::Template;

namespace {

std::span<const std::uint8_t> bytes_of(std::string_view text) {
  return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

// The parse of `text`, which must have no problems.
Template parsed(std::string_view text) {
  Parsed result = parse(text);
  INFO(text);
  for (const auto& problem : result.problems) {
    INFO(problem.message);
  }
  REQUIRE(result.problems.empty());
  return std::move(result.parsed);
}

std::vector<std::string> messages(std::string_view text) {
  std::vector<std::string> found;
  for (const auto& problem : parse(text).problems) {
    found.push_back(problem.message);
  }
  return found;
}

// Renders `text` with one plaintext per placeholder, in order.
std::string rendered(std::string_view text, const std::vector<std::string>& secrets,
                     std::uint64_t max_size = 1 << 20) {
  const Template parsed_text = parsed(text);
  std::vector<SecretBytes> plaintexts;
  std::vector<const SecretBytes*> inputs;
  plaintexts.reserve(secrets.size());
  for (const std::string& secret : secrets) {
    plaintexts.push_back(SecretBytes::copy_of(bytes_of(secret)));
    inputs.push_back(&plaintexts.back());
  }
  return std::string(secretfs::templates::render(parsed_text, inputs, max_size).view());
}

secretfs::templates::Size size_of(std::string_view text, std::vector<std::uint64_t> sizes) {
  return secretfs::templates::rendered_size(parsed(text), sizes);
}

}  // namespace

TEST_CASE("a template splits into literals and placeholders, spaces optional", "[template]") {
  const Template parsed_text = parsed("A={{a}}, B={{ b/c }}, C={{\t d |chomp}}\n");
  CHECK(parsed_text.literals == std::vector<std::string>{"A=", ", B=", ", C=", "\n"});
  REQUIRE(parsed_text.placeholders.size() == 3);
  CHECK(parsed_text.placeholders[0].secret == "a");
  CHECK(parsed_text.placeholders[0].text == "{{a}}");
  CHECK(parsed_text.placeholders[0].filters.empty());
  CHECK(parsed_text.placeholders[1].secret == "b/c");
  CHECK(parsed_text.placeholders[1].text == "{{ b/c }}");
  CHECK(parsed_text.placeholders[2].secret == "d");
  CHECK(parsed_text.placeholders[2].filters == std::vector<Filter>{Filter::chomp});

  const Template plain = parsed("no placeholder } { }} here");
  CHECK(plain.literals == std::vector<std::string>{"no placeholder } { }} here"});
  CHECK(plain.placeholders.empty());
  CHECK(parsed("").literals == std::vector<std::string>{""});
}

TEST_CASE("filters chain left to right", "[template]") {
  const Template parsed_text = parsed("{{ s | chomp | base64|hex }}");
  REQUIRE(parsed_text.placeholders.size() == 1);
  CHECK(parsed_text.placeholders[0].filters ==
        std::vector<Filter>{Filter::chomp, Filter::base64, Filter::hex});
}

TEST_CASE("\\{{ is a literal {{, other backslashes stay as they are", "[template]") {
  const Template escaped = parsed("\\{{ not a placeholder }} and {{ s }}");
  CHECK(escaped.literals == std::vector<std::string>{"{{ not a placeholder }} and ", ""});
  REQUIRE(escaped.placeholders.size() == 1);
  CHECK(escaped.placeholders[0].secret == "s");

  CHECK(parsed("a\\nb \\}} \\").literals == std::vector<std::string>{"a\\nb \\}} \\"});
  CHECK(parsed("x\\{{").literals == std::vector<std::string>{"x{{"});
}

TEST_CASE("an unterminated placeholder is named up to the end of its line", "[template]") {
  CHECK(messages("a {{ db/password\nb = {{ c }}\n") ==
        std::vector<std::string>{"placeholder `{{ db/password` has no `}}` on its line"});
  CHECK(messages("{{ x | chomp") ==
        std::vector<std::string>{"placeholder `{{ x | chomp` has no `}}` on its line"});
  CHECK(parse("{{ x").problems.at(0).error == SyntaxError::unterminated);
  // A placeholder does not reach over a line end to a `}}` further down.
  CHECK(messages("{{ a\n}}") ==
        std::vector<std::string>{"placeholder `{{ a` has no `}}` on its line"});

  const std::string long_name(100, 'n');
  CHECK(messages("{{ " + long_name) ==
        std::vector<std::string>{"placeholder `{{ " + long_name.substr(0, 57) +
                                 "...` has no `}}` on its line"});
}

TEST_CASE("an unknown or missing filter is named with its placeholder", "[template]") {
  CHECK(messages("{{ db | base32 }}") ==
        std::vector<std::string>{"placeholder `{{ db | base32 }}`: unknown filter `base32` "
                                 "(expected chomp, base64 or hex)"});
  CHECK(messages("{{ db | }}") ==
        std::vector<std::string>{"placeholder `{{ db | }}`: a `|` with no filter after it "
                                 "(expected chomp, base64 or hex)"});
  CHECK(parse("{{ db | Chomp }}").problems.at(0).error == SyntaxError::unknown_filter);
}

TEST_CASE("a placeholder without a name is refused", "[template]") {
  CHECK(messages("{{ }}") == std::vector<std::string>{"placeholder `{{ }}` names no secret"});
  CHECK(messages("{{| chomp}}") ==
        std::vector<std::string>{"placeholder `{{| chomp}}` names no secret"});
  CHECK(parse("{{}}").problems.at(0).error == SyntaxError::no_name);
}

TEST_CASE("every problem of a template is reported, in order", "[template]") {
  CHECK(messages("{{ }} {{ a | b }}\n{{ c") ==
        std::vector<std::string>{
            "placeholder `{{ }}` names no secret",
            "placeholder `{{ a | b }}`: unknown filter `b` (expected chomp, base64 or hex)",
            "placeholder `{{ c` has no `}}` on its line"});
}

TEST_CASE("a template that is not UTF-8 text is refused", "[template]") {
  for (const std::string& text :
       {std::string("a\0b", 3), std::string("caf\xe9"), std::string("\xed\xa0\x80")}) {
    const Parsed result = parse(text);
    REQUIRE(result.problems.size() == 1);
    CHECK(result.problems[0].error == SyntaxError::not_text);
    CHECK(result.problems[0].message == "the text has a NUL byte or is not UTF-8");
  }
}

TEST_CASE("is_text takes UTF-8 without NUL and nothing else", "[template]") {
  using secretfs::templates::is_text;
  for (const std::string good : {"", "plain ascii\n\t\r", "caf\xc3\xa9", "\xe2\x82\xac 5",
                                 "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf", "\xef\xbb\xbf"}) {
    INFO(good);
    CHECK(is_text(bytes_of(good)));
  }
  for (const std::string& bad :
       {std::string("\0", 1), std::string("a\0", 2), std::string("\x80"), std::string("\xc0\x80"),
        std::string("\xc1\xbf"), std::string("\xe0\x80\xaf"), std::string("\xed\xa0\x80"),
        std::string("\xf4\x90\x80\x80"), std::string("\xf8\x88\x80\x80\x80"),
        std::string("\xe2\x82"), std::string("\xc3"), std::string("\xff")}) {
    INFO(bad.size());
    CHECK_FALSE(is_text(bytes_of(bad)));
  }
}

TEST_CASE("rendering inserts each secret through its filters, byte for byte", "[template]") {
  CHECK(rendered("A={{a}};B={{ b | chomp }};C={{c|chomp}};D={{d|chomp}}\n",
                 {"x\n", "y\n", "z\r\n", "no newline"}) == "A=x\n;B=y;C=z;D=no newline\n");
  // One trailing newline goes, no more; a lone carriage return stays.
  CHECK(rendered("[{{a|chomp}}][{{b|chomp}}][{{c|chomp}}]", {"v\n\n", "v\r", "\n"}) ==
        "[v\n][v\r][]");
  CHECK(rendered("[{{a|chomp|chomp}}]", {"v\r\n\n"}) == "[v]");
  CHECK(rendered("{{ s }}{{ s }}", {"ab", "ab"}) == "abab");
  CHECK(rendered("", {}) == "");
  CHECK(rendered("\\{{ kept }} {{a}}", {"1"}) == "{{ kept }} 1");
}

TEST_CASE("base64 and hex encode, chomp after them removes nothing", "[template]") {
  CHECK(rendered("{{a|base64}}", {"hunter2"}) == "aHVudGVyMg==");
  CHECK(rendered("{{a|base64}}|{{b|base64}}|{{c|base64}}", {"", "f", "fo"}) == "|Zg==|Zm8=");
  CHECK(rendered("{{a|base64}}", {"\xfb\xff"}) == "+/8=");
  CHECK(rendered("{{a|hex}}", {std::string("a\0\xff\n", 4)}) == "6100ff0a");
  CHECK(rendered("{{a|chomp|base64}}", {"hunter2\n"}) == "aHVudGVyMg==");
  CHECK(rendered("{{a|base64|chomp}}", {"hunter2\n"}) == "aHVudGVyMgo=");
  CHECK(rendered("{{a|hex|base64}}", {"A"}) == "NDE=");
}

TEST_CASE("a secret that is not text is inserted only encoded", "[template]") {
  const std::string binary("a\0b", 3);
  CHECK_THROWS_MATCHES(rendered("x={{ bin }}", {binary}), RenderError,
                       Catch::Message("placeholder `{{ bin }}`: secret `bin` has a NUL byte or is "
                                      "not UTF-8, so it cannot be inserted as it is; insert it "
                                      "with `| base64` or `| hex`"));
  CHECK_THROWS_AS(rendered("{{ latin | chomp }}", {"caf\xe9\n"}), RenderError);
  CHECK(rendered("{{ bin | hex }}", {binary}) == "610062");
  CHECK(rendered("{{ bin | base64 }}", {binary}) == "YQBi");
}

TEST_CASE("rendering stops at the size limit", "[template]") {
  CHECK(rendered("1234{{a}}", {"567890"}, 10) == "1234567890");
  CHECK_THROWS_MATCHES(rendered("1234{{a}}", {"5678901"}, 10), RenderError,
                       Catch::Message("the rendered text would be over the limit of 10 bytes"));
  CHECK_THROWS_AS(rendered("12345678901", {}, 10), RenderError);
  CHECK_THROWS_AS(rendered("{{a|hex}}", {"123456"}, 10), RenderError);
}

TEST_CASE("the size is exact unless chomp meets a secret's own bytes", "[template]") {
  const auto raw = size_of("ab{{s}}c\n", {5});
  CHECK(raw.bytes == 9);
  CHECK(raw.exact);
  for (const auto& [secret, encoded] : std::vector<std::pair<std::uint64_t, std::uint64_t>>{
           {0, 0}, {1, 4}, {2, 4}, {3, 4}, {4, 8}}) {
    CHECK(size_of("{{s|base64}}", {secret}).bytes == encoded);
  }
  CHECK(size_of("{{s|hex}}", {7}).bytes == 14);
  CHECK(size_of("{{s|hex|base64}}", {3}).bytes == 8);

  const auto chomped = size_of("{{s|chomp}}!", {8});
  CHECK(chomped.bytes == 9);  // an upper bound: nothing chomped
  CHECK_FALSE(chomped.exact);
  const auto chomp_then_encode = size_of("{{s|chomp|hex}}", {8});
  CHECK(chomp_then_encode.bytes == 16);
  CHECK_FALSE(chomp_then_encode.exact);
  const auto encode_then_chomp = size_of("{{s|base64|chomp}}", {8});
  CHECK(encode_then_chomp.bytes == 12);
  CHECK(encode_then_chomp.exact);
  CHECK_FALSE(size_of("{{a}}{{b|chomp}}", {1, 1}).exact);
}

TEST_CASE("an exact size is the rendered size", "[template]") {
  const std::string text = "K={{a}} {{b|base64}} {{c|hex}} {{d|base64|chomp}}\n";
  const std::vector<std::string> secrets = {"one\n", "two2", "", "four\n"};
  std::vector<std::uint64_t> sizes;
  for (const auto& secret : secrets) {
    sizes.push_back(secret.size());
  }
  const auto size = size_of(text, sizes);
  REQUIRE(size.exact);
  CHECK(size.bytes == rendered(text, secrets).size());
}
