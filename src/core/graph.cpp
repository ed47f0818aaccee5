#include "minnow/graph.h"

#include <set>

#include "core/op_registry.h"
#include "minnow/error.h"

namespace minnow {
namespace {

template <class T>
const T* attr_as(const std::map<std::string, AttrValue>& m, const std::string& key,
                 const char* type_name) {
  auto it = m.find(key);
  if (it == m.end()) return nullptr;
  if (const T* v = std::get_if<T>(&it->second)) return v;
  throw Error("attribute '" + key + "' is not of type " + type_name);
}

std::string node_label(const Node& n) {
  return "node '" + n.name + "' (" + op_def(n.op).name + ")";
}

}  // namespace

int64_t Attrs::get_int(const std::string& key, int64_t fallback) const {
  const int64_t* v = attr_as<int64_t>(values_, key, "int");
  return v ? *v : fallback;
}

double Attrs::get_float(const std::string& key, double fallback) const {
  auto it = values_.find(key);
  if (it != values_.end()) {
    if (const int64_t* i = std::get_if<int64_t>(&it->second)) return static_cast<double>(*i);
  }
  const double* v = attr_as<double>(values_, key, "float");
  return v ? *v : fallback;
}

std::string Attrs::get_string(const std::string& key, const std::string& fallback) const {
  const std::string* v = attr_as<std::string>(values_, key, "string");
  return v ? *v : fallback;
}

std::vector<int64_t> Attrs::get_ints(const std::string& key, std::vector<int64_t> fallback) const {
  const std::vector<int64_t>* v = attr_as<std::vector<int64_t>>(values_, key, "ints");
  return v ? *v : fallback;
}

void Graph::validate() const {
  std::set<std::string> defined;
  for (const ValueInfo& v : inputs) {
    if (v.name.empty()) throw Error("graph input with an empty name");
    if (!defined.insert(v.name).second) throw Error("graph input '" + v.name + "' defined twice");
  }
  for (const auto& [name, init] : initializers) {
    if (name.empty()) throw Error("initializer with an empty name");
    if (!init.value.defined()) throw Error("initializer '" + name + "' has no data");
    if (!defined.insert(name).second) {
      throw Error("initializer '" + name + "' has the same name as another value");
    }
  }
  std::set<std::string> node_names;
  for (const Node& n : nodes) {
    if (static_cast<size_t>(n.op) >= static_cast<size_t>(OpKind::kCount)) {
      throw Error("node '" + n.name + "' has an invalid op");
    }
    const OpDef& def = op_def(n.op);
    if (n.name.empty()) throw Error(std::string("a ") + def.name + " node has an empty name");
    if (!node_names.insert(n.name).second) throw Error("node name '" + n.name + "' used twice");
    int ni = static_cast<int>(n.inputs.size());
    if (ni < def.min_inputs || ni > def.max_inputs) {
      throw Error(node_label(n) + " has " + std::to_string(ni) + " inputs, expected " +
                  std::to_string(def.min_inputs) + ".." + std::to_string(def.max_inputs));
    }
    if (def.num_outputs >= 0 && static_cast<int>(n.outputs.size()) != def.num_outputs) {
      throw Error(node_label(n) + " has " + std::to_string(n.outputs.size()) +
                  " outputs, expected " + std::to_string(def.num_outputs));
    }
    if (n.outputs.empty()) throw Error(node_label(n) + " has no outputs");
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      const std::string& in = n.inputs[i];
      if (in.empty()) continue;
      if (!defined.count(in)) {
        throw Error(node_label(n) + " reads value '" + in +
                    "' that is not a graph input, an initializer or an earlier node's output");
      }
    }
    for (const std::string& out : n.outputs) {
      if (out.empty()) throw Error(node_label(n) + " has an output with an empty name");
      if (!defined.insert(out).second) {
        throw Error(node_label(n) + " writes value '" + out + "' that is already defined");
      }
    }
  }
  for (const ValueInfo& v : outputs) {
    if (!defined.count(v.name)) throw Error("graph output '" + v.name + "' is never produced");
  }
}

static std::map<std::string, ValueInfo> infer_impl(const Graph& g, const int64_t* batch) {
  g.validate();
  std::map<std::string, ValueInfo> info;
  for (ValueInfo v : g.inputs) {
    if (batch) {
      for (int64_t& d : v.shape) {
        if (d == kDynamic) d = *batch;
      }
    }
    info[v.name] = v;
  }
  for (const auto& [name, init] : g.initializers) {
    info[name] = ValueInfo{name, init.value.dtype(), init.value.shape()};
  }
  for (const Node& n : g.nodes) {
    InputInfos in;
    for (const std::string& name : n.inputs) in.push_back(name.empty() ? nullptr : &info.at(name));
    std::vector<ValueInfo> out(n.outputs.size());
    for (size_t i = 0; i < out.size(); ++i) out[i].name = n.outputs[i];
    const OpDef& def = op_def(n.op);
    try {
      def.infer(n, in, out);
    } catch (const Error& e) {
      std::string msg = e.what();
      // Family infer functions usually name the node already; add it when they did not.
      if (msg.find("'" + n.name + "'") == std::string::npos) msg = node_label(n) + ": " + msg;
      throw Error(msg);
    }
    for (ValueInfo& v : out) info[v.name] = std::move(v);
  }
  return info;
}

std::map<std::string, ValueInfo> Graph::infer_shapes() const { return infer_impl(*this, nullptr); }

std::map<std::string, ValueInfo> Graph::infer_shapes(int64_t batch) const {
  return infer_impl(*this, &batch);
}

int64_t Graph::num_params(bool trainable_only) const {
  int64_t n = 0;
  for (const auto& [name, init] : initializers) {
    if (trainable_only && !init.trainable) continue;
    if (dtype_is_float(init.value.dtype())) n += init.value.numel();
  }
  return n;
}

const Node* Graph::find_node(const std::string& node_name) const {
  for (const Node& n : nodes) {
    if (n.name == node_name) return &n;
  }
  return nullptr;
}

Node* Graph::find_node(const std::string& node_name) {
  for (Node& n : nodes) {
    if (n.name == node_name) return &n;
  }
  return nullptr;
}

const Node* Graph::producer(const std::string& value_name) const {
  for (const Node& n : nodes) {
    for (const std::string& o : n.outputs) {
      if (o == value_name) return &n;
    }
  }
  return nullptr;
}

std::vector<NodeStats> graph_stats(const Graph& g) {
  auto info = g.infer_shapes(1);
  auto symbolic = g.infer_shapes();
  std::vector<NodeStats> stats;
  for (const Node& n : g.nodes) {
    const OpDef& def = op_def(n.op);
    NodeStats s;
    s.node = n.name;
    s.op = def.name;
    s.output_shape = symbolic.at(n.outputs[0]).shape;
    InputInfos in;
    for (const std::string& name : n.inputs) in.push_back(name.empty() ? nullptr : &info.at(name));
    std::vector<ValueInfo> out;
    for (const std::string& name : n.outputs) out.push_back(info.at(name));
    for (const std::string& name : n.inputs) {
      auto it = g.initializers.find(name);
      // Parameters are what training updates: BN running statistics do not count.
      if (it != g.initializers.end() && it->second.trainable &&
          dtype_is_float(it->second.value.dtype())) {
        s.params += it->second.value.numel();
      }
      // Quantized weights: an integer constant read through a DequantizeLinear.
      const Node* p = name.empty() || it != g.initializers.end() ? nullptr : g.producer(name);
      if (p && p->op == OpKind::kDequantizeLinear) {
        auto w = g.initializers.find(p->inputs[0]);
        if (w != g.initializers.end()) s.params += w->second.value.numel();
      }
    }
    if (def.macs) s.macs = def.macs(n, in, out);
    stats.push_back(std::move(s));
  }
  return stats;
}

}  // namespace minnow
