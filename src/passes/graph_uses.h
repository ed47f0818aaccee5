// Who reads and who writes each value of a graph: the bookkeeping every rewrite pass starts
// from, and the node removal they end with.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "minnow/graph.h"

namespace minnow {

struct GraphUses {
  std::map<std::string, int> readers;    // value -> number of node inputs reading it
  std::set<std::string> graph_outputs;   // values the caller reads
  std::map<std::string, size_t> writer;  // value -> index of the node writing it

  explicit GraphUses(const Graph& g);
  // Whether exactly one node reads v and the caller does not: the value can be fused away.
  bool only_internal_reader(const std::string& v) const;
};

// The constant (initializer) node n reads as input i, or null: absent, empty or computed.
const Tensor* constant_input(const Graph& g, const Node& n, size_t i);

// Removes the nodes whose flag is set, keeping the order of the rest.
void remove_nodes(Graph& g, const std::vector<char>& removed);
// Drops the initializers that no node reads and that are not graph outputs.
void remove_unread_initializers(Graph& g);

}  // namespace minnow
