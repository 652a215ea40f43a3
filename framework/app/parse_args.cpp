// parse_args: its own file so that the runner's torch-free front (report) links it too.
#include <iostream>

#include "args.hpp"

namespace difflab::app {

bool parse_args(const Args& args, const std::string& usage, const po::options_description& desc,
                const po::positional_options_description& positional, po::variables_map& vm) {
  po::store(po::command_line_parser(args).options(desc).positional(positional).run(), vm);
  if (vm.count("help")) {
    std::cout << "usage: " << usage << "\n\n" << desc;
    return false;
  }
  po::notify(vm);
  return true;
}

}  // namespace difflab::app
