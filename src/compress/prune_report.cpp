#include "compress/prune_report.h"

#include <cstdio>

#include "minnow/error.h"

namespace minnow::compress {

std::vector<LayerSparsity> layer_sparsity(const Graph& g,
                                          const std::vector<PrunableLayer>& layers) {
  std::vector<LayerSparsity> out;
  for (const PrunableLayer& l : layers) {
    auto it = g.initializers.find(l.weight);
    if (it == g.initializers.end() || it->second.value.dtype() != DType::kF32) {
      throw Error("sparsity report: weight '" + l.weight + "' of node '" + l.node +
                  "' is not an f32 initializer of the model");
    }
    const Tensor& t = it->second.value;
    const float* p = t.f32();
    int64_t nz = 0;
    for (int64_t i = 0; i < t.numel(); ++i) nz += p[i] != 0.0f;
    out.push_back(LayerSparsity{l.node, l.weight, t.numel(), nz});
  }
  return out;
}

double overall_sparsity(const std::vector<LayerSparsity>& layers) {
  LayerSparsity all;
  for (const LayerSparsity& l : layers) {
    all.params += l.params;
    all.nonzero += l.nonzero;
  }
  return all.sparsity();
}

nlohmann::json to_json(const std::vector<LayerSparsity>& layers) {
  nlohmann::json j = nlohmann::json::array();
  for (const LayerSparsity& l : layers) {
    j.push_back({{"name", l.name},
                 {"weight", l.weight},
                 {"params", l.params},
                 {"nonzero", l.nonzero},
                 {"sparsity", l.sparsity()}});
  }
  return j;
}

void print_layer_sparsity(const std::vector<LayerSparsity>& layers) {
  std::printf("  %-24s %12s %12s %9s\n", "layer", "params", "nonzero", "sparsity");
  LayerSparsity total{"total", "", 0, 0};
  for (const LayerSparsity& l : layers) {
    std::printf("  %-24s %12lld %12lld %8.2f%%\n", l.name.c_str(), static_cast<long long>(l.params),
                static_cast<long long>(l.nonzero), 100.0 * l.sparsity());
    total.params += l.params;
    total.nonzero += l.nonzero;
  }
  std::printf(
      "  %-24s %12lld %12lld %8.2f%%   (%.1fx fewer non-zero weights)\n", "total",
      static_cast<long long>(total.params), static_cast<long long>(total.nonzero),
      100.0 * total.sparsity(),
      total.nonzero ? static_cast<double>(total.params) / static_cast<double>(total.nonzero) : 0.0);
}

}  // namespace minnow::compress
