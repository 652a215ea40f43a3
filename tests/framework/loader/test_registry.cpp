#include <fstream>
#include <set>

#include <catch2/catch.hpp>

#include "difflab/errors.hpp"
#include "loader/registry.hpp"
#include "support.hpp"

using namespace difflab;

namespace {
std::string fixture(const std::string& name) {
  return std::string(DIFFLAB_TEST_PLUGIN_DIR) + "/libfixture_" + name + ".so";
}

// The message of the PluginError that loading `file` throws.
std::string load_error(const std::string& file) {
  try {
    test::plugins().load_library(file);
  } catch (const PluginError& e) {
    return e.what();
  }
  FAIL("loading " << file << " did not throw");
  return "";
}
}  // namespace

TEST_CASE("every built-in plugin loads from its own library", "[registry]") {
  auto& registry = test::plugins();
  const std::vector<std::pair<PluginKind, std::string>> expected = {
      {PluginKind::schedule, "linear"},   {PluginKind::schedule, "cosine_beta"},
      {PluginKind::schedule, "quadratic"}, {PluginKind::schedule, "exponential"},
      {PluginKind::schedule, "cosine"},   {PluginKind::schedule, "sigmoid"},
      {PluginKind::model, "mlp"},         {PluginKind::sampler, "ddpm"},
      {PluginKind::sampler, "ddpm_x0"},   {PluginKind::sampler, "ddim"},
      {PluginKind::dataset, "gmm2d"},     {PluginKind::dataset, "swiss_roll"},
      {PluginKind::dataset, "moons"},     {PluginKind::metric, "test_loss"},
      {PluginKind::metric, "mmd"},        {PluginKind::metric, "wasserstein"}};
  std::set<std::string> libraries;
  for (const auto& [kind, name] : expected) {
    const auto* entry = registry.find(kind, name);
    REQUIRE(entry != nullptr);
    CHECK(entry->kind == kind);
    CHECK_FALSE(entry->info.version.empty());
    CHECK(entry->library.find(".so") != std::string::npos);
    libraries.insert(entry->library);
  }
  CHECK(libraries.size() == expected.size());
}

TEST_CASE("objects made by a plugin work and keep its library", "[registry]") {
  auto& registry = test::plugins();
  const auto& entry = registry.get(PluginKind::schedule, "linear");
  auto schedule = registry.make_schedule("linear", resolve_options(entry.info.options, {}));
  const auto betas = schedule->betas();
  CHECK(betas.size(0) == 1000);
  CHECK(betas[0].item<double>() == Approx(1e-4));
}

TEST_CASE("unknown plugin names suggest the closest one", "[registry]") {
  auto& registry = test::plugins();
  try {
    registry.get(PluginKind::schedule, "cosin_beta");
    FAIL("no error");
  } catch (const InputError& e) {
    CHECK_THAT(e.what(), Catch::Contains("unknown schedule plugin 'cosin_beta'") &&
                             Catch::Contains("did you mean 'cosine_beta'"));
  }
  CHECK(did_you_mean("schedual", {"name", "schedule", "sweep"}) == "schedule");
  CHECK(did_you_mean("zzzzzz", {"name", "schedule"}).empty());
}

TEST_CASE("the loader refuses libraries that are not usable plugins", "[registry]") {
  auto& registry = test::plugins();
  const auto before = registry.list().size();
  CHECK_THAT(load_error(fixture("no_entry")),
             Catch::Contains("libfixture_no_entry.so") && Catch::Contains("not a difflab plugin"));
  CHECK_THAT(load_error(fixture("wrong_api")),
             Catch::Contains("libfixture_wrong_api.so") && Catch::Contains("plugin API version 999") &&
                 Catch::Contains("rebuild"));
  CHECK_THAT(load_error(fixture("wrong_torch")),
             Catch::Contains("libfixture_wrong_torch.so") && Catch::Contains("torch 0.0.1"));
  CHECK_THAT(load_error(fixture("throws")),
             Catch::Contains("libfixture_throws.so") && Catch::Contains("registration threw") &&
                 Catch::Contains("fixture failure while registering"));
  CHECK_THAT(load_error(fixture("duplicate")),
             Catch::Contains("libfixture_duplicate.so") && Catch::Contains("'linear'") &&
                 Catch::Contains("already registered by"));
  const auto text = test::temp_dir("notelf") / "libdifflab_text.so";
  std::ofstream(text) << "this is not an ELF file\n";
  CHECK_THAT(load_error(text.string()), Catch::Contains("cannot be loaded as a shared library"));
  CHECK_THAT(load_error("/nonexistent/libx.so"), Catch::Contains("does not exist"));
  // A refused library registers nothing, not even what it added before it failed.
  CHECK(registry.list().size() == before);
  CHECK(registry.find(PluginKind::schedule, "fixture_constant") == nullptr);
  CHECK(registry.get(PluginKind::schedule, "linear").info.version != "9.9.9");
}

TEST_CASE("a good out-of-folder plugin loads once, however often it is named", "[registry]") {
  auto& registry = test::plugins();
  registry.load_library(fixture("good"));
  registry.load_library(fixture("good"));
  const auto& entry = registry.get(PluginKind::schedule, "fixture_constant");
  auto schedule = registry.make_schedule("fixture_constant",
                                         resolve_options(entry.info.options, {{"beta", 0.5}}));
  CHECK(schedule->betas().sum().item<double>() == Approx(5.0));
  CHECK_THROWS_WITH(resolve_options(entry.info.options, {{"beta", 1.5}}, "schedule"),
                    Catch::Contains("option 'beta' must be < 1, got 1.5"));
  CHECK_THROWS_WITH(resolve_options(entry.info.options, {{"betta", 0.5}}, "schedule"),
                    Catch::Contains("unknown option 'betta' (did you mean 'beta'?)"));
}
