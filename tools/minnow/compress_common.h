// What every compression command shares (issue: each takes --out, --epochs, --threads, --seed,
// --report-json and writes a before/after report): the flags, loading the model and its data,
// fine-tuning with the standard training loop, and writing model + report at the end.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "cli_common.h"
#include "compress/model_report.h"
#include "train/trainer.h"

namespace minnow::cli {

struct CompressFlags {
  std::string model;  // positional: zoo name, .mnw or .onnx
  DataFlags data;
  std::string out, report;
  int threads = 2;
  uint64_t seed = 0;
  TrainConfig train;  // fine-tuning: --epochs, --batch, --lr, --optimizer, ... (epochs 0: none)
  int latency_iters = 200;
};
// Registers the shared flags (and the positional MODEL when `positional_model`).
void add_compress_flags(CLI::App& cmd, CompressFlags& f, bool positional_model = true);

// A compression run: the loaded model, its data and normalization, and the "before" figures.
struct CompressJob {
  LoadedModel model;
  data::TrainTest data;
  data::Normalization norm;
  compress::ModelReport before;
};
// Loads model and data (a zoo name is built for the data's shape, like `train`), sets threads,
// measures "before". Throws minnow::Error naming a bad flag.
CompressJob start_compress_job(const CompressFlags& f);
// Fine-tunes job.model.graph for f.train.epochs epochs (no-op for 0) with the given hooks set
// on a copy of f.train; returns the trainable parameter count.
int64_t fine_tune(CompressJob& job, const CompressFlags& f, TrainConfig config);
// Measures "after", saves the model to --out (metadata kept, `extra_metadata` merged in), prints
// the before/after table and writes --report-json with `extra` keys added.
void finish_compress_job(CompressJob& job, const CompressFlags& f, compress::ModelReport after_base,
                         const nlohmann::json& extra = nlohmann::json::object());

}  // namespace minnow::cli
