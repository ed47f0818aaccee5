// Graph: the one model representation, from definition to deployment (DESIGN.md §1).
//
// Values are named; nodes read and write values by name; initializers are constant tensors
// (parameters when `trainable`). Nodes are kept in topological order (validate() checks it).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "minnow/dtype.h"
#include "minnow/op_kind.h"
#include "minnow/tensor.h"

namespace minnow {

struct ValueInfo {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;  // may hold kDynamic for the batch dimension
};

using AttrValue =
    std::variant<int64_t, double, std::string, std::vector<int64_t>, std::vector<double>>;

// Typed node attributes. Getters throw minnow::Error naming the attribute when the type is wrong.
class Attrs {
 public:
  bool has(const std::string& key) const { return values_.count(key) != 0; }
  void set(const std::string& key, AttrValue v) { values_[key] = std::move(v); }
  int64_t get_int(const std::string& key, int64_t fallback) const;
  double get_float(const std::string& key, double fallback) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;
  std::vector<int64_t> get_ints(const std::string& key, std::vector<int64_t> fallback) const;
  const std::map<std::string, AttrValue>& all() const { return values_; }

 private:
  std::map<std::string, AttrValue> values_;
};

struct Node {
  std::string name;
  OpKind op = OpKind::kCount;
  std::vector<std::string> inputs;  // "" marks an absent optional input
  std::vector<std::string> outputs;
  Attrs attrs;
};

struct Initializer {
  Tensor value;
  bool trainable = false;
};

class Graph {
 public:
  std::string name;
  std::vector<ValueInfo> inputs;
  std::vector<ValueInfo> outputs;
  std::vector<Node> nodes;                          // topological order
  std::map<std::string, Initializer> initializers;  // ordered: deterministic iteration

  // Checks names, topological order, arity and attributes; throws minnow::Error naming the
  // first bad node or value.
  void validate() const;
  // Shape/type inference for every value, with the inputs' shapes as declared (symbolic batch
  // allowed). Throws minnow::Error naming the node that fails.
  std::map<std::string, ValueInfo> infer_shapes() const;
  // Same, with the batch dimension of every input fixed to `batch`.
  std::map<std::string, ValueInfo> infer_shapes(int64_t batch) const;

  // Elements of float initializers; by default only trainable ones (the usual "parameters").
  int64_t num_params(bool trainable_only = true) const;
  const Node* find_node(const std::string& node_name) const;
  Node* find_node(const std::string& node_name);
  const Node* producer(const std::string& value_name) const;
};

// Per-node facts for `minnow inspect` and reports. MACs are per sample (batch 1).
struct NodeStats {
  std::string node;
  std::string op;
  Shape output_shape;
  int64_t params = 0;
  int64_t macs = 0;
};
std::vector<NodeStats> graph_stats(const Graph& g);

}  // namespace minnow
