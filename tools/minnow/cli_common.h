// Shared pieces of the minnow subcommands: model loading, threads, reports, normalization.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "data/normalize.h"
#include "data/sources.h"
#include "minnow/graph.h"
#include "minnow/zoo.h"

namespace minnow::cli {

// A model given on the command line: a zoo name, a .mnw file or an .onnx file (imported).
struct LoadedModel {
  Graph graph;
  nlohmann::json metadata = nlohmann::json::object();
  std::string source;      // file path or zoo name
  int64_t file_bytes = 0;  // 0 for zoo models
};
LoadedModel load_model(const std::string& spec, const zoo::ZooOptions& zoo_options);
bool is_onnx_path(const std::string& path);  // by the .onnx extension
// The normalization stored with a model, or the given fallback when it has none.
data::Normalization model_normalization(const nlohmann::json& metadata,
                                        const data::Normalization& fallback);

// The --data flags shared by train and eval: the dataset spec and the options that shape it
// (text tokenization, image resizing). Options written into the spec ("spam?max_len=64")
// override these flags.
struct DataFlags {
  std::string spec;
  int64_t max_len = 256;
  int64_t vocab_size = 20000;
  std::string tokens = "word";
  std::string resize;  // "HxW" or "N"; empty keeps the images' size
};
void add_data_flags(CLI::App& cmd, DataFlags& flags);
// Loads the dataset. A model's stored tokenizer (metadata "tokenizer") is reused so that eval
// and run encode text exactly as training did.
data::TrainTest load_data(const DataFlags& flags, const nlohmann::json& model_metadata);
// The normalization for a dataset: the model's stored one, else computed from the training
// split; none for token-id data.
data::Normalization data_normalization(const nlohmann::json& metadata, const data::Dataset& train);

// Sets the thread count for OpenMP and oneDNN. Throws minnow::Error for T < 1.
void set_threads(int threads);
// Writes `report` to `path` atomically (no-op for an empty path).
void write_report(const std::string& path, const nlohmann::json& report);

// Registers each subcommand on `app`; each returns after wiring its callback.
void add_train_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_inspect_command(CLI::App& app);
void add_run_command(CLI::App& app);
void add_zoo_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_convert_command(CLI::App& app);
void add_export_command(CLI::App& app);
void add_factorize_command(CLI::App& app);
void add_cluster_command(CLI::App& app);
void add_quantize_command(CLI::App& app);
void add_qat_command(CLI::App& app);
void add_distill_command(CLI::App& app);
void add_finetune_command(CLI::App& app);
void add_merge_lora_command(CLI::App& app);
void add_prune_command(CLI::App& app);

}  // namespace minnow::cli
