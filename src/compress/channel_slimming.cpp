#include "compress/channel_slimming.h"

#include <cmath>
#include <set>

#include "minnow/error.h"

namespace minnow::compress {

std::vector<std::string> batchnorm_scale_names(const Graph& g) {
  std::vector<std::string> names;
  for (const Node& n : g.nodes) {
    if (n.op != OpKind::kBatchNorm || n.inputs.size() < 2) continue;
    auto it = g.initializers.find(n.inputs[1]);
    if (it != g.initializers.end() && it->second.trainable) names.push_back(n.inputs[1]);
  }
  return names;
}

std::function<void(int64_t, std::vector<ParamRef>&)> slimming_hook(const Graph& g, double lambda) {
  if (!std::isfinite(lambda) || lambda < 0) {
    throw Error("--slimming-l1 " + std::to_string(lambda) + ": expected a finite value >= 0");
  }
  const std::vector<std::string> names = batchnorm_scale_names(g);
  if (names.empty()) {
    throw Error("--slimming-l1: model '" + g.name +
                "' has no trainable BatchNorm scale to put the penalty on");
  }
  std::set<std::string> scales(names.begin(), names.end());
  return [scales, lambda](int64_t, std::vector<ParamRef>& params) {
    for (ParamRef& p : params) {
      if (!scales.count(p.name) || !p.grad.defined() || p.grad.dtype() != DType::kF32) continue;
      const float* gamma = p.value.f32();
      float* grad = p.grad.f32();
      const auto l = static_cast<float>(lambda);
      for (int64_t i = 0; i < p.grad.numel(); ++i) {
        grad[i] += gamma[i] > 0 ? l : (gamma[i] < 0 ? -l : 0.0f);
      }
    }
  };
}

}  // namespace minnow::compress
