// wasserstein: 1-Wasserstein distance (Euclidean ground cost) between samples and test data;
// exact optimal assignment for small sets, sliced Wasserstein-1 for large ones.
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "difflab/errors.hpp"
#include "difflab/plugin.hpp"

namespace {
using namespace difflab;

using Index = std::int64_t;
constexpr double kInf = std::numeric_limits<double>::infinity();

// A matching (col4row[i], row4col[j]; -1 where free) with its dual prices v_j.
struct Matching {
  std::vector<Index> col4row, row4col;
  std::vector<double> v;
};

// Forward auction with epsilon scaling (Bertsekas 1988; Bertsekas & Castanon 1992): a matching
// within n * eps of optimal and near-optimal prices, which make the exact phase's paths short.
Matching auction(const double* cost, Index n, double range) {  // n >= 2, range > 0
  constexpr double kFinalEps = 1e-6;  // final eps = range * kFinalEps / n
  constexpr double kEpsFactor = 4.0;  // eps shrinks by this much per phase
  std::vector<double> price(n, 0.0);
  Matching m{std::vector<Index>(n), std::vector<Index>(n), {}};
  std::vector<Index> unassigned;
  const double final_eps = range * kFinalEps / double(n);
  for (double eps = range / kEpsFactor;; eps = std::max(eps / kEpsFactor, final_eps)) {
    std::fill(m.col4row.begin(), m.col4row.end(), -1);
    std::fill(m.row4col.begin(), m.row4col.end(), -1);
    unassigned.resize(n);
    for (Index i = 0; i < n; ++i) unassigned[i] = n - 1 - i;
    while (!unassigned.empty()) {
      const Index i = unassigned.back();
      unassigned.pop_back();
      const double* row = cost + i * n;
      double best = kInf, second = kInf;
      Index best_col = 0;
      for (Index j = 0; j < n; ++j) {
        const double w = row[j] + price[j];
        if (w < second) {
          if (w < best) second = best, best = w, best_col = j;
          else second = w;
        }
      }
      // Bid: raise the price until the second-best column is as good, plus eps.
      price[best_col] += (second - best) + eps;
      const Index previous = m.row4col[best_col];
      m.row4col[best_col] = i;
      m.col4row[i] = best_col;
      if (previous >= 0) m.col4row[previous] = -1, unassigned.push_back(previous);
    }
    if (eps <= final_eps) break;
  }
  m.v.resize(n);
  for (Index j = 0; j < n; ++j) m.v[j] = -price[j];
  return m;
}

// Minimum-cost perfect matching of a dense n x n row-major cost matrix; returns the column of
// each row. Exact: shortest augmenting paths over reduced costs as scipy's linear_sum_assignment
// (Crouse 2016, "On implementing 2D rectangular assignment algorithms", Alg. 1), started from
// an auction's prices and its edges that are tight under them.
std::vector<Index> solve_assignment(const double* cost, Index n) {
  if (n == 0) return {};
  const auto [lo, hi] = std::minmax_element(cost, cost + n * n);
  if (!(*hi - *lo > 0.0)) {  // every matching costs the same
    std::vector<Index> identity(n);
    for (Index i = 0; i < n; ++i) identity[i] = i;
    return identity;
  }
  auto [col4row, row4col, v] = auction(cost, n, *hi - *lo);

  // u_i = min_j (c_ij - v_j) makes every reduced cost c_ij - u_i - v_j >= 0; only edges with
  // reduced cost exactly 0 may stay matched.
  std::vector<double> u(n);
  for (Index i = 0; i < n; ++i) {
    const double* row = cost + i * n;
    double lowest = kInf;
    for (Index j = 0; j < n; ++j) lowest = std::min(lowest, row[j] - v[j]);
    u[i] = lowest;
    const Index j = col4row[i];
    if (row[j] - v[j] > lowest) row4col[j] = -1, col4row[i] = -1;
  }

  std::vector<double> shortest(n);
  std::vector<Index> path(n, -1), remaining(n);
  std::vector<char> row_seen(n), col_seen(n);
  for (Index free_row = 0; free_row < n; ++free_row) {
    if (col4row[free_row] != -1) continue;
    // Dijkstra over reduced costs from `free_row` to the nearest free column.
    std::fill(shortest.begin(), shortest.end(), kInf);
    std::fill(row_seen.begin(), row_seen.end(), 0);
    std::fill(col_seen.begin(), col_seen.end(), 0);
    Index num_remaining = n;
    for (Index k = 0; k < n; ++k) remaining[k] = n - k - 1;
    double min_val = 0.0;
    Index i = free_row, sink = -1;
    while (sink == -1) {
      row_seen[i] = 1;
      const double* row = cost + i * n;
      const double base = min_val - u[i];
      Index best = -1;
      double lowest = kInf;
      for (Index k = 0; k < num_remaining; ++k) {
        const Index j = remaining[k];
        const double r = base + row[j] - v[j];
        if (r < shortest[j]) path[j] = i, shortest[j] = r;
        // Ties go to a free column: the path ends sooner.
        if (shortest[j] < lowest || (shortest[j] == lowest && row4col[j] == -1)) {
          lowest = shortest[j];
          best = k;
        }
      }
      if (best == -1) throw RunError("wasserstein: the assignment problem has no finite solution");
      min_val = lowest;
      const Index j = remaining[best];
      col_seen[j] = 1;
      remaining[best] = remaining[--num_remaining];
      if (row4col[j] == -1) {
        sink = j;
      } else {
        i = row4col[j];
      }
    }
    // Dual update keeps reduced costs >= 0 and zero on matched edges (Crouse 2016, Alg. 1).
    u[free_row] += min_val;
    for (Index r = 0; r < n; ++r) {
      if (row_seen[r] && r != free_row) u[r] += min_val - shortest[col4row[r]];
    }
    for (Index c = 0; c < n; ++c) {
      if (col_seen[c]) v[c] -= min_val - shortest[c];
    }
    // Flip the matching along the augmenting path.
    for (Index j = sink;;) {
      const Index r = path[j];
      row4col[j] = r;
      std::swap(col4row[r], j);
      if (r == free_row) break;
    }
  }
  return col4row;
}

// Rows of `x` picked by `order`, with x and order on possibly different devices.
torch::Tensor take(const torch::Tensor& x, const torch::Tensor& order, std::int64_t n) {
  return x.index_select(0, order.slice(0, 0, n).to(x.device()));
}

class Wasserstein final : public Metric {
 public:
  explicit Wasserstein(const Options& o)
      : max_points_(o.integer("max_points")),
        exact_max_(o.integer("exact_max")),
        projections_(o.integer("projections")) {}

  std::vector<MetricValue> evaluate(const MetricContext& ctx) const override {
    auto gen = ctx.generator.defined() ? ctx.generator : at::detail::createCPUGenerator(0);
    const auto device = ctx.test.x.device();
    auto x = ctx.samples.to(device).flatten(1).to(torch::kFloat64);
    auto y = ctx.test.x.flatten(1).to(torch::kFloat64);
    const auto n = std::min({x.size(0), y.size(0), max_points_});
    if (n < 1) throw InputError("wasserstein needs at least one sample and one test point");
    // Equal-size sets: the larger ones are subsampled without replacement by the generator.
    const auto index_options = torch::TensorOptions(gen.device()).dtype(torch::kLong);
    if (x.size(0) > n) x = take(x, torch::randperm(x.size(0), gen, index_options), n);
    if (y.size(0) > n) y = take(y, torch::randperm(y.size(0), gen, index_options), n);
    const bool exact = n <= exact_max_;
    const auto variant =
        exact ? std::string("exact") : "sliced(projections=" + std::to_string(projections_) + ")";
    // A diverged sampler's NaN or infinite samples have no distance: report NaN, not a number.
    const bool finite = x.isfinite().all().item<bool>() && y.isfinite().all().item<bool>();
    std::vector<MetricValue> values{{"wasserstein", variant,
                                     !finite ? std::numeric_limits<double>::quiet_NaN()
                                     : exact ? exact_w1(x, y)
                                             : sliced_w1(x, y, gen),
                                     Better::lower}};
    add_protocol(values, "samples", std::to_string(n));  // equal-size sets of n rows
    add_reference(values, "test", n);
    return values;
  }

 private:
  // W1 = min over permutations pi of (1/n) sum_i |x_i - y_pi(i)| (Villani 2008, Thm. 5.10 for
  // uniform empirical measures of equal size, where an optimal plan is a permutation).
  static double exact_w1(const torch::Tensor& x, const torch::Tensor& y) {
    const auto n = x.size(0);
    // Low dimensions: the direct difference form, so identical points cost exactly 0.
    const auto mode = x.size(1) <= 64 ? c10::optional<std::int64_t>(2) : c10::nullopt;
    const auto distances = torch::cdist(x, y, 2.0, mode).to(torch::kCPU).contiguous();
    const double* cost = distances.data_ptr<double>();
    const auto col4row = solve_assignment(cost, n);
    double total = 0.0;
    for (std::int64_t i = 0; i < n; ++i) total += cost[i * n + col4row[i]];
    return total / double(n);
  }

  // Sliced W1 (Rabin et al. 2011; Bonneel et al. 2015, eq. 2): mean over random unit directions
  // theta of the 1D W1 between projections, which matches sorted values.
  double sliced_w1(const torch::Tensor& x, const torch::Tensor& y, torch::Generator& gen) const {
    // Gaussian directions, normalised: uniform on the sphere in any dimension.
    auto theta = torch::randn({projections_, x.size(1)}, gen,
                              torch::TensorOptions(gen.device()).dtype(torch::kFloat64))
                     .to(x.device());
    theta = theta / theta.norm(2, 1, true);
    // [projections, n]: each sort runs along contiguous memory.
    const auto px = std::get<0>(theta.matmul(x.t()).sort(1));
    const auto py = std::get<0>(theta.matmul(y.t()).sort(1));
    return (px - py).abs().mean().item<double>();
  }

  std::int64_t max_points_, exact_max_, projections_;
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_metric(
      {"wasserstein", "1.0.0",
       "1-Wasserstein distance between samples and test data: exact assignment or sliced",
       {OptionSpec::integer("max_points", 2000,
                            "points of each set used (n = min of both sizes and this)")
            .at_least(1),
        OptionSpec::integer(
            "exact_max", 3000,
            "largest n solved exactly (8 n^2 bytes, ~0.3 s at n = 2000); above: sliced")
            .at_least(0)
            .at_most(10000),
        OptionSpec::integer("projections", 256, "random directions of the sliced estimate")
            .at_least(1)}},
      [](const Options& o) { return std::make_unique<Wasserstein>(o); });
}
