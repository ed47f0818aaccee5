#include "passes/simplify_for_inference.h"

#include <map>
#include <set>

#include "passes/graph_uses.h"

namespace minnow {

int simplify_for_inference(Graph& graph) {
  std::set<std::string> graph_outputs;
  for (const ValueInfo& v : graph.outputs) graph_outputs.insert(v.name);
  const size_t before = graph.nodes.size();

  // Dropout: rename its output to its input in every later reader.
  std::map<std::string, std::string> alias;
  std::vector<Node> kept;
  for (Node& n : graph.nodes) {
    for (std::string& v : n.inputs) {
      auto a = alias.find(v);
      if (a != alias.end()) v = a->second;
    }
    if (n.op == OpKind::kDropout && n.inputs.size() == 1 && n.outputs.size() == 1 &&
        !graph_outputs.count(n.outputs[0])) {
      alias[n.outputs[0]] = n.inputs[0];
      continue;
    }
    kept.push_back(std::move(n));
  }

  // Dead nodes: walk back from the graph outputs.
  std::set<std::string> needed = graph_outputs;
  std::vector<char> live(kept.size(), 0);
  for (size_t i = kept.size(); i-- > 0;) {
    for (const std::string& v : kept[i].outputs) live[i] = live[i] || needed.count(v);
    if (!live[i]) continue;
    for (const std::string& v : kept[i].inputs) {
      if (!v.empty()) needed.insert(v);
    }
  }
  graph.nodes.clear();
  for (size_t i = 0; i < kept.size(); ++i) {
    if (live[i]) graph.nodes.push_back(std::move(kept[i]));
  }
  remove_unread_initializers(graph);
  return static_cast<int>(before - graph.nodes.size());
}

}  // namespace minnow
