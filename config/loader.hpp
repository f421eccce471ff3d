// Loading a Config from YAML. Every error names file:line:column and what was expected.
#pragma once

#include "config/config.hpp"

#include <stdexcept>
#include <string>
#include <string_view>

namespace syncwall::config {

// Raised for any problem in a configuration file. what() is the full operator-facing
// message: "FILE:LINE:COLUMN: MESSAGE" (position of the offending node; 1-based), or
// "FILE: MESSAGE" when there is no position (line 0).
class ConfigError : public std::runtime_error {
  public:
    ConfigError(SourcePos pos, const std::string &message);
    const SourcePos &pos() const { return pos_; }
    const std::string &message() const { return message_; }

  private:
    SourcePos pos_;
    std::string message_;
};

// Text from a file as it goes into an error message: double-quoted, with quotes,
// backslashes and control characters escaped, cut after 64 characters.
std::string quote_for_message(std::string_view text);

// Load and validate a configuration file. Throws ConfigError; never anything else for any
// file content (I/O errors too are ConfigErrors, with line 0).
Config load_config(const std::string &path);

// The same from a string; `name` stands for the file name in messages.
Config load_config_text(const std::string &text, const std::string &name = "<string>");

} // namespace syncwall::config
