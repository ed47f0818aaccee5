#include "compress/prune_masks.h"

#include <fnmatch.h>

#include <set>

#include "minnow/error.h"

namespace minnow::compress {

bool name_matches(const std::string& pattern, const std::string& name) {
  return fnmatch(pattern.c_str(), name.c_str(), 0) == 0;
}

std::vector<PrunableLayer> prunable_layers(const Graph& g,
                                           const std::vector<std::string>& exclude) {
  std::vector<PrunableLayer> all;
  std::set<std::string> seen;
  for (const Node& n : g.nodes) {
    if (n.op != OpKind::kConv2d && n.op != OpKind::kLinear) continue;
    if (n.inputs.size() < 2 || n.inputs[1].empty()) continue;
    const std::string& w = n.inputs[1];
    auto it = g.initializers.find(w);
    // A weight computed by other nodes (or quantized) is not a tensor pruning can own.
    if (it == g.initializers.end() || it->second.value.dtype() != DType::kF32) continue;
    if (!seen.insert(w).second) continue;
    all.push_back(PrunableLayer{n.name, w, it->second.value.numel()});
  }
  std::vector<PrunableLayer> kept;
  std::vector<bool> pattern_used(exclude.size(), false);
  for (const PrunableLayer& l : all) {
    bool excluded = false;
    for (size_t i = 0; i < exclude.size(); ++i) {
      if (name_matches(exclude[i], l.node) || name_matches(exclude[i], l.weight)) {
        excluded = true;
        pattern_used[i] = true;
      }
    }
    if (!excluded) kept.push_back(l);
  }
  for (size_t i = 0; i < exclude.size(); ++i) {
    if (pattern_used[i]) continue;
    std::string names;
    for (const PrunableLayer& l : all) names += (names.empty() ? "" : ", ") + l.node;
    throw Error("--exclude '" + exclude[i] + "' matches no prunable (Conv2d/Linear) layer of '" +
                g.name + "' (layers: " + (names.empty() ? "none" : names) + ")");
  }
  return kept;
}

const PrunableLayer* find_layer(const std::vector<PrunableLayer>& layers, const std::string& name) {
  for (const PrunableLayer& l : layers) {
    if (l.node == name || l.weight == name) return &l;
  }
  return nullptr;
}

PruneMasks PruneMasks::from_zeros(const Graph& g, const std::vector<PrunableLayer>& layers) {
  PruneMasks m;
  for (const PrunableLayer& l : layers) {
    auto it = g.initializers.find(l.weight);
    if (it == g.initializers.end()) {
      throw Error("pruning mask: weight '" + l.weight + "' of node '" + l.node +
                  "' is not an initializer of the model");
    }
    m.update_from_zeros(l.weight, it->second.value);
  }
  return m;
}

void PruneMasks::update_from_zeros(const std::string& weight, const Tensor& value) {
  if (value.dtype() != DType::kF32) {
    throw Error("pruning mask: weight '" + weight + "' is " +
                std::string(dtype_name(value.dtype())) + ", expected f32");
  }
  const float* p = value.f32();
  std::vector<uint8_t> keep(static_cast<size_t>(value.numel()));
  bool any_zero = false;
  for (int64_t i = 0; i < value.numel(); ++i) {
    keep[static_cast<size_t>(i)] = p[i] != 0.0f;
    any_zero = any_zero || p[i] == 0.0f;
  }
  if (any_zero) {
    keep_[weight] = std::move(keep);
  } else {
    keep_.erase(weight);
  }
}

int64_t PruneMasks::pruned_count(const std::string& weight) const {
  auto it = keep_.find(weight);
  if (it == keep_.end()) return 0;
  int64_t n = 0;
  for (uint8_t k : it->second) n += k == 0;
  return n;
}

void PruneMasks::mask(const std::string& name, Tensor& t) const {
  auto it = keep_.find(name);
  if (it == keep_.end() || !t.defined()) return;
  if (t.dtype() != DType::kF32 || static_cast<size_t>(t.numel()) != it->second.size()) {
    throw Error("pruning mask of '" + name + "' has " + std::to_string(it->second.size()) +
                " entries but the tensor is " + std::string(dtype_name(t.dtype())) + " " +
                shape_str(t.shape()));
  }
  float* p = t.f32();
  const uint8_t* k = it->second.data();
  for (size_t i = 0; i < it->second.size(); ++i) {
    if (!k[i]) p[i] = 0.0f;
  }
}

void PruneMasks::mask_grads(std::vector<ParamRef>& params) const {
  for (ParamRef& p : params) mask(p.name, p.grad);
}

void PruneMasks::mask_values(std::vector<ParamRef>& params) const {
  for (ParamRef& p : params) mask(p.name, p.value);
}

void PruneMasks::apply(Graph& g) const {
  for (const auto& [name, keep] : keep_) {
    auto it = g.initializers.find(name);
    if (it == g.initializers.end()) {
      throw Error("pruning mask names weight '" + name + "', which the model does not have");
    }
    mask(name, it->second.value);
  }
}

void PruneMasks::install(const std::shared_ptr<PruneMasks>& masks, TrainConfig& config) {
  auto before = config.before_step;
  config.before_step = [masks, before](int64_t step, std::vector<ParamRef>& params) {
    if (before) before(step, params);
    masks->mask_grads(params);
  };
  auto after = config.after_step;
  config.after_step = [masks, after](int64_t step, std::vector<ParamRef>& params) {
    if (after) after(step, params);
    masks->mask_values(params);
  };
}

}  // namespace minnow::compress
