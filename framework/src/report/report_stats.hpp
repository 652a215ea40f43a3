#pragma once
// The statistics of `runner report --over` and `--compare`: a mean with its sample standard
// deviation and a 95% confidence interval, Student t or percentile bootstrap (report_stats.cpp).
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace difflab {

/// How the confidence interval of a mean is computed (--interval).
enum class ReportInterval {
  t,          // mean ± t_{0.975, n-1} s / sqrt(n) (Student 1908)
  bootstrap,  // the 2.5th and 97.5th percentiles of resampled means (Efron 1979)
};

constexpr double kReportConfidence = 0.95;
constexpr int kBootstrapResamples = 10000;
constexpr std::uint64_t kBootstrapSeed = 20240518;  // fixed: the same report each time

/// A mean over n finite values. With n = 0 every number is NaN; with n = 1 there is a mean but
/// no spread and no interval (NaN); a constant gives stddev 0 and a zero-width interval.
struct IntervalSummary {
  std::size_t n = 0;
  double mean = std::numeric_limits<double>::quiet_NaN();
  double stddev = std::numeric_limits<double>::quiet_NaN();  // sample (n - 1)
  double ci_low = std::numeric_limits<double>::quiet_NaN();  // 95% interval of the mean
  double ci_high = std::numeric_limits<double>::quiet_NaN();

  bool has_interval() const { return n >= 2; }
  bool excludes_zero() const { return has_interval() && (ci_low > 0 || ci_high < 0); }
};

/// The summary of `values`; NaN and infinite values are left out (and out of n).
IntervalSummary summarize(const std::vector<double>& values, ReportInterval interval);

/// The p-quantile of Student's t distribution with `dof` degrees of freedom (Boost.Math).
double student_t_quantile(double p, double dof);

}  // namespace difflab
