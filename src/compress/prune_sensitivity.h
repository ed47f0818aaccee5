// Pruning sensitivity analysis (Han et al. 2015, fig. 6): each prunable layer alone is pruned
// by magnitude to a series of sparsities, without fine-tuning, and the test accuracy measured.
// Layers whose accuracy holds up can be pruned harder; ratios_within_budget() turns the curves
// into per-layer ratios.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "compress/prune_masks.h"
#include "data/dataset.h"
#include "data/normalize.h"
#include "minnow/graph.h"

namespace minnow::compress {

struct SensitivityOptions {
  std::vector<double> sparsities = {0.5, 0.7, 0.8, 0.9, 0.95};
  int64_t max_samples = 0;  // evaluate on the first N test samples (0: all)
};

struct LayerSensitivity {
  std::string name, weight;
  int64_t params = 0;
  std::vector<double> accuracy;  // one per sparsity
};

struct SensitivityResult {
  std::vector<double> sparsities;
  double baseline_acc = 0;  // the unpruned model on the same samples
  int64_t samples = 0;
  std::vector<LayerSensitivity> layers;
};

// Leaves `g` as it was (each layer's weight is restored after its curve is measured).
SensitivityResult analyze_sensitivity(Graph& g, const std::vector<PrunableLayer>& layers,
                                      const data::Dataset& test, const data::Normalization& norm,
                                      const SensitivityOptions& opts = {});

// Per layer (weight name): the largest tested sparsity whose accuracy is at most
// `budget_points` percentage points below the baseline; layers with none are left out.
std::map<std::string, double> ratios_within_budget(const SensitivityResult& r,
                                                   double budget_points);

nlohmann::json to_json(const SensitivityResult& r);
void print_sensitivity(const SensitivityResult& r);

}  // namespace minnow::compress
