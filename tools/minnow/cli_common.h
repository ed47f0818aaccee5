// Shared pieces of the minnow subcommands: model loading, threads, reports, normalization.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "data/normalize.h"
#include "minnow/graph.h"
#include "minnow/zoo.h"

namespace minnow::cli {

// A model given on the command line: a zoo name or a .mnw file.
struct LoadedModel {
  Graph graph;
  nlohmann::json metadata = nlohmann::json::object();
  std::string source;      // file path or zoo name
  int64_t file_bytes = 0;  // 0 for zoo models
};
LoadedModel load_model(const std::string& spec, const zoo::ZooOptions& zoo_options);
// The normalization stored with a model, or the given fallback when it has none.
data::Normalization model_normalization(const nlohmann::json& metadata,
                                        const data::Normalization& fallback);

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

}  // namespace minnow::cli
