// summarize: mean, sample standard deviation and 95% interval of the mean, for --over and
// --compare.
#include "report/report_stats.hpp"

#include <algorithm>
#include <cmath>
#include <random>

#include <boost/math/distributions/students_t.hpp>

namespace difflab {
namespace {

// The p-quantile of sorted values, linearly interpolated between order statistics (Hyndman and
// Fan 1996, definition 7).
double quantile_of_sorted(const std::vector<double>& sorted, double p) {
  const double at = p * static_cast<double>(sorted.size() - 1);
  const auto below = static_cast<std::size_t>(std::floor(at));
  const auto above = std::min(below + 1, sorted.size() - 1);
  return sorted[below] + (at - static_cast<double>(below)) * (sorted[above] - sorted[below]);
}

}  // namespace

double student_t_quantile(double p, double dof) {
  return boost::math::quantile(boost::math::students_t_distribution<double>(dof), p);
}

IntervalSummary summarize(const std::vector<double>& values, ReportInterval interval) {
  std::vector<double> x;
  x.reserve(values.size());
  for (const double v : values) {
    if (std::isfinite(v)) x.push_back(v);
  }
  IntervalSummary s;
  s.n = x.size();
  if (x.empty()) return s;
  const auto [min, max] = std::minmax_element(x.begin(), x.end());
  if (*min == *max) {
    // A constant: its own mean, no spread, a zero-width interval (summing could round it away).
    s.mean = *min;
    if (s.n >= 2) {
      s.stddev = 0;
      s.ci_low = s.ci_high = *min;
    }
    return s;
  }
  double sum = 0;
  for (const double v : x) sum += v;
  const auto n = static_cast<double>(s.n);
  s.mean = sum / n;
  double squares = 0;
  for (const double v : x) squares += (v - s.mean) * (v - s.mean);
  s.stddev = std::sqrt(squares / (n - 1));
  const double tail = (1 - kReportConfidence) / 2;
  if (interval == ReportInterval::t) {
    const double half = student_t_quantile(1 - tail, n - 1) * s.stddev / std::sqrt(n);
    s.ci_low = s.mean - half;
    s.ci_high = s.mean + half;
    return s;
  }
  // Percentile bootstrap; rng() % n rather than a std:: distribution, whose algorithm differs
  // between standard libraries, so that every build prints the same interval.
  std::mt19937_64 rng(kBootstrapSeed);
  std::vector<double> means(kBootstrapResamples);
  for (auto& mean : means) {
    double total = 0;
    for (std::size_t i = 0; i < s.n; ++i) total += x[rng() % s.n];
    mean = total / n;
  }
  std::sort(means.begin(), means.end());
  // A mean of values in [min, max] lies there too; clamping keeps rounding from saying otherwise.
  s.ci_low = std::clamp(quantile_of_sorted(means, tail), *min, *max);
  s.ci_high = std::clamp(quantile_of_sorted(means, 1 - tail), *min, *max);
  return s;
}

}  // namespace difflab
