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

// Minimum-cost perfect matching of a dense n x n row-major cost matrix; returns the column of
// each row. Shortest augmenting paths with dual potentials, as scipy's linear_sum_assignment
// (Crouse 2016, "On implementing 2D rectangular assignment algorithms", Alg. 1; Jonker &
// Volgenant 1987), after a column-reduction start that matches most rows for free.
std::vector<std::int64_t> solve_assignment(const std::vector<double>& cost, std::int64_t n) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  std::vector<double> u(n, 0.0), v(n, kInf), shortest(n);
  std::vector<std::int64_t> col4row(n, -1), row4col(n, -1), path(n, -1), remaining(n);
  std::vector<char> row_seen(n), col_seen(n);

  // Column reduction (Jonker & Volgenant): v_j = min_i c_ij keeps every reduced cost >= 0,
  // and a column's minimising row, when still free, is matched at reduced cost 0.
  std::vector<std::int64_t> argmin(n, 0);
  for (std::int64_t i = 0; i < n; ++i) {
    const double* row = cost.data() + i * n;
    for (std::int64_t j = 0; j < n; ++j) {
      if (row[j] < v[j]) v[j] = row[j], argmin[j] = i;
    }
  }
  for (std::int64_t j = 0; j < n; ++j) {
    if (col4row[argmin[j]] == -1) col4row[argmin[j]] = j, row4col[j] = argmin[j];
  }

  for (std::int64_t free_row = 0; free_row < n; ++free_row) {
    if (col4row[free_row] != -1) continue;
    // Dijkstra over reduced costs c_ij - u_i - v_j from `free_row` to the nearest free column.
    std::fill(shortest.begin(), shortest.end(), kInf);
    std::fill(row_seen.begin(), row_seen.end(), 0);
    std::fill(col_seen.begin(), col_seen.end(), 0);
    std::int64_t num_remaining = n;
    for (std::int64_t k = 0; k < n; ++k) remaining[k] = n - k - 1;
    double min_val = 0.0;
    std::int64_t i = free_row, sink = -1;
    while (sink == -1) {
      row_seen[i] = 1;
      const double* row = cost.data() + i * n;
      const double base = min_val - u[i];
      std::int64_t best = -1;
      double lowest = kInf;
      for (std::int64_t k = 0; k < num_remaining; ++k) {
        const std::int64_t j = remaining[k];
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
      const std::int64_t j = remaining[best];
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
    for (std::int64_t r = 0; r < n; ++r) {
      if (row_seen[r] && r != free_row) u[r] += min_val - shortest[col4row[r]];
    }
    for (std::int64_t c = 0; c < n; ++c) {
      if (col_seen[c]) v[c] -= min_val - shortest[c];
    }
    // Flip the matching along the augmenting path.
    for (std::int64_t j = sink;;) {
      const std::int64_t r = path[j];
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
    if (n <= exact_max_) return {{"wasserstein", "exact", exact_w1(x, y)}};
    return {{"wasserstein", "sliced(projections=" + std::to_string(projections_) + ")",
             sliced_w1(x, y, gen)}};
  }

 private:
  // W1 = min over permutations pi of (1/n) sum_i |x_i - y_pi(i)| (Villani 2008, Thm. 5.10 for
  // uniform empirical measures of equal size, where an optimal plan is a permutation).
  static double exact_w1(const torch::Tensor& x, const torch::Tensor& y) {
    const auto n = x.size(0);
    // Low dimensions: the direct difference form, so identical points cost exactly 0.
    const auto mode = x.size(1) <= 64 ? c10::optional<std::int64_t>(2) : c10::nullopt;
    const auto distances = torch::cdist(x, y, 2.0, mode).to(torch::kCPU).contiguous();
    std::vector<double> cost(distances.data_ptr<double>(), distances.data_ptr<double>() + n * n);
    const auto col4row = solve_assignment(cost, n);
    double total = 0.0;
    for (std::int64_t i = 0; i < n; ++i) total += cost[i * n + col4row[i]];
    return total / double(n);
  }

  // Sliced W1 (Rabin et al. 2011; Bonneel et al. 2015, eq. 2): mean over random unit directions
  // theta of the 1D W1 between projections, which matches sorted values.
  double sliced_w1(const torch::Tensor& x, const torch::Tensor& y, torch::Generator& gen) const {
    auto theta = torch::randn({x.size(1), projections_}, gen,
                              torch::TensorOptions(gen.device()).dtype(torch::kFloat64))
                     .to(x.device());
    theta = theta / theta.norm(2, 0, true);
    const auto px = std::get<0>(x.matmul(theta).sort(0));
    const auto py = std::get<0>(y.matmul(theta).sort(0));
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
        OptionSpec::integer("exact_max", 3000,
                            "largest n solved exactly (O(n^2) memory, about n^3 time); above: sliced")
            .at_least(0)
            .at_most(20000),
        OptionSpec::integer("projections", 256, "random directions of the sliced estimate")
            .at_least(1)}},
      [](const Options& o) { return std::make_unique<Wasserstein>(o); });
}
