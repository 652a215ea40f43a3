#include "config/sections.hpp"

#include "api/did_you_mean.hpp"
#include "config/sweep_grid.hpp"
#include "difflab/errors.hpp"

namespace difflab {

const SectionSpec& train_section() {
  static const SectionSpec section{
      "train",
      "how the model trains: the optimizer, its schedule, the length and the checkpoints",
      {
          OptionSpec::integer("epochs", 100, "passes over the training split").at_least(1),
          OptionSpec::integer("steps", 0, "stop after this many optimizer steps (0: run all epochs)")
              .at_least(0),
          OptionSpec::integer("batch_size", 1280, "examples per optimizer step").at_least(1),
          OptionSpec::real("lr", 1e-3, "learning rate").greater_than(0),
          OptionSpec::text("optimizer", "adam", "optimizer", {"adam", "adamw"}),
          OptionSpec::real("weight_decay", 0.0, "weight decay (L2 for adam, decoupled for adamw)")
              .at_least(0),
          OptionSpec::real("grad_clip", 0.0, "max global gradient norm (0: no clipping)").at_least(0),
          OptionSpec::integer("checkpoint_every", 10, "epochs between checkpoints").at_least(1),
          OptionSpec::text("lr_schedule", "constant", "learning rate after warm-up: constant, or cosine "
                           "decay to min_lr over the remaining steps", {"constant", "cosine"}),
          OptionSpec::integer("warmup_steps", 0, "steps of linear learning-rate warm-up from 0").at_least(0),
          OptionSpec::real("min_lr", 0.0, "learning rate at the end of the cosine decay").at_least(0),
          OptionSpec::real("ema_decay", 0.0, "decay of the exponential moving average of the weights "
                           "that evaluation uses (0: no EMA, evaluate the trained weights)")
              .at_least(0)
              .less_than(1),
          OptionSpec::real("label_dropout", 0.0, "probability of training a step's label as 'no label' "
                           "(for classifier-free guidance; labelled datasets only)")
              .at_least(0)
              .at_most(1),
          OptionSpec::text("loss_weighting", "none", "per-example weight of the denoising loss: none, or "
                           "min_snr, min(SNR, gamma) in the prediction type's units (Hang et al. 2023)",
                           {"none", "min_snr"}),
          OptionSpec::real("min_snr_gamma", 5.0, "gamma of loss_weighting: min_snr").greater_than(0),
      },
      {}};
  return section;
}

const SectionSpec& evaluation_section() {
  static const SectionSpec section{
      "evaluation",
      "what each checkpoint is measured with: samples from every sampler, then every metric",
      {
          OptionSpec::integer("num_samples", 2000, "samples each sampler draws per checkpoint").at_least(1),
          OptionSpec::boolean("class_conditional", false,
                              "sample with balanced class labels 0, 1, ..., K-1 (a labelled dataset "
                              "and a class-conditional model)"),
          OptionSpec::real("guidance_scale", 1.0, "classifier-free guidance scale s: uncond + s (cond - "
                           "uncond), s = 1 + w of Ho & Salimans 2022; 1 is plain conditional "
                           "(needs class_conditional)")
              .at_least(0),
          OptionSpec::boolean("common_noise", true,
                              "every sampler and every checkpoint of a run starts from the same x_T "
                              "(common random numbers); stochastic samplers draw their later noise "
                              "from their own streams"),
      },
      {{"samplers", PluginKind::sampler, "the samplers, each a map {plugin: NAME, options...}"},
       {"metrics", PluginKind::metric, "the metrics, each a map {plugin: NAME, options...}"}}};
  return section;
}

const std::vector<OptionSpec>& schedule_framework_options() {
  static const std::vector<OptionSpec> options{OptionSpec::boolean(
      "rescale_zero_terminal_snr", false,
      "rescale the betas to a zero terminal SNR, abar_T = 0 (Lin et al. 2024, Alg. 1): train with "
      "v or x0 prediction")};
  return options;
}

const std::vector<OptionSpec>& autoencoder_framework_options() {
  static const std::vector<OptionSpec> options{
      OptionSpec::real("kl_weight", 1e-6,
                       "weight of the KL term: loss = mean squared reconstruction error per pixel + "
                       "kl_weight x KL(q(z|x) || N(0, I)) per image (Kingma & Welling 2014)")
          .at_least(0)};
  return options;
}

std::vector<const SectionSpec*> framework_sections() { return {&train_section(), &evaluation_section()}; }

const SectionSpec& find_section(const std::string& name) {
  std::vector<std::string> names;
  for (const auto* s : framework_sections()) {
    if (s->name == name) return *s;
    names.push_back(s->name);
  }
  const auto guess = did_you_mean(name, names);
  throw InputError("unknown section '" + name + "'" +
                   (guess.empty() ? " (known: " + join(names, ", ") + ")" : " (did you mean '" + guess + "'?)"));
}

std::string describe_option(const OptionSpec& o) {
  std::string text = o.name + " (" + option_type_name(o.type) +
                     (o.default_value ? ", default " + format_option(*o.default_value) : ", required") +
                     "): " + o.help;
  std::vector<std::string> limits;
  const auto number = [](double v) { return format_option(OptionValue(v)); };
  if (o.min) limits.push_back((o.min_exclusive ? "> " : ">= ") + number(*o.min));
  if (o.max) limits.push_back((o.max_exclusive ? "< " : "<= ") + number(*o.max));
  if (!o.choices.empty()) limits.push_back("one of " + join(o.choices, ", "));
  if (!limits.empty()) text += " [" + join(limits, "; ") + "]";
  return text;
}

std::string describe_section(const SectionSpec& section) {
  std::string text = section.name + ": " + section.help + "\n";
  for (const auto& o : section.options) text += "  " + describe_option(o) + "\n";
  for (const auto& l : section.plugin_lists) {
    text += "  " + l.name + " (list of " + plugin_kind_name(l.kind) + " plugins, default none): " + l.help +
            " (runner plugins --kind " + plugin_kind_name(l.kind) + ")\n";
  }
  return text;
}

}  // namespace difflab
