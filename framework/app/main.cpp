// runner: the difflab command line. Each subcommand lives in its own cmd_*.cpp.
#include <cstring>
#include <iostream>

#include <torch/torch.h>

#include "commands.hpp"
#include "difflab/errors.hpp"
#include "loader/registry.hpp"

namespace {

struct Subcommand {
  const char* name;
  const char* summary;
  int (*run)(const difflab::app::Args&);
};

constexpr Subcommand kSubcommands[] = {
    {"sweep", "train and evaluate every grid point of a sweep file", difflab::app::sweep_command},
    {"run", "train and evaluate one grid point (what a Slurm task runs)", difflab::app::run_command},
    {"merge", "fold task databases (shards) into one, idempotently", difflab::app::merge_command},
    {"validate", "check a sweep file and print its grid size; run nothing", difflab::app::validate_command},
    {"report", "compare the runs recorded in a database", difflab::app::report_command},
    {"plugins", "list the loaded plugins with their options", difflab::app::plugins_command},
    {"describe", "print a sweep-file section's keys with types, defaults and help", difflab::app::describe_command},
};

void print_usage(std::ostream& out) {
  out << "usage: runner <command> [options]   (runner <command> --help for its options)\n\n";
  for (const auto& c : kSubcommands) {
    out << "  " << c.name << std::string(10 - std::strlen(c.name), ' ') << c.summary << "\n";
  }
  out << "\nExit codes: 0 success, 1 a run failed, 2 bad input (file, flag, config, plugin).\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    print_usage(argc < 2 ? std::cerr : std::cout);
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::cout << "difflab " << DIFFLAB_VERSION << " (torch " << TORCH_VERSION << ", plugin API "
              << difflab::kPluginApiVersion << ")\n";
    return 0;
  }
  const std::string name = argv[1];
  const difflab::app::Args args(argv + 2, argv + argc);
  for (const auto& c : kSubcommands) {
    if (name != c.name) continue;
    try {
      return c.run(args);
    } catch (const boost::program_options::error& e) {
      std::cerr << "runner " << name << ": " << e.what() << " (see runner " << name << " --help)\n";
      return 2;
    } catch (const difflab::InputError& e) {
      std::cerr << "runner " << name << ": error: " << e.what() << "\n";
      return 2;
    } catch (const c10::Error& e) {
      std::cerr << "runner " << name << ": error: " << e.what_without_backtrace() << "\n";
      return 1;
    } catch (const std::exception& e) {
      std::cerr << "runner " << name << ": error: " << e.what() << "\n";
      return 1;
    }
  }
  std::vector<std::string> names;
  for (const auto& c : kSubcommands) names.push_back(c.name);
  std::cerr << "runner: unknown command '" << name << "'";
  if (auto guess = difflab::did_you_mean(name, names); !guess.empty()) {
    std::cerr << " (did you mean '" << guess << "'?)";
  }
  std::cerr << "; run 'runner --help' for the list\n";
  return 2;
}
