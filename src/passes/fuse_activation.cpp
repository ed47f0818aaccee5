#include "passes/fuse_activation.h"

#include <algorithm>
#include <map>
#include <set>

namespace minnow {

int fuse_activation(Graph& graph, const std::vector<OpKind>& producers) {
  std::map<std::string, int> consumers;
  for (const Node& n : graph.nodes) {
    for (const std::string& v : n.inputs) {
      if (!v.empty()) ++consumers[v];
    }
  }
  std::set<std::string> graph_outputs;
  for (const ValueInfo& v : graph.outputs) graph_outputs.insert(v.name);
  std::map<std::string, size_t> producer;  // value -> index of the fusable node writing it
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const Node& n = graph.nodes[i];
    const bool kind = std::find(producers.begin(), producers.end(), n.op) != producers.end();
    if (kind && n.outputs.size() == 1 && !n.attrs.has("activation")) {
      producer[n.outputs[0]] = i;
    }
  }
  std::vector<char> removed(graph.nodes.size(), 0);
  int fused = 0;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const Node& act = graph.nodes[i];
    if ((act.op != OpKind::kRelu && act.op != OpKind::kRelu6) || act.inputs.size() != 1) continue;
    const std::string& v = act.inputs[0];
    auto p = producer.find(v);
    if (p == producer.end() || consumers[v] != 1 || graph_outputs.count(v)) continue;
    Node& prod = graph.nodes[p->second];
    prod.attrs.set("activation", std::string(act.op == OpKind::kRelu ? "relu" : "relu6"));
    prod.outputs[0] = act.outputs[0];
    removed[i] = 1;
    ++fused;
  }
  if (fused == 0) return 0;
  std::vector<Node> kept;
  kept.reserve(graph.nodes.size() - fused);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    if (!removed[i]) kept.push_back(std::move(graph.nodes[i]));
  }
  graph.nodes = std::move(kept);
  return fused;
}

}  // namespace minnow
