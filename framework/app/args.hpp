#pragma once
// What a subcommand parses its arguments with, and `report`: what the torch-free runner front
// (runner_front.cpp) needs, apart from the rest of commands.hpp.
#include <string>
#include <vector>

#include <boost/program_options.hpp>

namespace difflab::app {

namespace po = boost::program_options;
using Args = std::vector<std::string>;

/// Parses `args` (after the subcommand) into `vm`; `--help` prints usage and returns false.
bool parse_args(const Args& args, const std::string& usage, const po::options_description& desc,
                const po::positional_options_description& positional, po::variables_map& vm);

int report_command(const Args& args);  // runner report --db PATH ... (cmd_report.cpp)

}  // namespace difflab::app
