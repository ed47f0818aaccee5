#include "passes/fold_batchnorm.h"

#include <cmath>
#include <set>

#include "passes/fresh_names.h"
#include "passes/graph_uses.h"

namespace minnow {
namespace {

const Initializer* constant(const Graph& g, const std::string& name) {
  auto it = g.initializers.find(name);
  return it == g.initializers.end() ? nullptr : &it->second;
}

bool is_f32_vector(const Initializer* i, int64_t n) {
  return i && i->value.dtype() == DType::kF32 && i->value.shape() == Shape{n};
}

}  // namespace

int fold_batchnorm(Graph& graph) {
  const GraphUses uses(graph);
  std::vector<char> removed(graph.nodes.size(), 0);
  int folded = 0;
  FreshNames names(graph);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const Node& bn = graph.nodes[i];
    if (bn.op != OpKind::kBatchNorm || bn.inputs.size() != 5 || bn.attrs.has("activation")) {
      continue;
    }
    const std::string& x = bn.inputs[0];
    auto p = uses.writer.find(x);
    if (p == uses.writer.end() || !uses.only_internal_reader(x)) continue;
    Node& prod = graph.nodes[p->second];
    if ((prod.op != OpKind::kConv2d && prod.op != OpKind::kLinear) || prod.outputs.size() != 1) {
      continue;
    }
    // BN after a fused activation normalizes the activation's output: not foldable into the
    // weights (the clamp sits between them).
    if (!prod.attrs.get_string("activation", "").empty()) continue;
    const Initializer* w = constant(graph, prod.inputs[1]);
    if (!w || w->value.dtype() != DType::kF32 || w->value.rank() < 2) continue;
    const int64_t channels = w->value.dim(0);  // Conv2d [O, C/g, kh, kw], Linear [out, in]
    const bool has_bias = prod.inputs.size() > 2 && !prod.inputs[2].empty();
    const Initializer* b = has_bias ? constant(graph, prod.inputs[2]) : nullptr;
    if (has_bias && !is_f32_vector(b, channels)) continue;
    const Initializer *scale = constant(graph, bn.inputs[1]),
                      *shift = constant(graph, bn.inputs[2]), *mean = constant(graph, bn.inputs[3]),
                      *var = constant(graph, bn.inputs[4]);
    if (!is_f32_vector(scale, channels) || !is_f32_vector(shift, channels) ||
        !is_f32_vector(mean, channels) || !is_f32_vector(var, channels)) {
      continue;
    }
    const double eps = bn.attrs.get_float("epsilon", 1e-5);
    Tensor new_w(DType::kF32, w->value.shape());
    Tensor new_b(DType::kF32, {channels});
    const int64_t per_channel = w->value.numel() / channels;
    for (int64_t c = 0; c < channels; ++c) {
      const double s = scale->value.f32()[c] / std::sqrt(double{var->value.f32()[c]} + eps);
      for (int64_t k = 0; k < per_channel; ++k) {
        new_w.f32()[c * per_channel + k] =
            static_cast<float>(w->value.f32()[c * per_channel + k] * s);
      }
      const double b0 = has_bias ? b->value.f32()[c] : 0.0;
      new_b.f32()[c] = static_cast<float>((b0 - mean->value.f32()[c]) * s + shift->value.f32()[c]);
    }
    const std::string w_name = names.value(prod.name + ".weight_bn_folded");
    graph.initializers[w_name] = Initializer{new_w, false};
    const std::string b_name = names.value(prod.name + ".bias_bn_folded");
    graph.initializers[b_name] = Initializer{new_b, false};
    prod.inputs.resize(3);
    prod.inputs[1] = w_name;
    prod.inputs[2] = b_name;
    prod.outputs[0] = bn.outputs[0];
    removed[i] = 1;
    ++folded;
  }
  if (folded == 0) return 0;
  remove_nodes(graph, removed);
  // The unfolded weights and the BN parameters are no longer read.
  remove_unread_initializers(graph);
  return folded;
}

}  // namespace minnow
