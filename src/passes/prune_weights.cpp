#include "passes/prune_weights.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "minnow/error.h"

namespace minnow::passes {
namespace {

void check_sparsity(double s, const std::string& what) {
  if (!(s >= 0.0 && s <= 1.0)) {
    throw Error("sparsity of " + what + " must be in [0, 1], got " + std::to_string(s));
  }
}

void check_f32(const Tensor& t, const std::string& name) {
  if (t.dtype() != DType::kF32) {
    throw Error("magnitude pruning: weight '" + name + "' is " +
                std::string(dtype_name(t.dtype())) + ", expected f32");
  }
}

int64_t count_zeros(const Tensor& t) {
  const float* p = t.f32();
  int64_t z = 0;
  for (int64_t i = 0; i < t.numel(); ++i) z += p[i] == 0.0f;
  return z;
}

// Zeroes exactly `k` of the smallest magnitudes across `ws`: everything strictly below the
// k-th smallest magnitude, then entries equal to it in (tensor, index) order until k are zero.
void zero_k_smallest(const std::vector<Tensor*>& ws, int64_t k) {
  if (k <= 0) return;
  std::vector<float> mags;
  for (const Tensor* w : ws) {
    const float* p = w->f32();
    for (int64_t i = 0; i < w->numel(); ++i) mags.push_back(std::fabs(p[i]));
  }
  k = std::min<int64_t>(k, static_cast<int64_t>(mags.size()));
  auto kth = mags.begin() + (k - 1);
  std::nth_element(mags.begin(), kth, mags.end());
  const float tau = *kth;
  int64_t below = 0;
  for (const Tensor* w : ws) {
    const float* p = w->f32();
    for (int64_t i = 0; i < w->numel(); ++i) below += std::fabs(p[i]) < tau;
  }
  int64_t ties_to_zero = k - below;
  for (Tensor* w : ws) {
    float* p = w->f32();
    for (int64_t i = 0; i < w->numel(); ++i) {
      const float a = std::fabs(p[i]);
      if (a < tau) {
        p[i] = 0.0f;
      } else if (a == tau && ties_to_zero > 0) {
        p[i] = 0.0f;
        --ties_to_zero;
      }
    }
  }
}

int64_t target_zeros(double sparsity, int64_t n) {
  return static_cast<int64_t>(std::llround(sparsity * static_cast<double>(n)));
}

}  // namespace

int64_t prune_smallest(Tensor& w, double sparsity) {
  check_sparsity(sparsity, "a weight");
  check_f32(w, "(tensor)");
  zero_k_smallest({&w}, target_zeros(sparsity, w.numel()));
  return count_zeros(w);
}

void prune_smallest_global(const std::vector<Tensor*>& ws, double sparsity) {
  check_sparsity(sparsity, "the global threshold");
  int64_t total = 0;
  for (const Tensor* w : ws) {
    check_f32(*w, "(tensor)");
    total += w->numel();
  }
  zero_k_smallest(ws, target_zeros(sparsity, total));
}

void apply_magnitude_plan(std::map<std::string, Tensor>& weights, const MagnitudePlan& plan) {
  auto get = [&](const std::string& name) -> Tensor& {
    auto it = weights.find(name);
    if (it == weights.end()) {
      throw Error("magnitude pruning: weight '" + name + "' is not among the prunable weights");
    }
    check_f32(it->second, name);
    return it->second;
  };
  std::set<std::string> in_global(plan.global.begin(), plan.global.end());
  if (in_global.size() != plan.global.size()) {
    throw Error("magnitude pruning: a weight is listed twice in the global group");
  }
  for (const auto& [name, s] : plan.per_layer) {
    if (in_global.count(name)) {
      throw Error("magnitude pruning: weight '" + name +
                  "' has its own sparsity and is also in the global group");
    }
    check_sparsity(s, "'" + name + "'");
    get(name);
  }
  std::vector<Tensor*> group;
  for (const std::string& name : plan.global) group.push_back(&get(name));
  for (auto& [name, s] : plan.per_layer) prune_smallest(get(name), s);
  if (!group.empty()) prune_smallest_global(group, plan.global_sparsity);
}

MagnitudePruneResult prune_magnitude(const Graph& g, const MagnitudePlan& plan) {
  MagnitudePruneResult r;
  r.graph = g;
  std::map<std::string, Tensor> weights;
  auto take = [&](const std::string& name) {
    auto it = r.graph.initializers.find(name);
    if (it == r.graph.initializers.end()) {
      throw Error("magnitude pruning: weight '" + name + "' is not an initializer of '" + g.name +
                  "'");
    }
    check_f32(it->second.value, name);
    // Copies of a Graph share tensor storage: give the result its own weight tensors.
    it->second.value = it->second.value.clone();
    weights[name] = it->second.value;
  };
  for (const auto& [name, s] : plan.per_layer) take(name);
  for (const std::string& name : plan.global) take(name);
  std::map<std::string, int64_t> zeros_before;
  for (const auto& [name, t] : weights) zeros_before[name] = count_zeros(t);
  apply_magnitude_plan(weights, plan);
  for (const auto& [name, t] : weights) {
    r.changed.push_back(PrunedWeight{name, t.numel(), zeros_before[name], count_zeros(t)});
  }
  return r;
}

}  // namespace minnow::passes
