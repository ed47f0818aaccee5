#include "passes/fuse_batchnorm_depthwise.h"

#include <algorithm>
#include <optional>

#include "passes/graph_uses.h"

namespace minnow {
namespace {

// A plain depthwise Conv2d: weights [C, 1, kh, kw] held as an initializer, group C, no residual
// sum, no fused activation, NCHW.
bool is_depthwise_conv(const Graph& g, const Node& n) {
  if (n.op != OpKind::kConv2d || n.inputs.size() < 2 || n.inputs.size() > 3 ||
      n.outputs.size() != 1 || n.attrs.has("activation") ||
      n.attrs.get_int("channels_last", 0) != 0) {
    return false;
  }
  auto w = g.initializers.find(n.inputs[1]);
  if (w == g.initializers.end() || w->second.value.rank() != 4) return false;
  const Tensor& t = w->second.value;
  return t.dim(1) == 1 && n.attrs.get_int("group", 1) == t.dim(0);
}

// The BatchNorm (5 inputs, one output) that is the only reader of `v`, if any: its index.
std::optional<size_t> sole_batchnorm_reader(const Graph& g, const GraphUses& uses,
                                            const std::string& v, size_t from) {
  if (!uses.only_internal_reader(v)) return std::nullopt;
  for (size_t j = from; j < g.nodes.size(); ++j) {
    const Node& n = g.nodes[j];
    if (std::find(n.inputs.begin(), n.inputs.end(), v) == n.inputs.end()) continue;
    if (n.op == OpKind::kBatchNorm && n.inputs.size() == 5 && n.inputs[0] == v &&
        n.outputs.size() == 1) {
      return j;
    }
    return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

int fuse_batchnorm_depthwise(Graph& graph) {
  const GraphUses uses(graph);
  std::vector<char> removed(graph.nodes.size(), 0);
  int fused = 0;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& conv = graph.nodes[i];
    if (!is_depthwise_conv(graph, conv)) continue;
    auto w = uses.writer.find(conv.inputs[0]);
    if (w == uses.writer.end() || removed[w->second] ||
        !uses.only_internal_reader(conv.inputs[0])) {
      continue;
    }
    const Node& bn = graph.nodes[w->second];
    if (bn.op != OpKind::kBatchNorm || bn.inputs.size() != 5 || bn.outputs.size() != 1) continue;
    Node f;
    f.name = bn.name + "+" + conv.name;
    f.op = OpKind::kBatchNormDepthwiseConv;
    f.inputs = bn.inputs;
    f.inputs.insert(f.inputs.end(), conv.inputs.begin() + 1, conv.inputs.end());
    if (f.inputs.size() == 7 && f.inputs[6].empty()) f.inputs.pop_back();
    f.outputs = conv.outputs;
    f.attrs = conv.attrs;
    for (const auto& [key, value] : bn.attrs.all()) f.attrs.set(key, value);
    // The BatchNorm after the convolution joins too (inputs 7-10, attributes post_*).
    if (auto post = sole_batchnorm_reader(graph, uses, conv.outputs[0], i + 1)) {
      const Node& b = graph.nodes[*post];
      f.name += "+" + b.name;
      f.inputs.resize(7);  // the bias' slot, empty without one
      f.inputs.insert(f.inputs.end(), b.inputs.begin() + 1, b.inputs.end());
      f.outputs = b.outputs;
      for (const auto& [key, value] : b.attrs.all()) f.attrs.set("post_" + key, value);
      removed[*post] = 1;
    }
    conv = std::move(f);
    removed[w->second] = 1;
    ++fused;
  }
  if (fused) remove_nodes(graph, removed);
  return fused;
}

}  // namespace minnow
