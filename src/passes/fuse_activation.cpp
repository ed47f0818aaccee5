#include "passes/fuse_activation.h"

#include <algorithm>

#include "passes/graph_uses.h"

namespace minnow {

int fuse_activation(Graph& graph, const std::vector<OpKind>& producers) {
  const GraphUses uses(graph);
  std::vector<char> removed(graph.nodes.size(), 0);
  int fused = 0;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const Node& act = graph.nodes[i];
    if ((act.op != OpKind::kRelu && act.op != OpKind::kRelu6) || act.inputs.size() != 1) continue;
    const std::string& v = act.inputs[0];
    auto w = uses.writer.find(v);
    if (w == uses.writer.end() || !uses.only_internal_reader(v)) continue;
    Node& prod = graph.nodes[w->second];
    const bool kind = std::find(producers.begin(), producers.end(), prod.op) != producers.end();
    if (!kind || prod.outputs.size() != 1 || prod.attrs.has("activation")) continue;
    prod.attrs.set("activation", std::string(act.op == OpKind::kRelu ? "relu" : "relu6"));
    prod.outputs[0] = act.outputs[0];
    removed[i] = 1;
    ++fused;
  }
  if (fused) remove_nodes(graph, removed);
  return fused;
}

}  // namespace minnow
