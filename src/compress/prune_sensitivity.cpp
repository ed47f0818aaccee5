#include "compress/prune_sensitivity.h"

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "minnow/error.h"
#include "passes/prune_weights.h"
#include "train/trainer.h"

namespace minnow::compress {
namespace {

// Puts a weight tensor back into the graph when a measurement ends, also by an exception.
class RestoreWeight {
 public:
  RestoreWeight(Graph& g, const std::string& name)
      : slot_(g.initializers.at(name).value), original_(slot_) {}
  ~RestoreWeight() { slot_ = original_; }
  RestoreWeight(const RestoreWeight&) = delete;
  RestoreWeight& operator=(const RestoreWeight&) = delete;
  const Tensor& original() const { return original_; }

 private:
  Tensor& slot_;
  Tensor original_;
};

}  // namespace

SensitivityResult analyze_sensitivity(Graph& g, const std::vector<PrunableLayer>& layers,
                                      const data::Dataset& test, const data::Normalization& norm,
                                      const SensitivityOptions& opts) {
  if (opts.sparsities.empty()) throw Error("--sensitivity needs at least one sparsity");
  for (double s : opts.sparsities) {
    if (!(s > 0 && s <= 1)) {
      throw Error("sensitivity sparsities must be in (0, 1], got " + std::to_string(s));
    }
  }
  if (opts.max_samples < 0) throw Error("--sensitivity-samples must be >= 0");
  data::Dataset subset = test;
  if (opts.max_samples > 0 && opts.max_samples < test.size()) {
    std::vector<int64_t> idx(static_cast<size_t>(opts.max_samples));
    std::iota(idx.begin(), idx.end(), 0);
    subset = test.subset(idx);
  }
  SensitivityResult r;
  r.sparsities = opts.sparsities;
  r.samples = subset.size();
  r.baseline_acc = evaluate_model(g, subset, norm).accuracy;
  for (const PrunableLayer& l : layers) {
    if (!g.initializers.count(l.weight)) {
      throw Error("sensitivity: weight '" + l.weight + "' is not an initializer of the model");
    }
    LayerSensitivity ls{l.node, l.weight, l.params, {}};
    RestoreWeight restore(g, l.weight);
    for (double s : opts.sparsities) {
      Tensor pruned = restore.original().clone();
      passes::prune_smallest(pruned, s);
      g.initializers.at(l.weight).value = pruned;
      ls.accuracy.push_back(evaluate_model(g, subset, norm).accuracy);
    }
    r.layers.push_back(std::move(ls));
  }
  return r;
}

std::map<std::string, double> ratios_within_budget(const SensitivityResult& r,
                                                   double budget_points) {
  if (budget_points < 0) throw Error("--sensitivity-budget must be >= 0 (accuracy points)");
  std::map<std::string, double> out;
  for (const LayerSensitivity& l : r.layers) {
    double best = -1;
    for (size_t i = 0; i < r.sparsities.size() && i < l.accuracy.size(); ++i) {
      const double drop_points = 100.0 * (r.baseline_acc - l.accuracy[i]);
      // A tiny epsilon so that a drop of exactly the budget (up to rounding) qualifies.
      if (drop_points <= budget_points + 1e-9) best = std::max(best, r.sparsities[i]);
    }
    if (best > 0) out[l.weight] = best;
  }
  return out;
}

nlohmann::json to_json(const SensitivityResult& r) {
  nlohmann::json layers = nlohmann::json::array();
  for (const LayerSensitivity& l : r.layers) {
    layers.push_back(
        {{"name", l.name}, {"weight", l.weight}, {"params", l.params}, {"accuracy", l.accuracy}});
  }
  return {{"sparsities", r.sparsities},
          {"baseline_acc", r.baseline_acc},
          {"samples", r.samples},
          {"layers", layers}};
}

void print_sensitivity(const SensitivityResult& r) {
  std::printf(
      "sensitivity: test accuracy with one layer pruned (no fine-tuning), %lld samples, "
      "unpruned %.4f\n",
      static_cast<long long>(r.samples), r.baseline_acc);
  std::printf("  %-24s %10s", "layer", "params");
  for (double s : r.sparsities) std::printf("   s=%-5.3g", s);
  std::printf("\n");
  for (const LayerSensitivity& l : r.layers) {
    std::printf("  %-24s %10lld", l.name.c_str(), static_cast<long long>(l.params));
    for (double a : l.accuracy) std::printf("   %7.4f", a);
    std::printf("\n");
  }
}

}  // namespace minnow::compress
