#include "passes/fuse_residual_add.h"

#include <map>

#include "passes/graph_uses.h"

namespace minnow {

int fuse_residual_add(Graph& graph) {
  const GraphUses uses(graph);
  const std::map<std::string, ValueInfo> info = graph.infer_shapes();
  // The activation that is the only reader of value v, if any (its node index).
  std::map<std::string, size_t> sole_reader;
  {
    std::map<std::string, int> count;
    for (size_t i = 0; i < graph.nodes.size(); ++i) {
      for (const std::string& v : graph.nodes[i].inputs) {
        if (!v.empty() && ++count[v] == 1) sole_reader[v] = i;
      }
    }
    for (const auto& [v, c] : count) {
      if (c != 1) sole_reader.erase(v);
    }
  }
  std::vector<char> removed(graph.nodes.size(), 0);
  int fused = 0;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const Node& add = graph.nodes[i];
    if (add.op != OpKind::kAdd || add.inputs.size() != 2 || add.outputs.size() != 1) continue;
    for (int k = 0; k < 2; ++k) {
      const std::string& conv_out = add.inputs[k];
      const std::string& other = add.inputs[1 - k];
      auto w = uses.writer.find(conv_out);
      if (conv_out == other || w == uses.writer.end() || removed[w->second] ||
          !uses.only_internal_reader(conv_out)) {
        continue;
      }
      Node& conv = graph.nodes[w->second];
      if (conv.op != OpKind::kConv2d || conv.outputs.size() != 1 || conv.inputs.size() > 3 ||
          conv.attrs.has("activation")) {
        continue;
      }
      // The residual must exist when the convolution runs: a graph input, a constant, or the
      // output of an earlier node.
      auto ow = uses.writer.find(other);
      if (ow != uses.writer.end() && ow->second >= w->second) continue;
      if (info.at(other).shape != info.at(conv_out).shape ||
          info.at(other).dtype != info.at(conv_out).dtype) {
        continue;
      }
      conv.inputs.resize(4);  // an absent bias stays ""
      conv.inputs[3] = other;
      conv.outputs[0] = add.outputs[0];
      removed[i] = 1;
      // A ReLU / ReLU6 reading only the sum joins as the fused activation.
      auto r = sole_reader.find(add.outputs[0]);
      if (r != sole_reader.end() && !uses.graph_outputs.count(add.outputs[0])) {
        const Node& act = graph.nodes[r->second];
        if ((act.op == OpKind::kRelu || act.op == OpKind::kRelu6) && act.inputs.size() == 1) {
          conv.attrs.set("activation", std::string(act.op == OpKind::kRelu ? "relu" : "relu6"));
          conv.outputs[0] = act.outputs[0];
          removed[r->second] = 1;
        }
      }
      ++fused;
      break;
    }
  }
  if (fused) remove_nodes(graph, removed);
  return fused;
}

}  // namespace minnow
