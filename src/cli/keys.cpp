// keygen, encrypt and decrypt: the age tool's habits (-r, -R, -i, -a, -o) under one binary.
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "cli/io.hpp"
#include "rules/rules.hpp"
#include "rules/sealing.hpp"
#include "secretfs/age/age.hpp"
#include "secretfs/age/key_files.hpp"
#include "secretfs/age/x25519.hpp"

namespace secretfs::cli {

namespace {

struct KeygenOptions {
  std::optional<std::string> output;
  std::optional<std::string> convert;  // -y: print the recipients of this identity file
};

std::string timestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  ::gmtime_r(&now, &utc);
  char text[sizeof "2006-01-02T15:04:05Z"];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

// The identity file as age-keygen writes it: two comments, then the key. Assembled in secure
// memory because it holds the secret key.
SecretBytes identity_file(const age::X25519Identity& identity, const std::string& recipient) {
  const std::string comments = "# created: " + timestamp() + "\n# public key: " + recipient + "\n";
  const SecretBytes key = identity.encode();
  SecretBytes file(comments.size() + key.size() + 1);
  std::copy(comments.begin(), comments.end(), file.data());
  std::copy(key.data(), key.data() + key.size(), file.data() + comments.size());
  file.data()[file.size() - 1] = '\n';
  return file;
}

int print_recipients(const std::string& path) {
  const auto identities = age::load_identity_file(path);
  int printed = 0;
  for (const auto& identity : identities) {
    if (const auto* x25519 = dynamic_cast<const age::X25519Identity*>(identity.get())) {
      std::printf("%s\n", x25519->recipient()->describe().c_str());
      ++printed;
    }
  }
  if (printed == 0) {
    throw Failure(path + ": holds no identity with an age1 recipient");
  }
  return 0;
}

int keygen(const KeygenOptions& options) {
  if (options.convert) {
    return print_recipients(*options.convert);
  }
  const auto identity = age::X25519Identity::generate();
  const std::string recipient = identity->recipient()->describe();
  const SecretBytes file = identity_file(*identity, recipient);
  const bool to_file = options.output && !options.output->empty() && *options.output != "-";
  if (to_file) {
    write_output(options.output, file.span(), Existing::refuse);
    std::printf("%s\n", recipient.c_str());
  } else {
    write_output(std::nullopt, file.span());
    std::fprintf(stderr, "Public key: %s\n", recipient.c_str());
  }
  return 0;
}

struct EncryptOptions {
  std::vector<std::string> recipients;
  std::vector<std::string> recipient_files;
  bool armor = false;
  std::optional<std::string> output;
  std::optional<std::string> input;
  std::optional<std::string> rules;
};

age::Recipients gather_recipients(const EncryptOptions& options) {
  age::Recipients recipients;
  for (const auto& text : options.recipients) {
    recipients.push_back(age::parse_recipient(text));
  }
  for (const auto& path : options.recipient_files) {
    const auto file = age::read_file(path);
    const std::string_view text(reinterpret_cast<const char*>(file.data()), file.size());
    for (auto& recipient : age::parse_recipients(text, path)) {
      recipients.push_back(std::move(recipient));
    }
  }
  if (recipients.empty()) {
    throw Failure(
        "no recipients: give at least one -r RECIPIENT or -R FILE, or -o FILE for the "
        "recipients.toml rule that matches FILE");
  }
  return recipients;
}

bool writes_to_file(const std::optional<std::string>& output) {
  return output && !output->empty() && *output != "-";
}

// Without -r or -R, the rule in recipients.toml that matches the output file decides, as for
// edit and rotate; the file then carries the recipients record that rekey checks.
int encrypt_by_rule(const EncryptOptions& options) {
  // The rule is chosen by the link's own path, so writing through a link would encrypt its
  // target to the wrong recipients, or outside the repository; edit, rotate and rekey refuse
  // links for the same reason.
  std::error_code ignored;
  if (std::filesystem::is_symlink(*options.output, ignored)) {
    throw Failure(*options.output + " is a symbolic link; name the file itself");
  }
  const auto rules = rules::rules_for_file(*options.output, options.rules);
  rules::print_warnings_once(rules);
  const auto recipients = rules.recipients_of(rules.rule_for(*options.output));
  const SecretBytes plaintext = read_input(options.input);
  write_output(options.output,
               rules::seal(plaintext.span(), recipients,
                           options.armor ? age::Output::armored : age::Output::binary));
  return 0;
}

int encrypt(const EncryptOptions& options) {
  if (!options.armor && output_is_terminal(options.output)) {
    throw Failure("refusing to write binary age data to a terminal; use -a or -o FILE");
  }
  if (options.recipients.empty() && options.recipient_files.empty() &&
      writes_to_file(options.output)) {
    return encrypt_by_rule(options);
  }
  const auto recipients = gather_recipients(options);
  const SecretBytes plaintext = read_input(options.input);
  const auto file = age::encrypt(plaintext.span(), age::pointers(recipients),
                                 options.armor ? age::Output::armored : age::Output::binary);
  write_output(options.output, file);
  return 0;
}

std::string input_name(const std::optional<std::string>& input) {
  return !input || input->empty() || *input == "-" ? "standard input" : *input;
}

struct DecryptOptions {
  std::vector<std::string> identity_files;
  std::optional<std::string> output;
  std::optional<std::string> input;
};

int decrypt(const DecryptOptions& options) {
  age::Identities identities;
  for (const auto& path : options.identity_files) {
    for (auto& identity : age::load_identity_file(path)) {
      identities.push_back(std::move(identity));
    }
  }
  const SecretBytes file = read_input(options.input);
  try {
    const SecretBytes plaintext = age::decrypt(file.span(), age::pointers(identities));
    write_output(options.output, plaintext.span());
  } catch (const age::Error& error) {
    throw Failure(input_name(options.input) + ": " + std::string(age::to_string(error.kind())) +
                  ": " + error.what());
  }
  return 0;
}

}  // namespace

void add_keygen(CLI::App& app, Command& selected) {
  auto options = std::make_shared<KeygenOptions>();
  auto* command = app.add_subcommand("keygen", "Generate an X25519 identity (age-keygen)");
  command->add_option("-o,--output", options->output,
                      "Write the identity to this new file (mode 0600) and print its recipient");
  command->add_option("-y", options->convert,
                      "Print the age1 recipients of an identity file instead");
  command->callback([&selected, options] { selected = [options] { return keygen(*options); }; });
}

void add_encrypt(CLI::App& app, Command& selected) {
  auto options = std::make_shared<EncryptOptions>();
  auto* command = app.add_subcommand("encrypt", "Encrypt to recipients (age -e)");
  command
      ->add_option("-r,--recipient", options->recipients,
                   "Recipient: age1… or \"ssh-ed25519 AAAA…\"; may repeat")
      ->allow_extra_args(false);
  command
      ->add_option("-R,--recipients-file", options->recipient_files,
                   "File of recipients, one per line; may repeat")
      ->allow_extra_args(false);
  command->add_flag("-a,--armor", options->armor, "Write PEM-style ASCII armor");
  command->add_option("-o,--output", options->output, "Output file (default: standard output)");
  command->add_option("input", options->input, "Input file (default: standard input)");
  command->add_option("--rules", options->rules,
                      "Without -r/-R: the rules file (default: the nearest recipients.toml "
                      "above the output file)");
  command->callback([&selected, options] { selected = [options] { return encrypt(*options); }; });
}

void add_decrypt(CLI::App& app, Command& selected) {
  auto options = std::make_shared<DecryptOptions>();
  auto* command = app.add_subcommand("decrypt", "Decrypt with identities (age -d)");
  command
      ->add_option("-i,--identity", options->identity_files,
                   "Identity file: age identities or an OpenSSH ed25519 key; may repeat")
      ->required()
      ->allow_extra_args(false);
  command->add_option("-o,--output", options->output, "Output file (default: standard output)");
  command->add_option("input", options->input, "Input file (default: standard input)");
  command->callback([&selected, options] { selected = [options] { return decrypt(*options); }; });
}

}  // namespace secretfs::cli
