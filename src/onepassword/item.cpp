#include "item.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <functional>
#include <span>
#include <string_view>

namespace secretfs::onepassword {

namespace {

// An item nests a few levels (item, fields, field, section); anything far deeper is not one.
constexpr int kMaxDepth = 32;

class NotAnItem {
 public:
  NotAnItem(std::string reason, std::size_t offset) : reason_(std::move(reason)), offset_(offset) {}
  std::string describe() const { return reason_ + " at byte " + std::to_string(offset_); }

 private:
  std::string reason_;
  std::size_t offset_;
};

// Reads JSON text (RFC 8259) from locked memory. Strings are decoded into SecretBytes; numbers
// and literals are checked and skipped; objects and arrays are walked with a callback per
// member or element, which must consume it.
class JsonReader {
 public:
  explicit JsonReader(std::span<const std::uint8_t> text) : text_(text) {}

  using Member = std::function<void(const SecretBytes& key, JsonReader& reader, int depth)>;
  using Element = std::function<void(JsonReader& reader, int depth)>;

  void object(int depth, const Member& member) {
    enter(depth);
    expect('{');
    if (take('}')) {
      return;
    }
    do {
      space();
      if (peek() != '"') {
        fail("expected a member name");
      }
      const SecretBytes key = string();
      expect(':');
      member(key, *this, depth + 1);
    } while (take(','));
    expect('}');
  }

  void array(int depth, const Element& element) {
    enter(depth);
    expect('[');
    if (take(']')) {
      return;
    }
    do {
      element(*this, depth + 1);
    } while (take(','));
    expect(']');
  }

  SecretBytes string() {
    space();
    expect_here('"');
    // The decoded string is never longer than its text, so one buffer of that size suffices.
    const std::size_t start = position_;
    std::size_t end = start;
    while (end < text_.size() && text_[end] != '"') {
      end += text_[end] == '\\' ? 2 : 1;
    }
    SecretBytes decoded(std::min(end, text_.size()) - start);
    std::size_t size = 0;
    while (true) {
      const std::uint8_t c = next();
      if (c == '"') {
        break;
      }
      if (c < 0x20) {
        fail("a control character inside a string");
      }
      if (c != '\\') {
        decoded.data()[size++] = c;
        continue;
      }
      size += escape(decoded.data() + size);
    }
    decoded.shrink(size);
    return decoded;
  }

  // Any value, checked and forgotten.
  void skip(int depth) {
    space();
    switch (peek()) {
      case '{':
        return object(depth, [](const SecretBytes&, JsonReader& reader, int inner) {
          reader.skip(inner);
        });
      case '[':
        return array(depth, [](JsonReader& reader, int inner) { reader.skip(inner); });
      case '"':
        string();
        return;
      case 't':
        return literal("true");
      case 'f':
        return literal("false");
      case 'n':
        return literal("null");
      default:
        return number();
    }
  }

  bool at_string() {
    space();
    return peek() == '"';
  }

  bool at_object() {
    space();
    return peek() == '{';
  }

  void finish() {
    space();
    if (position_ != text_.size()) {
      fail("text after the item");
    }
  }

 private:
  [[noreturn]] void fail(const char* reason) const { throw NotAnItem(reason, position_); }

  void enter(int depth) const {
    if (depth > kMaxDepth) {
      fail("nested too deeply");
    }
  }

  void space() {
    while (position_ < text_.size() && (text_[position_] == ' ' || text_[position_] == '\t' ||
                                        text_[position_] == '\n' || text_[position_] == '\r')) {
      ++position_;
    }
  }

  std::uint8_t peek() const { return position_ < text_.size() ? text_[position_] : 0; }

  std::uint8_t next() {
    if (position_ >= text_.size()) {
      fail("unexpected end");
    }
    return text_[position_++];
  }

  bool take(std::uint8_t wanted) {
    space();
    if (peek() == wanted) {
      ++position_;
      return true;
    }
    return false;
  }

  void expect(std::uint8_t wanted) {
    space();
    expect_here(wanted);
  }

  void expect_here(std::uint8_t wanted) {
    if (next() != wanted) {
      --position_;
      fail(wanted == '"' ? "expected a string" : "unexpected character");
    }
  }

  void literal(std::string_view word) {
    for (const char c : word) {
      if (next() != static_cast<std::uint8_t>(c)) {
        fail("unexpected character");
      }
    }
  }

  void digits() {
    if (!std::isdigit(peek())) {
      fail("expected a digit");
    }
    while (std::isdigit(peek())) {
      ++position_;
    }
  }

  void number() {
    if (peek() == '-') {
      ++position_;
    }
    if (peek() == '0') {
      ++position_;
    } else {
      digits();
    }
    if (peek() == '.') {
      ++position_;
      digits();
    }
    if (peek() == 'e' || peek() == 'E') {
      ++position_;
      if (peek() == '+' || peek() == '-') {
        ++position_;
      }
      digits();
    }
  }

  std::uint32_t hex4() {
    std::uint32_t value = 0;
    for (int i = 0; i < 4; ++i) {
      const std::uint8_t c = next();
      value <<= 4;
      if (c >= '0' && c <= '9') {
        value |= c - '0';
      } else if (c >= 'a' && c <= 'f') {
        value |= c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        value |= c - 'A' + 10;
      } else {
        fail("a bad \\u escape");
      }
    }
    return value;
  }

  // Decodes the escape after a backslash into `out`; returns how many bytes it wrote. A \u
  // escape writes at most 4 bytes of UTF-8 for its 6 (or 12) bytes of text.
  std::size_t escape(std::uint8_t* out) {
    const std::uint8_t c = next();
    switch (c) {
      case '"':
      case '\\':
      case '/':
        *out = c;
        return 1;
      case 'b':
        *out = '\b';
        return 1;
      case 'f':
        *out = '\f';
        return 1;
      case 'n':
        *out = '\n';
        return 1;
      case 'r':
        *out = '\r';
        return 1;
      case 't':
        *out = '\t';
        return 1;
      case 'u':
        return utf8(code_point(), out);
      default:
        fail("a bad escape");
    }
  }

  // A code point from \uXXXX, or from a surrogate pair \uD8xx\uDCxx.
  std::uint32_t code_point() {
    const std::uint32_t first = hex4();
    if (first >= 0xDC00 && first <= 0xDFFF) {
      fail("a lone low surrogate");
    }
    if (first < 0xD800 || first > 0xDBFF) {
      return first;
    }
    if (next() != '\\' || next() != 'u') {
      fail("a lone high surrogate");
    }
    const std::uint32_t second = hex4();
    if (second < 0xDC00 || second > 0xDFFF) {
      fail("a lone high surrogate");
    }
    return 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
  }

  static std::size_t utf8(std::uint32_t point, std::uint8_t* out) {
    if (point < 0x80) {
      out[0] = static_cast<std::uint8_t>(point);
      return 1;
    }
    if (point < 0x800) {
      out[0] = static_cast<std::uint8_t>(0xC0 | (point >> 6));
      out[1] = static_cast<std::uint8_t>(0x80 | (point & 0x3F));
      return 2;
    }
    if (point < 0x10000) {
      out[0] = static_cast<std::uint8_t>(0xE0 | (point >> 12));
      out[1] = static_cast<std::uint8_t>(0x80 | ((point >> 6) & 0x3F));
      out[2] = static_cast<std::uint8_t>(0x80 | (point & 0x3F));
      return 3;
    }
    out[0] = static_cast<std::uint8_t>(0xF0 | (point >> 18));
    out[1] = static_cast<std::uint8_t>(0x80 | ((point >> 12) & 0x3F));
    out[2] = static_cast<std::uint8_t>(0x80 | ((point >> 6) & 0x3F));
    out[3] = static_cast<std::uint8_t>(0x80 | (point & 0x3F));
    return 4;
  }

  std::span<const std::uint8_t> text_;
  std::size_t position_ = 0;
};

bool is(const SecretBytes& key, std::string_view name) {
  return key.view() == name;
}

// A string member kept, or any other value skipped (an item's id may be missing or odd). A
// key given twice counts once, with its last value, as JSON readers commonly take it.
void keep_string(JsonReader& reader, int depth, SecretBytes& into) {
  if (reader.at_string()) {
    into = reader.string();
  } else {
    into = SecretBytes();
    reader.skip(depth);
  }
}

void read_section(JsonReader& reader, int depth, ItemField& field) {
  field.section_id = SecretBytes();
  field.section_label = SecretBytes();
  if (!reader.at_object()) {
    return reader.skip(depth);
  }
  reader.object(depth, [&](const SecretBytes& key, JsonReader& inner, int level) {
    if (is(key, "id")) {
      keep_string(inner, level, field.section_id);
    } else if (is(key, "label")) {
      keep_string(inner, level, field.section_label);
    } else {
      inner.skip(level);
    }
  });
}

ItemField read_field(JsonReader& reader, int depth) {
  ItemField field;
  reader.object(depth, [&](const SecretBytes& key, JsonReader& inner, int level) {
    if (is(key, "id")) {
      keep_string(inner, level, field.id);
    } else if (is(key, "label")) {
      keep_string(inner, level, field.label);
    } else if (is(key, "value")) {
      field.value_is_text = inner.at_string();
      if (field.value_is_text) {
        field.value = inner.string();
      } else {
        field.value = SecretBytes();
        inner.skip(level);
      }
    } else if (is(key, "section")) {
      read_section(inner, level, field);
    } else {
      inner.skip(level);
    }
  });
  return field;
}

ItemFile read_file(JsonReader& reader, int depth) {
  ItemFile file;
  reader.object(depth, [&](const SecretBytes& key, JsonReader& inner, int level) {
    if (is(key, "id")) {
      keep_string(inner, level, file.id);
    } else if (is(key, "name")) {
      keep_string(inner, level, file.name);
    } else {
      inner.skip(level);
    }
  });
  return file;
}

Item read_item(JsonReader& reader) {
  Item item;
  reader.object(0, [&](const SecretBytes& key, JsonReader& inner, int depth) {
    if (is(key, "fields")) {
      item.fields.clear();
      inner.array(depth, [&](JsonReader& element, int level) {
        item.fields.push_back(read_field(element, level));
      });
    } else if (is(key, "files")) {
      item.files.clear();
      inner.array(depth, [&](JsonReader& element, int level) {
        item.files.push_back(read_file(element, level));
      });
    } else {
      inner.skip(depth);
    }
  });
  reader.finish();
  return item;
}

bool same_name(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// Fields and files are named by label (files: name) or by ID, whichever the reference uses.
bool named(const SecretBytes& label, const SecretBytes& id, std::string_view wanted) {
  return same_name(label.view(), wanted) || same_name(id.view(), wanted);
}

std::string field_name(const Reference& reference) {
  std::string name = "`" + reference.field + "`";
  if (!reference.section.empty()) {
    name += " in section `" + reference.section + "`";
  }
  return name;
}

std::string item_name(const Reference& reference) {
  return "item `" + reference.vault + "/" + reference.item + "`";
}

}  // namespace

std::variant<Item, std::string> parse_item(const SecretBytes& output) {
  try {
    JsonReader reader(output.span());
    if (!reader.at_object()) {
      return std::string("not a JSON object");
    }
    return read_item(reader);
  } catch (const NotAnItem& error) {
    return error.describe();
  }
}

std::variant<SecretBytes, Error, Attachment> pick_field(const Item& item,
                                                        const Reference& reference) {
  std::vector<const ItemField*> fields;
  for (const ItemField& field : item.fields) {
    if (named(field.label, field.id, reference.field) &&
        (reference.section.empty() ||
         named(field.section_label, field.section_id, reference.section))) {
      fields.push_back(&field);
    }
  }
  if (fields.size() > 1) {
    return Error{Failure::ambiguous, item_name(reference) + " has more than one field " +
                                         field_name(reference) + "; name it by its ID"};
  }
  if (fields.size() == 1) {
    const ItemField& field = *fields.front();
    if (!field.value_is_text) {
      return Error{Failure::failed, item_name(reference) + ": field " + field_name(reference) +
                                        " holds no text value"};
    }
    // An empty field has no "value" in `op`'s output; that is an empty value, not an error.
    return field.value ? SecretBytes::copy_of(field.value->span()) : SecretBytes();
  }
  const auto files = std::count_if(item.files.begin(), item.files.end(), [&](const ItemFile& file) {
    return named(file.name, file.id, reference.field);
  });
  if (files == 1) {
    return Attachment{};
  }
  if (files > 1) {
    return Error{Failure::ambiguous, item_name(reference) + " has more than one file " +
                                         field_name(reference) + "; name it by its ID"};
  }
  return Error{Failure::not_found, item_name(reference) + " has no field " + field_name(reference)};
}

}  // namespace secretfs::onepassword
