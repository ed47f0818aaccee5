// Per-layer sparsity of the prunable weights: the table `minnow prune` prints and the
// "layers" array of its JSON report.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "compress/prune_masks.h"
#include "minnow/graph.h"

namespace minnow::compress {

struct LayerSparsity {
  std::string name;  // node name
  std::string weight;
  int64_t params = 0;
  int64_t nonzero = 0;
  double sparsity() const {
    return params ? 1.0 - static_cast<double>(nonzero) / static_cast<double>(params) : 0.0;
  }
};

std::vector<LayerSparsity> layer_sparsity(const Graph& g, const std::vector<PrunableLayer>& layers);
// Over all the given layers together.
double overall_sparsity(const std::vector<LayerSparsity>& layers);
// [{name, weight, params, nonzero, sparsity}, ...]
nlohmann::json to_json(const std::vector<LayerSparsity>& layers);
void print_layer_sparsity(const std::vector<LayerSparsity>& layers);

}  // namespace minnow::compress
