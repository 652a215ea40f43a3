// runner report --db PATH: comparison tables of recorded runs.
#include <filesystem>
#include <fstream>
#include <iostream>

#include "args.hpp"
#include "difflab/errors.hpp"
#include "report/report.hpp"

namespace difflab::app {

int report_command(const Args& args) {
  std::string db = "runs.sqlite", sweep, format = "table", output, checkpoint = "final", by_nfe,
              over, compare, interval = "t";
  po::options_description desc("runner report options");
  desc.add_options()("help,h", "show this help")
      ("db", po::value(&db), "database to read (default runs.sqlite)")
      ("sweep", po::value(&sweep), "only this sweep")
      ("format", po::value(&format), "table | markdown | csv | json | html (one offline page with charts and pictures)")
      ("checkpoint", po::value(&checkpoint)->value_name("CHOICE"),
       "final | best | all | step=N | epoch=N (each run's checkpoint at N, else the last one "
       "before)")
      ("by-nfe", po::value(&by_nfe)->value_name("METRIC"),
       "METRIC by sampler family (rows) and NFE, model calls per sample (columns)")
      ("over", po::value(&over)->value_name("AXIS"),
       "a row per group of runs that differ only in AXIS (e.g. seed): each metric's mean, "
       "standard deviation, n and 95% confidence interval")
      ("compare", po::value(&compare)->value_name("AXIS=A,B"),
       "the mean paired difference B - A of each metric over runs that agree on every other "
       "axis, with its 95% confidence interval (e.g. seed=0,1)")
      ("interval", po::value(&interval)->value_name("KIND"),
       "confidence interval of --over and --compare: t (Student t, default) | bootstrap "
       "(percentile, 10000 resamples)")
      ("output,o", po::value(&output), "write to FILE instead of standard output");
  po::variables_map vm;
  if (!parse_args(args, "runner report --db PATH [options]", desc, {}, vm)) return 0;
  ReportOptions options;
  options.sweep = sweep;
  options.format = parse_report_format(format);
  const auto selection = parse_checkpoint_selection(checkpoint);
  options.checkpoint = selection.choice;
  options.checkpoint_at = selection.at;
  options.by_nfe = by_nfe;
  if (vm.count("over") && over.empty()) {
    throw InputError("--over: give an axis name (e.g. --over seed)");
  }
  options.over = over;
  if (vm.count("compare")) options.compare = parse_report_comparison(compare);
  options.interval = parse_report_interval(interval);
  if (vm.count("interval") && over.empty() && !vm.count("compare")) {
    throw InputError("--interval " + interval + ": it is the interval of --over or --compare; "
                     "give one of them");
  }
  check_report_options(options);
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
