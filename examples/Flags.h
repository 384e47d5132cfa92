// A tiny command-line flag parser shared by the examples (no dependency beyond the standard library).
//
//   Flags flags(argv[0]);
//   flags.add("--epochs", epochs);        // int, std::int64_t, std::uint64_t, double or std::string
//   flags.parse(argc, argv);              // prints usage and exits with status 2 on a bad flag or value
#pragma once

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

namespace anvil::examples {

class Flags {
 public:
  explicit Flags(std::string program) : program_(std::move(program)) {}

  void add(const std::string& name, int& v) { add_parsed(name, [&v](const char* s, char** e) { v = static_cast<int>(std::strtol(s, e, 10)); }); }
  void add(const std::string& name, std::int64_t& v) { add_parsed(name, [&v](const char* s, char** e) { v = std::strtoll(s, e, 10); }); }
  void add(const std::string& name, std::uint64_t& v) { add_parsed(name, [&v](const char* s, char** e) { v = std::strtoull(s, e, 10); }); }
  void add(const std::string& name, double& v) { add_parsed(name, [&v](const char* s, char** e) { v = std::strtod(s, e); }); }
  void add(const std::string& name, std::string& v) {
    names_.push_back(name);
    setters_.push_back([&v](const char* s) {
      v = s;
      return true;
    });
  }

  /// Parses "--flag value" pairs; exits with status 2 and the usage line on an unknown flag, a missing
  /// or malformed value; exits with status 0 after printing usage for --help.
  void parse(int argc, char** argv) const {
    for (int i = 1; i < argc; ++i) {
      const std::string flag = argv[i];
      if (flag == "--help" || flag == "-h") usage("help", 0);
      std::size_t k = 0;
      while (k < names_.size() && names_[k] != flag) ++k;
      if (k == names_.size()) usage("unknown flag " + flag, 2);
      if (i + 1 >= argc) usage("missing value for " + flag, 2);
      const char* value = argv[++i];
      if (!setters_[k](value)) usage("bad value '" + std::string(value) + "' for " + flag, 2);
    }
  }

  /// Prints `error` and the usage line, then exits with `status`.
  [[noreturn]] void usage(const std::string& error, int status) const {
    std::ostream& out = status == 0 ? std::cout : std::cerr;
    out << program_ << ": " << error << "\nusage: " << program_;
    for (const auto& n : names_) out << " [" << n << " V]";
    out << "\n";
    std::exit(status);
  }

 private:
  template <typename F>
  void add_parsed(const std::string& name, F parse_into) {
    names_.push_back(name);
    setters_.push_back([parse_into](const char* s) {
      char* end = nullptr;
      parse_into(s, &end);
      return end != s && *end == '\0';
    });
  }

  std::string program_;
  std::vector<std::string> names_;
  std::vector<std::function<bool(const char*)>> setters_;
};

}  // namespace anvil::examples
