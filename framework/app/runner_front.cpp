// runner: answers `runner report` itself, without LibTorch (loading it takes half a second, more
// than a report of 10,000 runs), and becomes runner-engine beside it for every other command.
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "args.hpp"
#include "difflab/errors.hpp"

int main(int argc, char** argv) {
  if (argc >= 2 && !std::strcmp(argv[1], "report")) {
    try {
      return difflab::app::report_command(difflab::app::Args(argv + 2, argv + argc));
    } catch (const boost::program_options::error& e) {
      std::cerr << "runner report: " << e.what() << " (see runner report --help)\n";
      return 2;
    } catch (const difflab::InputError& e) {
      std::cerr << "runner report: error: " << e.what() << "\n";
      return 2;
    } catch (const std::exception& e) {
      std::cerr << "runner report: error: " << e.what() << "\n";
      return 1;
    }
  }
  // exec keeps the process id: whoever waits for or signals the runner reaches the engine.
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  const auto engine = (ec ? std::filesystem::path(argv[0]) : self).parent_path() / "runner-engine";
  execv(engine.c_str(), argv);
  std::cerr << "runner: cannot start " << engine.string() << ": " << std::strerror(errno)
            << " (it is installed beside the runner)\n";
  return 1;
}
