// bench_secrets: writes COUNT age files of SIZE random bytes each, encrypted to one recipient,
// and a manifest.toml that serves them as s000000, s000001, ... It exists because the
// benchmarks need up to 100,000 distinct ciphertexts (identical ones would be stored once),
// and one `age` process per file would take minutes.
//
//   bench_secrets --recipient age1... --identity KEY --count N --size BYTES --dir DIR
#include <sodium.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>

#include "secretfs/age/age.hpp"
#include "secretfs/age/x25519.hpp"
#include "secretfs/manifest.hpp"
#include "secretfs/secret_bytes.hpp"

namespace {

namespace age = secretfs::age;

struct Options {
  std::string recipient;
  std::string identity;
  std::size_t count = 0;
  std::size_t size = 0;
  std::filesystem::path dir;
};

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: bench_secrets --recipient AGE1 --identity FILE --count N --size BYTES "
               "--dir DIR\n");
  std::exit(2);
}

Options parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--recipient") {
      options.recipient = value;
    } else if (flag == "--identity") {
      options.identity = value;
    } else if (flag == "--count") {
      options.count = std::stoull(value);
    } else if (flag == "--size") {
      options.size = std::stoull(value);
    } else if (flag == "--dir") {
      options.dir = value;
    } else {
      usage();
    }
  }
  if (argc % 2 == 0 || options.recipient.empty() || options.identity.empty() ||
      options.count == 0 || options.dir.empty()) {
    usage();
  }
  return options;
}

// Zero-padded so that names sort in creation order and all have the same length.
std::string secret_name(std::size_t index) {
  constexpr std::size_t kDigits = 6;
  std::string digits = std::to_string(index);
  if (digits.size() < kDigits) {
    digits.insert(0, kDigits - digits.size(), '0');
  }
  return "s" + digits;
}

void write_file(const std::filesystem::path& path, std::span<const std::uint8_t> bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  if (!out.flush()) {
    throw std::runtime_error("cannot write " + path.string());
  }
}

// Random plaintext: the benchmark only needs distinct contents of a given size. One buffer
// serves every file, since secure memory costs a few system calls per allocation.
void write_secret(const Options& options, const age::Recipient& recipient, std::size_t index,
                  secretfs::SecretBytes& plaintext) {
  randombytes_buf(plaintext.data(), plaintext.size());
  const age::Recipient* recipients[] = {&recipient};
  const auto file = age::encrypt(plaintext.span(), recipients);
  write_file(options.dir / (secret_name(index) + ".age"), file);
}

// Bytes an age file adds to its plaintext are far below this: a header and 16 bytes a chunk.
constexpr std::size_t kLimitHeadroom = std::size_t{1} << 20;

void write_manifest(const Options& options) {
  std::ofstream manifest(options.dir / "manifest.toml", std::ios::trunc);
  manifest << "identities = [\"" << options.identity << "\"]\n";
  // Large secrets, such as the one of section 3, are over the default limit; room for the
  // age header and the tags.
  if (options.size + kLimitHeadroom > secretfs::manifest::kDefaultMaxSecretSize) {
    manifest << "max_secret_size = " << 2 * (options.size + kLimitHeadroom) << "\n";
  }
  for (std::size_t index = 0; index < options.count; ++index) {
    const std::string name = secret_name(index);
    manifest << "\n[secrets." << name << "]\nfile = \"" << name << ".age\"\n";
  }
  if (!manifest.flush()) {
    throw std::runtime_error("cannot write the manifest in " + options.dir.string());
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse_options(argc, argv);
  try {
    secretfs::initialize_sodium();
    std::filesystem::create_directories(options.dir);
    const auto recipient = age::X25519Recipient::parse(options.recipient);
    secretfs::SecretBytes plaintext(options.size);
    for (std::size_t index = 0; index < options.count; ++index) {
      write_secret(options, *recipient, index, plaintext);
    }
    write_manifest(options);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "bench_secrets: %s\n", error.what());
    return 1;
  }
  return 0;
}
