// What every compression command shares (issue: each takes --out, --epochs, --threads, --seed,
// --report-json and writes a before/after report): the flags, loading the model and its data,
// fine-tuning with the standard training loop, and writing model + report at the end.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "cli_common.h"
#include "compress/model_report.h"
#include "train/trainer.h"

namespace minnow::cli {

// How a zoo model named on the command line is shaped (`--hidden`, `--width`, `--dropout`, as
// for `minnow train`). Only a zoo name takes them: a model file already has its shape.
struct ZooShapeFlags {
  std::vector<int64_t> hidden;  // mlp; empty: the zoo default
  double width = 1.0;
  double dropout = 0.0;
  bool any() const { return !hidden.empty() || width != 1.0 || dropout != 0.0; }
};

struct CompressFlags {
  std::string model;  // positional: zoo name, .mnw or .onnx
  ZooShapeFlags zoo;
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
// The options that build zoo model `f.model` for data `d`: its sample shape and classes, the
// seed, and f.zoo.
zoo::ZooOptions zoo_options_for(const CompressFlags& f, const data::TrainTest& d);
// Loads model and data (a zoo name is built for the data's shape and f.zoo, like `train`), sets
// threads, measures "before" unless `measure_before` is false (distill measures the teacher
// instead). Throws minnow::Error naming a bad flag.
CompressJob start_compress_job(const CompressFlags& f, bool measure_before = true);
// Fine-tunes job.model.graph for f.train.epochs epochs (no-op for 0) with the given hooks set
// on a copy of f.train; returns the trainable parameter count.
int64_t fine_tune(CompressJob& job, const CompressFlags& f, TrainConfig config,
                  TrainResult* result = nullptr);
// Measures "after", saves the model to --out (metadata kept, `extra_metadata` merged in), prints
// the before/after table and writes --report-json with `extra` keys added.
void finish_compress_job(CompressJob& job, const CompressFlags& f, compress::ModelReport after_base,
                         const nlohmann::json& extra = nlohmann::json::object());

}  // namespace minnow::cli
