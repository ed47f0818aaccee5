// minnow merge-lora: folds a LoRA model's adapters into its base weights (passes/lora.h), giving
// the plain architecture back, trainable as before fine-tuning froze it.

#include <cstdio>
#include <memory>
#include <set>
#include <string>

#include "cli_common.h"
#include "compress/finetune.h"
#include "compress/model_report.h"
#include "io/mnw.h"
#include "minnow/error.h"
#include "passes/lora.h"

namespace minnow::cli {
namespace {

struct MergeArgs {
  std::string in, out;
};

void run_merge_lora(const MergeArgs& a) {
  if (a.out.size() < 4 || a.out.compare(a.out.size() - 4, 4, ".mnw") != 0) {
    throw Error("--out " + a.out + ": the output must be a .mnw file");
  }
  io::MnwContents m = io::load_mnw(a.in);
  const int64_t before = compress::count_params(m.graph);
  const int merged = merge_lora(m.graph);
  if (merged == 0) throw Error(a.in + ": the model has no LoRA adapters");
  if (m.metadata.is_object() && m.metadata.contains(compress::kLoraFrozenMetadata)) {
    std::set<std::string> names;
    for (const auto& n : m.metadata[compress::kLoraFrozenMetadata])
      names.insert(n.get<std::string>());
    compress::restore_trainable(m.graph, names);
    m.metadata.erase(compress::kLoraFrozenMetadata);
  }
  // A merged model is a new model, not the checkpoint of a run: no optimizer or trainer state.
  m.optimizer_state.clear();
  m.trainer_state = nlohmann::json::object();
  io::save_mnw(a.out, m);
  std::printf("merged %d LoRA adapters: %lld -> %lld parameters, wrote %s\n", merged,
              static_cast<long long>(before),
              static_cast<long long>(compress::count_params(m.graph)), a.out.c_str());
}

}  // namespace

void add_merge_lora_command(CLI::App& app) {
  auto a = std::make_shared<MergeArgs>();
  CLI::App* c =
      app.add_subcommand("merge-lora", "Fold a LoRA model's adapters into its base weights");
  c->add_option("model", a->in, "LoRA model (.mnw)")->required();
  c->add_option("--out", a->out, "Merged model (.mnw)")->required();
  c->callback([a] { run_merge_lora(*a); });
}

}  // namespace minnow::cli
