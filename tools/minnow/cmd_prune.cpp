// minnow prune: unstructured magnitude pruning of Conv2d/Linear weights — per layer, with one
// global threshold, or gradually during fine-tuning on the Zhu & Gupta cubic schedule — with
// masks that fine-tuning respects, a per-layer sparsity report and sensitivity analysis; and
// structured channel pruning (compress/channel_prune.h) that physically removes channels.

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cli_common.h"
#include "compress/channel_prune.h"
#include "compress/channel_slimming.h"
#include "compress/prune_masks.h"
#include "compress/prune_report.h"
#include "compress/prune_schedule.h"
#include "compress/prune_sensitivity.h"
#include "compress_common.h"
#include "minnow/error.h"
#include "passes/prune_weights.h"

namespace minnow::cli {
namespace {

struct PruneArgs {
  CompressFlags common;
  std::string method;
  double sparsity = -1;  // -1: not given
  std::string per_layer;
  std::vector<std::string> exclude;
  // gradual
  int64_t begin_step = -1, end_step = -1, frequency = 0;
  double begin_epoch = -1, end_epoch = -1;
  double initial_sparsity = 0;
  bool global_threshold = false;
  // sensitivity
  bool sensitivity = false;
  double sensitivity_budget = -1;
  int64_t sensitivity_samples = 0;
  std::vector<double> sensitivity_sparsities = {0.5, 0.7, 0.8, 0.9, 0.95};
  // channel
  double macs_reduction = -1;
  std::string criterion = "l1";
  int64_t channel_multiple = 8;
  double slimming_l1 = 0;
  int64_t slimming_epochs = 0;
};

// --per-layer: a JSON object ({"fc1": 0.9}), a .json file holding one, or "name=ratio,...".
// Names are node or weight names or globs over them; later entries override earlier ones.
std::vector<std::pair<std::string, double>> parse_per_layer(const std::string& spec) {
  std::vector<std::pair<std::string, double>> out;
  if (spec.empty()) return out;
  nlohmann::json j;
  bool is_json = false;
  if (spec.front() == '{') {
    j = nlohmann::json::parse(spec, nullptr, false);
    if (j.is_discarded()) throw Error("--per-layer: not valid JSON: " + spec);
    is_json = true;
  } else if (spec.size() > 5 && spec.compare(spec.size() - 5, 5, ".json") == 0) {
    std::ifstream in(spec);
    if (!in) throw Error("--per-layer " + spec + ": cannot open the file");
    std::stringstream ss;
    ss << in.rdbuf();
    j = nlohmann::json::parse(ss.str(), nullptr, false);
    if (j.is_discarded()) throw Error("--per-layer " + spec + ": not valid JSON");
    is_json = true;
  }
  if (is_json) {
    if (!j.is_object()) throw Error("--per-layer: expected a JSON object {\"layer\": ratio, ...}");
    for (const auto& [k, v] : j.items()) {
      if (!v.is_number()) throw Error("--per-layer: ratio of '" + k + "' is not a number");
      out.emplace_back(k, v.get<double>());
    }
    return out;
  }
  std::stringstream ss(spec);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size()) {
      throw Error("--per-layer: '" + item + "' is not name=ratio");
    }
    const std::string value = item.substr(eq + 1);
    size_t used = 0;
    double r = 0;
    try {
      r = std::stod(value, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != value.size()) throw Error("--per-layer: '" + value + "' is not a number");
    out.emplace_back(item.substr(0, eq), r);
  }
  return out;
}

void check_ratio(double r, const std::string& what) {
  if (!(r >= 0 && r < 1)) throw Error(what + " must be in [0, 1), got " + std::to_string(r));
}

// The sparsity of every layer that is pruned: --sparsity, then sensitivity-budget ratios,
// then --per-layer entries, each overriding the one before.
std::map<std::string, double> layer_ratios(const PruneArgs& a,
                                           const std::vector<compress::PrunableLayer>& layers,
                                           const std::map<std::string, double>& budget,
                                           std::map<std::string, double>* explicit_ratios) {
  std::map<std::string, double> r;
  if (a.sparsity >= 0) {
    for (const auto& l : layers) r[l.weight] = a.sparsity;
  }
  for (const auto& [w, s] : budget) r[w] = s;
  for (const auto& [pattern, s] : parse_per_layer(a.per_layer)) {
    check_ratio(s, "--per-layer ratio of '" + pattern + "'");
    bool matched = false;
    for (const auto& l : layers) {
      if (compress::name_matches(pattern, l.node) || compress::name_matches(pattern, l.weight)) {
        r[l.weight] = s;
        (*explicit_ratios)[l.weight] = s;
        matched = true;
      }
    }
    if (!matched) {
      std::string names;
      for (const auto& l : layers) names += (names.empty() ? "" : ", ") + l.node;
      throw Error("--per-layer: '" + pattern + "' matches no prunable layer (layers: " + names +
                  ")");
    }
  }
  return r;
}

compress::GradualSchedule make_schedule(const PruneArgs& a, int64_t steps_per_epoch,
                                        int64_t total_steps) {
  if (a.begin_step >= 0 && a.begin_epoch >= 0) {
    throw Error("give --begin-step or --begin-epoch, not both");
  }
  if (a.end_step >= 0 && a.end_epoch >= 0) throw Error("give --end-step or --end-epoch, not both");
  auto epoch_to_step = [&](double e, const char* flag) {
    if (!(e >= 0)) throw Error(std::string(flag) + " must be >= 0");
    return static_cast<int64_t>(std::llround(e * static_cast<double>(steps_per_epoch)));
  };
  compress::GradualSchedule s;
  s.initial_sparsity = a.initial_sparsity;
  s.begin_step = a.begin_step >= 0    ? a.begin_step
                 : a.begin_epoch >= 0 ? epoch_to_step(a.begin_epoch, "--begin-epoch")
                                      : 0;
  // Default: reach the final sparsity two thirds into fine-tuning, then recover at it.
  s.end_step = a.end_step >= 0    ? a.end_step
               : a.end_epoch >= 0 ? epoch_to_step(a.end_epoch, "--end-epoch")
                                  : s.begin_step + (total_steps - s.begin_step) * 2 / 3;
  s.frequency = a.frequency > 0 ? a.frequency
                                : std::max<int64_t>(
                                      1, std::min<int64_t>(100, (s.end_step - s.begin_step) / 10));
  if (a.frequency < 0) throw Error("--frequency must be positive");
  compress::validate_schedule(s, total_steps);
  return s;
}

// --method channel: optional network-slimming training (L1 on BN scales), then channels
// removed until the MACs drop by --macs-reduction, then fine-tuning of the smaller graph.
void run_channel_prune(const PruneArgs& a) {
  if (!(a.macs_reduction > 0 && a.macs_reduction < 1)) {
    throw Error("--method channel needs --macs-reduction R in (0, 1)");
  }
  if (a.slimming_l1 > 0 && a.slimming_epochs <= 0) {
    throw Error("--slimming-l1 needs --slimming-epochs > 0 (L1 training before pruning)");
  }
  if (a.sparsity >= 0 || !a.per_layer.empty() || a.sensitivity || a.sensitivity_budget >= 0) {
    throw Error(
        "--sparsity, --per-layer and --sensitivity are for unstructured pruning, not "
        "--method channel");
  }
  CompressJob job = start_compress_job(a.common);
  Graph& g = job.model.graph;
  nlohmann::json extra = {{"command", "prune"}, {"method", "channel"}};
  if (a.slimming_l1 > 0) {
    TrainConfig slim = a.common.train;
    slim.epochs = a.slimming_epochs;
    slim.before_step = compress::slimming_hook(g, a.slimming_l1);
    std::printf("network slimming: %lld epochs with L1 %.3g on BatchNorm scales\n",
                static_cast<long long>(a.slimming_epochs), a.slimming_l1);
    fine_tune(job, a.common, slim);
    extra["slimming"] = {{"l1", a.slimming_l1}, {"epochs", a.slimming_epochs}};
  }
  compress::ChannelPruneOptions o;
  o.macs_reduction = a.macs_reduction;
  o.criterion = a.criterion;
  o.exclude = a.exclude;
  o.channel_multiple = a.channel_multiple;
  const compress::ChannelPruneResult r = compress::channel_prune(g, o);
  std::printf("channel pruning (%s): MACs %lld -> %lld, %d of %d channel groups pruned\n",
              a.criterion.c_str(), static_cast<long long>(r.macs_before),
              static_cast<long long>(r.macs_after), r.pruned_groups, r.groups);
  for (const PrunedLayer& l : r.layers) {
    if (l.channels_after == l.channels_before) continue;
    std::printf("  %-32s %5lld -> %5lld channels\n", l.node.c_str(),
                static_cast<long long>(l.channels_before),
                static_cast<long long>(l.channels_after));
  }
  extra["channels"] = compress::to_json(r);
  extra["macs_reduction"] = a.macs_reduction;
  compress::ModelReport after;
  const int64_t trainable = fine_tune(job, a.common, a.common.train);
  if (a.common.train.epochs > 0 || a.slimming_l1 > 0) after.trainable_params = trainable;
  job.model.metadata["channel_pruning"] = {
      {"criterion", a.criterion}, {"macs_before", r.macs_before}, {"macs_after", r.macs_after}};
  finish_compress_job(job, a.common, after, extra);
}

void run_prune(PruneArgs& a) {
  const std::string& m = a.method;
  if (m == "channel") return run_channel_prune(a);
  if (a.macs_reduction >= 0 || a.slimming_l1 > 0) {
    throw Error("--macs-reduction and --slimming-l1 are for --method channel");
  }
  if (m != "magnitude" && m != "global" && m != "gradual") {
    throw Error("--method must be magnitude, global, gradual or channel, got '" + m + "'");
  }
  if (a.sparsity >= 0) check_ratio(a.sparsity, "--sparsity");
  if (a.sparsity < 0 && a.sparsity != -1) throw Error("--sparsity must be in [0, 1)");
  if (a.sensitivity_budget >= 0 && !a.sensitivity) a.sensitivity = true;
  if (a.sensitivity_budget >= 0 && m == "global") {
    throw Error(
        "--sensitivity-budget picks per-layer ratios: use it with --method magnitude "
        "or gradual");
  }
  if (m == "global" && a.sparsity < 0) throw Error("--method global needs --sparsity");
  if (a.sparsity < 0 && a.per_layer.empty() && a.sensitivity_budget < 0 && !a.sensitivity) {
    throw Error("give --sparsity S (or --per-layer / --sensitivity-budget) for --method " + m);
  }
  if (m == "gradual" && a.common.train.epochs <= 0) {
    throw Error("--method gradual prunes during fine-tuning: give --epochs > 0");
  }

  CompressJob job = start_compress_job(a.common);
  Graph& g = job.model.graph;
  const std::vector<compress::PrunableLayer> layers = compress::prunable_layers(g, a.exclude);
  if (layers.empty())
    throw Error("'" + job.model.source + "' has no prunable Conv2d/Linear weight");
  nlohmann::json extra = {{"command", "prune"}, {"method", m}};
  if (a.sparsity >= 0) extra["target_sparsity"] = a.sparsity;
  if (!a.exclude.empty()) extra["exclude"] = a.exclude;

  std::map<std::string, double> budget;
  if (a.sensitivity) {
    compress::SensitivityOptions so;
    so.sparsities = a.sensitivity_sparsities;
    so.max_samples = a.sensitivity_samples;
    compress::SensitivityResult sr =
        compress::analyze_sensitivity(g, layers, job.data.test, job.norm, so);
    compress::print_sensitivity(sr);
    extra["sensitivity"] = compress::to_json(sr);
    if (a.sensitivity_budget >= 0) {
      budget = compress::ratios_within_budget(sr, a.sensitivity_budget);
      extra["sensitivity"]["budget_points"] = a.sensitivity_budget;
      extra["sensitivity"]["chosen"] = budget;
      std::printf("sensitivity budget %.3g points:", a.sensitivity_budget);
      for (const auto& l : layers) {
        auto it = budget.find(l.weight);
        std::printf(" %s=%.3g", l.node.c_str(), it == budget.end() ? 0.0 : it->second);
      }
      std::printf("\n");
    }
  }

  std::map<std::string, double> explicit_ratios;
  const std::map<std::string, double> ratios = layer_ratios(a, layers, budget, &explicit_ratios);
  passes::MagnitudePlan plan;
  const bool global = m == "global" || (m == "gradual" && a.global_threshold);
  if (global) {
    plan.global_sparsity = a.sparsity;
    for (const auto& l : layers) {
      if (explicit_ratios.count(l.weight)) {
        plan.per_layer[l.weight] = explicit_ratios.at(l.weight);
      } else {
        plan.global.push_back(l.weight);
      }
    }
  } else {
    plan.per_layer = ratios;
  }

  TrainConfig config = a.common.train;
  std::unique_ptr<compress::GradualPruner> gradual;
  if (m == "gradual") {
    const int64_t steps_per_epoch =
        (job.data.train.size() + config.batch - 1) / std::max<int64_t>(1, config.batch);
    const compress::GradualSchedule s =
        make_schedule(a, steps_per_epoch, steps_per_epoch * config.epochs);
    extra["schedule"] = {{"initial_sparsity", s.initial_sparsity},
                         {"begin_step", s.begin_step},
                         {"end_step", s.end_step},
                         {"frequency", s.frequency},
                         {"steps_per_epoch", steps_per_epoch}};
    std::printf("gradual pruning: steps %lld..%lld every %lld (%lld steps per epoch)\n",
                static_cast<long long>(s.begin_step), static_cast<long long>(s.end_step),
                static_cast<long long>(s.frequency), static_cast<long long>(steps_per_epoch));
    gradual = std::make_unique<compress::GradualPruner>(g, layers, plan, s);
    gradual->install(config);
  } else {
    passes::MagnitudePruneResult pr = passes::prune_magnitude(g, plan);
    g = std::move(pr.graph);
    if (config.epochs > 0) {
      auto masks =
          std::make_shared<compress::PruneMasks>(compress::PruneMasks::from_zeros(g, layers));
      compress::PruneMasks::install(masks, config);
    }
  }

  compress::ModelReport after;
  const int64_t trainable = fine_tune(job, a.common, config);
  if (config.epochs > 0) after.trainable_params = trainable;
  if (gradual) {
    nlohmann::json events = nlohmann::json::array();
    for (const auto& e : gradual->events()) {
      events.push_back({{"step", e.step}, {"target", e.target}, {"achieved", e.achieved}});
    }
    extra["schedule"]["events"] = events;
  }

  const std::vector<compress::LayerSparsity> sparsity = compress::layer_sparsity(g, layers);
  std::printf("per-layer sparsity (%s):\n", m.c_str());
  compress::print_layer_sparsity(sparsity);
  const double overall = compress::overall_sparsity(sparsity);
  extra["layers"] = compress::to_json(sparsity);
  extra["overall_sparsity"] = overall;
  nlohmann::json meta_layers = nlohmann::json::object();
  for (const auto& l : sparsity) meta_layers[l.weight] = l.sparsity();
  job.model.metadata["pruning"] = {
      {"method", m}, {"overall_sparsity", overall}, {"layers", meta_layers}};
  finish_compress_job(job, a.common, after, extra);
}

}  // namespace

void add_prune_command(CLI::App& app) {
  auto a = std::make_shared<PruneArgs>();
  CLI::App* c = app.add_subcommand(
      "prune", "Prune weights (magnitude, global, gradual) and fine-tune with masks held");
  add_compress_flags(*c, a->common);
  c->add_option("--method", a->method, "magnitude | global | gradual | channel")->required();
  c->add_option("--sparsity", a->sparsity, "Fraction of each layer's weights set to zero [0, 1)");
  c->add_option("--per-layer", a->per_layer,
                "Per-layer sparsity: JSON object, .json file or name=ratio,... (globs allowed)");
  c->add_option("--exclude", a->exclude, "Layers (node/weight name globs) never pruned")
      ->delimiter(',');
  c->add_option("--begin-step", a->begin_step, "gradual: first pruning step (t0)");
  c->add_option("--end-step", a->end_step, "gradual: step where the final sparsity is reached");
  c->add_option("--begin-epoch", a->begin_epoch, "gradual: t0 in epochs (fractions allowed)");
  c->add_option("--end-epoch", a->end_epoch, "gradual: end of pruning in epochs");
  c->add_option("--frequency", a->frequency, "gradual: prune every this many steps (Δt)");
  c->add_option("--initial-sparsity", a->initial_sparsity, "gradual: s_i")->capture_default_str();
  c->add_flag("--global-threshold", a->global_threshold,
              "gradual: one magnitude threshold over all layers instead of one per layer");
  c->add_flag("--sensitivity", a->sensitivity,
              "Measure accuracy with each layer alone pruned at several sparsities");
  c->add_option("--sensitivity-budget", a->sensitivity_budget,
                "Pick each layer's sparsity: the largest whose accuracy loss <= this many points");
  c->add_option("--sensitivity-samples", a->sensitivity_samples,
                "Test samples per sensitivity measurement (0: all)")
      ->capture_default_str();
  c->add_option("--sensitivity-sparsities", a->sensitivity_sparsities, "Sparsities to test")
      ->delimiter(',');
  c->add_option("--macs-reduction", a->macs_reduction,
                "channel: fraction of the MACs to remove by removing channels (0, 1)");
  c->add_option("--criterion", a->criterion, "channel: l1 | bn-scale")->capture_default_str();
  c->add_option("--channel-multiple", a->channel_multiple,
                "channel: pruned layers keep a multiple of this many channels (the kernels' "
                "vector width; 1: any count)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  c->add_option("--slimming-l1", a->slimming_l1,
                "channel: L1 penalty on BatchNorm scales during --slimming-epochs before pruning");
  c->add_option("--slimming-epochs", a->slimming_epochs,
                "channel: epochs of slimming training before pruning")
      ->capture_default_str();
  c->callback([a] { run_prune(*a); });
}

}  // namespace minnow::cli
