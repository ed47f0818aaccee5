// minnow finetune: transfer learning. A new classification head for the data's classes,
// optional freezing by node-name globs, optional LoRA adapters (passes/lora.h) so that only the
// adapters and the head train; the trainable-parameter count is reported.

#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "cli_common.h"
#include "compress/finetune.h"
#include "compress_common.h"
#include "minnow/error.h"
#include "passes/lora.h"

namespace minnow::cli {
namespace {

struct FinetuneArgs {
  CompressFlags f;
  int64_t classes = 0;  // 0: from the data
  bool keep_head = false;
  std::vector<std::string> freeze;
  int64_t lora_rank = 0;  // 0: no LoRA
  double lora_alpha = 8.0;
  std::vector<std::string> lora_targets;
  bool merge = false;
};

std::set<std::string> trainable_names(const Graph& g) {
  std::set<std::string> s;
  for (const auto& [name, init] : g.initializers) {
    if (init.trainable) s.insert(name);
  }
  return s;
}

void run_finetune(FinetuneArgs& a) {
  CompressFlags& f = a.f;
  if (f.train.epochs <= 0) throw Error("--epochs must be >= 1: fine-tuning is training");
  if (a.lora_rank < 0) throw Error("--lora-rank must be >= 1 (or 0 for no LoRA)");
  if (a.lora_rank == 0 && (!a.lora_targets.empty() || a.merge)) {
    throw Error("--lora-targets and --merge need --lora-rank R");
  }
  CompressJob job = start_compress_job(f);
  Graph& g = job.model.graph;
  const std::set<std::string> originally_trainable = trainable_names(g);
  const int64_t classes = a.classes > 0 ? a.classes : job.data.train.num_classes;
  std::string head = compress::find_head(g);
  if (a.keep_head) {
    const int64_t have = g.infer_shapes().at(g.outputs[0].name).shape.back();
    if (have != classes) {
      throw Error("--keep-head: the model has " + std::to_string(have) + " classes, the data " +
                  std::to_string(classes));
    }
  } else {
    compress::replace_head(g, classes, f.seed);
  }
  const Node& head_node = *g.find_node(head);
  std::vector<std::string> head_params(head_node.inputs.begin() + 1, head_node.inputs.end());
  std::vector<std::string> frozen = compress::freeze_nodes(g, a.freeze);
  nlohmann::json extra = {{"command", "finetune"}, {"head", head}, {"classes", classes}};
  if (a.lora_rank > 0) {
    compress::freeze_all(g);
    LoraOptions lo;
    lo.rank = a.lora_rank;
    lo.alpha = a.lora_alpha;
    lo.targets = a.lora_targets;
    lo.exclude = {head};
    lo.seed = f.seed;
    LoraResult r = add_lora(g, lo);
    extra["lora"] = {{"rank", lo.rank},
                     {"alpha", lo.alpha},
                     {"adapted", r.adapted},
                     {"skipped", r.skipped},
                     {"adapter_params", r.adapter_params}};
    std::printf("LoRA rank %lld on %zu nodes (%lld adapter parameters)\n",
                static_cast<long long>(lo.rank), r.adapted.size(),
                static_cast<long long>(r.adapter_params));
  }
  for (const std::string& p : head_params) {
    if (!p.empty() && g.initializers.count(p)) g.initializers.at(p).trainable = true;
  }
  const int64_t total = compress::count_params(g);
  compress::ModelReport after;
  after.trainable_params = fine_tune(job, f, f.train);
  extra["frozen"] = frozen;
  extra["params_during_training"] = total;
  extra["trainable_fraction"] =
      total > 0 ? static_cast<double>(after.trainable_params) / static_cast<double>(total) : 0.0;
  std::printf("trainable parameters: %lld of %lld (%.2f%%)\n",
              static_cast<long long>(after.trainable_params), static_cast<long long>(total),
              100.0 * extra["trainable_fraction"].get<double>());
  // The freezing belongs to this run, not to the saved model; an unmerged LoRA model keeps its
  // base frozen and remembers what to unfreeze when merged.
  if (a.lora_rank > 0 && !a.merge) {
    nlohmann::json names = nlohmann::json::array();
    for (const std::string& n : originally_trainable) names.push_back(n);
    job.model.metadata[compress::kLoraFrozenMetadata] = names;
  } else {
    if (a.merge) extra["merged"] = merge_lora(g);
    compress::restore_trainable(g, originally_trainable);
    job.model.metadata.erase(compress::kLoraFrozenMetadata);
  }
  finish_compress_job(job, f, after, extra);
}

}  // namespace

void add_finetune_command(CLI::App& app) {
  auto a = std::make_shared<FinetuneArgs>();
  CLI::App* c = app.add_subcommand(
      "finetune", "Transfer learning: new head, freezing by node pattern, LoRA adapters");
  add_compress_flags(*c, a->f, true);
  c->add_option("--classes", a->classes, "Classes of the new head (default: from the data)");
  c->add_flag("--keep-head", a->keep_head, "Keep the classifier head (same classes)");
  c->add_option("--freeze", a->freeze, "Freeze the parameters of nodes matching these globs");
  c->add_option("--lora-rank", a->lora_rank, "LoRA rank (0: no LoRA)")->capture_default_str();
  c->add_option("--lora-alpha", a->lora_alpha, "LoRA alpha (scale = alpha / rank)")
      ->capture_default_str();
  c->add_option("--lora-targets", a->lora_targets,
                "Node-name globs of the Linear / 1x1 Conv2d nodes to adapt (default: all)")
      ->delimiter(',');
  c->add_flag("--merge", a->merge, "Fold the adapters into the weights before saving");
  c->callback([a] { run_finetune(*a); });
}

}  // namespace minnow::cli
