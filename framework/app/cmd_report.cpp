// runner report --db PATH: comparison tables of recorded runs.
#include <filesystem>
#include <fstream>
#include <iostream>

#include "args.hpp"
#include "difflab/errors.hpp"
#include "report/report.hpp"

namespace difflab::app {

int report_command(const Args& args) {
  std::string db = "runs.sqlite", sweep, format = "table", output, checkpoint = "final", by_nfe;
  po::options_description desc("runner report options");
  desc.add_options()("help,h", "show this help")
      ("db", po::value(&db), "database to read (default runs.sqlite)")
      ("sweep", po::value(&sweep), "only this sweep")
      ("format", po::value(&format), "table | markdown | csv | json | html (one offline page with charts and pictures)")
      ("checkpoint", po::value(&checkpoint), "final | best | all")
      ("by-nfe", po::value(&by_nfe)->value_name("METRIC"),
       "METRIC by sampler family (rows) and NFE, model calls per sample (columns)")
      ("output,o", po::value(&output), "write to FILE instead of standard output");
  po::variables_map vm;
  if (!parse_args(args, "runner report --db PATH [options]", desc, {}, vm)) return 0;
  ReportOptions options;
  options.sweep = sweep;
  options.format = parse_report_format(format);
  options.checkpoint = parse_checkpoint_choice(checkpoint);
  options.by_nfe = by_nfe;
  if (!std::filesystem::exists(db)) {
    throw InputError(db + ": no such database (run 'runner sweep FILE --db " + db + "' first)");
  }
  const RunStore store(db, RunStore::Access::read_only);  // never blocks a running sweep
  const auto text = render_report(store, options);
  if (output.empty()) {
    std::cout << text;
  } else {
    std::ofstream out(output, std::ios::binary | std::ios::trunc);
    if (!out) throw InputError(output + ": cannot write the report");
    out << text;
  }
  return 0;
}

}  // namespace difflab::app
