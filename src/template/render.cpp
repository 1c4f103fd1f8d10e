// Rendering a parsed template from its secrets' plaintexts, and the size it renders to.
//
// Every byte that comes from a secret stays in SecretBytes: `chomp` only narrows a view of the
// plaintext, each encoding writes a new SecretBytes, and the result is one more, filled once its
// size is known. What is not returned is wiped when it goes out of scope.
#include <sodium.h>

#include <cstring>

#include "manifest/names.hpp"
#include "secretfs/template.hpp"

namespace secretfs::templates {

namespace {

constexpr std::uint8_t kNewline = '\n';
constexpr std::uint8_t kCarriageReturn = '\r';
constexpr std::uint64_t kBase64Group = 3;  // bytes in, four characters out
constexpr std::uint64_t kBase64GroupText = 4;
constexpr std::uint64_t kHexPerByte = 2;

std::span<const std::uint8_t> chomped(std::span<const std::uint8_t> bytes) {
  if (bytes.empty() || bytes.back() != kNewline) {
    return bytes;
  }
  const bool crlf = bytes.size() >= 2 && bytes[bytes.size() - 2] == kCarriageReturn;
  return bytes.first(bytes.size() - (crlf ? 2 : 1));
}

// Standard base64 with padding (RFC 4648, section 4), as `base64` prints it.
SecretBytes base64(std::span<const std::uint8_t> bytes) {
  const std::size_t room = sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  SecretBytes text(room);
  sodium_bin2base64(reinterpret_cast<char*>(text.data()), room, bytes.data(), bytes.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  text.shrink(room - 1);  // the terminating NUL
  return text;
}

// Lower-case hex, as `xxd -p` and `od` print it; libsodium's encoder takes constant time.
SecretBytes hex(std::span<const std::uint8_t> bytes) {
  const std::size_t room = bytes.size() * kHexPerByte + 1;
  SecretBytes text(room);
  sodium_bin2hex(reinterpret_cast<char*>(text.data()), room, bytes.data(), bytes.size());
  text.shrink(room - 1);
  return text;
}

// One placeholder's bytes: a view of the plaintext, or of the last encoding's buffer.
struct Piece {
  SecretBytes owned;
  std::span<const std::uint8_t> bytes;
};

Piece filtered(const Placeholder& placeholder, std::span<const std::uint8_t> plaintext) {
  Piece piece{SecretBytes(), plaintext};
  for (const Filter filter : placeholder.filters) {
    if (filter == Filter::chomp) {
      piece.bytes = chomped(piece.bytes);
      continue;
    }
    // The previous buffer is wiped as it is replaced.
    piece.owned = filter == Filter::base64 ? base64(piece.bytes) : hex(piece.bytes);
    piece.bytes = piece.owned.span();
  }
  return piece;
}

std::string naming(const Placeholder& placeholder) {
  return "placeholder `" + manifest::printable_name(placeholder.text) + "`: secret `" +
         manifest::printable_name(placeholder.secret) + "`";
}

void check_limit(std::uint64_t size, std::uint64_t max_size) {
  if (size > max_size) {
    throw RenderError("the rendered text would be over the limit of " + std::to_string(max_size) +
                      " bytes");
  }
}

}  // namespace

Size rendered_size(const Template& parsed, std::span<const std::uint64_t> secret_sizes) {
  Size size;
  for (const std::string& literal : parsed.literals) {
    size.bytes += literal.size();
  }
  for (std::size_t index = 0; index < parsed.placeholders.size(); ++index) {
    std::uint64_t bytes = secret_sizes[index];
    bool encoded = false;
    for (const Filter filter : parsed.placeholders[index].filters) {
      if (filter == Filter::chomp) {
        // Encoded text never ends with a newline; a secret's own bytes may, or may not.
        size.exact = size.exact && encoded;
      } else if (filter == Filter::base64) {
        bytes = (bytes + kBase64Group - 1) / kBase64Group * kBase64GroupText;
        encoded = true;
      } else {
        bytes *= kHexPerByte;
        encoded = true;
      }
    }
    size.bytes += bytes;
  }
  return size;
}

SecretBytes render(const Template& parsed, std::span<const SecretBytes* const> plaintexts,
                   std::uint64_t max_size) {
  std::vector<Piece> pieces;
  pieces.reserve(parsed.placeholders.size());
  std::uint64_t size = 0;
  for (const std::string& literal : parsed.literals) {
    size += literal.size();
  }
  check_limit(size, max_size);
  for (std::size_t index = 0; index < parsed.placeholders.size(); ++index) {
    const Placeholder& placeholder = parsed.placeholders[index];
    pieces.push_back(filtered(placeholder, plaintexts[index]->span()));
    if (!is_text(pieces.back().bytes)) {
      throw RenderError(naming(placeholder) +
                        " has a NUL byte or is not UTF-8, so it cannot be inserted as it is; "
                        "insert it with `| base64` or `| hex`");
    }
    size += pieces.back().bytes.size();
    check_limit(size, max_size);
  }

  SecretBytes rendered(static_cast<std::size_t>(size));
  std::uint8_t* out = rendered.data();
  const auto append = [&](const void* bytes, std::size_t count) {
    if (count > 0) {
      std::memcpy(out, bytes, count);
      out += count;
    }
  };
  for (std::size_t index = 0; index < pieces.size(); ++index) {
    append(parsed.literals[index].data(), parsed.literals[index].size());
    append(pieces[index].bytes.data(), pieces[index].bytes.size());
  }
  append(parsed.literals.back().data(), parsed.literals.back().size());
  return rendered;
}

}  // namespace secretfs::templates
