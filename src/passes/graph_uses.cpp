#include "passes/graph_uses.h"

namespace minnow {

GraphUses::GraphUses(const Graph& g) {
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    for (const std::string& v : g.nodes[i].inputs) {
      if (!v.empty()) ++readers[v];
    }
    for (const std::string& v : g.nodes[i].outputs) writer[v] = i;
  }
  for (const ValueInfo& v : g.outputs) graph_outputs.insert(v.name);
}

bool GraphUses::only_internal_reader(const std::string& v) const {
  auto r = readers.find(v);
  return r != readers.end() && r->second == 1 && !graph_outputs.count(v);
}

const Tensor* constant_input(const Graph& g, const Node& n, size_t i) {
  if (i >= n.inputs.size() || n.inputs[i].empty()) return nullptr;
  auto it = g.initializers.find(n.inputs[i]);
  return it == g.initializers.end() ? nullptr : &it->second.value;
}

void remove_nodes(Graph& g, const std::vector<char>& removed) {
  std::vector<Node> kept;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (!removed[i]) kept.push_back(std::move(g.nodes[i]));
  }
  g.nodes = std::move(kept);
}

void remove_unread_initializers(Graph& g) {
  std::set<std::string> read;
  for (const Node& n : g.nodes) read.insert(n.inputs.begin(), n.inputs.end());
  for (const ValueInfo& v : g.outputs) read.insert(v.name);
  for (auto it = g.initializers.begin(); it != g.initializers.end();) {
    it = read.count(it->first) ? std::next(it) : g.initializers.erase(it);
  }
}

}  // namespace minnow
