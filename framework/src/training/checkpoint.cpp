#include "training/checkpoint.hpp"

#include <unistd.h>

#include <filesystem>

#include <spdlog/spdlog.h>

#include "io/atomic_file.hpp"
#include "training/crash_point.hpp"
#include "difflab/errors.hpp"

namespace difflab {

void save_checkpoint(const std::string& path, torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                     const torch::Generator& generator, CheckpointPosition position,
                     torch::nn::Module* ema) {
  torch::serialize::OutputArchive archive;
  torch::serialize::OutputArchive model_archive, optimizer_archive;
  model.save(model_archive);
  optimizer.save(optimizer_archive);
  archive.write("model", model_archive);
  archive.write("optimizer", optimizer_archive);
  if (ema) {
    torch::serialize::OutputArchive ema_archive;
    ema->save(ema_archive);
    archive.write("ema", ema_archive);
  }
  archive.write("rng", generator.get_state());
  archive.write("epoch", torch::tensor(position.epoch));
  archive.write("step", torch::tensor(position.step));
  const auto tmp = temporary_path(path);
  archive.save_to(tmp);
  crash_point("checkpoint-file");
  publish_file(tmp, path);
}

std::optional<std::string> unreadable_checkpoint(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return "cannot read its size: " + ec.message();
  if (size == 0) return std::string("the file is empty");
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path, torch::kCPU);
    torch::serialize::InputArchive part;
    for (const char* name : {"model", "optimizer"}) {
      if (!archive.try_read(name, part)) return std::string("it holds no ") + name;
    }
    torch::Tensor value;
    for (const char* name : {"rng", "epoch", "step"}) {
      if (!archive.try_read(name, value)) return std::string("it holds no ") + name;
    }
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    return what.substr(0, what.find('\n'));
  }
  return std::nullopt;
}

std::string set_aside(const std::string& path) {
  const auto aside = path + kSetAsideSuffix;
  std::error_code ec;
  std::filesystem::rename(path, aside, ec);
  if (ec) throw RunError("cannot set the unreadable checkpoint " + path + " aside: " + ec.message());
  return aside;
}

LoadedCheckpoint load_checkpoint(const std::string& path, torch::nn::Module& model,
                                 torch::optim::Optimizer* optimizer, torch::Generator* generator,
                                 torch::Device device, torch::nn::Module* ema) {
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path, device);
  } catch (const c10::Error& e) {
    throw RunError(path + ": cannot read checkpoint: " + e.what_without_backtrace());
  }
  torch::serialize::InputArchive model_archive;
  archive.read("model", model_archive);
  model.load(model_archive);
  if (optimizer) {
    torch::serialize::InputArchive optimizer_archive;
    archive.read("optimizer", optimizer_archive);
    optimizer->load(optimizer_archive);
  }
  bool rng_restored = false;
  if (generator) {
    torch::Tensor state;
    archive.read("rng", state);
    try {
      generator->set_state(state.to(torch::kCPU));
      rng_restored = true;
    } catch (const c10::Error&) {
      // Another device type's generator wrote it (a CUDA run resumed on the CPU, or back): the
      // state does not fit; the run goes on with its own seeded generator.
      spdlog::warn("{}: its random state is from another device type; continuing with this run's generator",
                   path);
    }
  }
  bool has_ema = false;
  if (ema) {
    torch::serialize::InputArchive ema_archive;
    has_ema = archive.try_read("ema", ema_archive);
    if (has_ema) ema->load(ema_archive);
  }
  torch::Tensor epoch, step;
  archive.read("epoch", epoch);
  archive.read("step", step);
  return {{epoch.item<std::int64_t>(), step.item<std::int64_t>()}, has_ema, rng_restored};
}

}  // namespace difflab
