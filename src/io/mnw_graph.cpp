#include "io/mnw_graph.h"

#include "core/op_registry.h"
#include "io/json_check.h"
#include "minnow/error.h"

namespace minnow::io {
namespace {

using detail::JsonField;
using nlohmann::json;

constexpr size_t kMaxRank = 32;

json value_to_json(const ValueInfo& v) {
  return {{"name", v.name}, {"dtype", std::string(dtype_name(v.dtype))}, {"shape", v.shape}};
}

// One tag per AttrValue alternative, so a float attribute that happens to hold 2.0 stays a
// float after a round trip.
json attr_to_json(const AttrValue& a) {
  json j = json::object();
  if (const auto* i = std::get_if<int64_t>(&a)) {
    j["int"] = *i;
  } else if (const auto* f = std::get_if<double>(&a)) {
    j["float"] = detail::number_to_json(*f);
  } else if (const auto* s = std::get_if<std::string>(&a)) {
    j["string"] = *s;
  } else if (const auto* is = std::get_if<std::vector<int64_t>>(&a)) {
    j["ints"] = *is;
  } else {
    json list = json::array();
    for (double v : std::get<std::vector<double>>(a)) list.push_back(detail::number_to_json(v));
    j["floats"] = std::move(list);
  }
  return j;
}

AttrValue attr_from_json(const JsonField& f) {
  f.require_object({"int", "float", "string", "ints", "floats"});
  if (f.raw().size() != 1) {
    f.fail("expected exactly one of int, float, string, ints, floats");
  }
  if (auto v = f.find("int")) return v->int64();
  if (auto v = f.find("float")) return v->number();
  if (auto v = f.find("string")) return v->str();
  if (auto v = f.find("ints")) return v->ints();
  return f.at("floats").numbers();
}

ValueInfo value_from_json(const JsonField& f) {
  f.require_object({"name", "dtype", "shape"});
  ValueInfo v;
  v.name = f.at("name").str();
  JsonField dtype = f.at("dtype");
  try {
    v.dtype = dtype_from_name(dtype.str());
  } catch (const Error& e) {
    dtype.fail(e.what());
  }
  JsonField shape = f.at("shape");
  if (shape.array_size() > kMaxRank) shape.fail("more than 32 dimensions");
  v.shape = shape.ints();
  for (size_t i = 0; i < v.shape.size(); ++i) {
    if (v.shape[i] < kDynamic) {
      shape.at(i).fail("dimension " + std::to_string(v.shape[i]) +
                       " is negative (only -1, the symbolic batch, is allowed)");
    }
  }
  return v;
}

std::vector<ValueInfo> values_from_json(const JsonField& list) {
  std::vector<ValueInfo> out;
  for (size_t i = 0; i < list.array_size(); ++i) out.push_back(value_from_json(list.at(i)));
  return out;
}

std::vector<std::string> names_from_json(const JsonField& list) {
  std::vector<std::string> out;
  for (size_t i = 0; i < list.array_size(); ++i) out.push_back(list.at(i).str());
  return out;
}

Node node_from_json(const JsonField& f, const std::string& where) {
  f.require_object({"name", "op", "inputs", "outputs", "attrs"});
  Node n;
  n.name = f.at("name").str();
  JsonField op = f.at("op");
  try {
    n.op = op_kind_from_name(op.str());
  } catch (const Error& e) {
    op.fail(e.what());
  }
  n.inputs = names_from_json(f.at("inputs"));
  n.outputs = names_from_json(f.at("outputs"));
  if (auto attrs = f.find("attrs")) {
    if (!attrs->raw().is_object()) attrs->fail("expected an object");
    for (const auto& [key, value] : attrs->raw().items()) {
      n.attrs.set(key, attr_from_json(JsonField(value, where, attrs->path() + "." + key)));
    }
  }
  return n;
}

}  // namespace

json graph_to_json(const Graph& g) {
  json inputs = json::array(), outputs = json::array(), nodes = json::array();
  for (const ValueInfo& v : g.inputs) inputs.push_back(value_to_json(v));
  for (const ValueInfo& v : g.outputs) outputs.push_back(value_to_json(v));
  for (const Node& n : g.nodes) {
    json attrs = json::object();
    for (const auto& [key, value] : n.attrs.all()) attrs[key] = attr_to_json(value);
    nodes.push_back({{"name", n.name},
                     {"op", op_def(n.op).name},
                     {"inputs", n.inputs},
                     {"outputs", n.outputs},
                     {"attrs", std::move(attrs)}});
  }
  return {{"name", g.name},
          {"inputs", std::move(inputs)},
          {"outputs", std::move(outputs)},
          {"nodes", std::move(nodes)}};
}

Graph graph_from_json(const json& j, const std::string& where) {
  JsonField root(j, where);
  root.require_object({"name", "inputs", "outputs", "nodes"});
  Graph g;
  g.name = root.at("name").str();
  g.inputs = values_from_json(root.at("inputs"));
  g.outputs = values_from_json(root.at("outputs"));
  JsonField nodes = root.at("nodes");
  for (size_t i = 0; i < nodes.array_size(); ++i) {
    g.nodes.push_back(node_from_json(nodes.at(i), where));
  }
  return g;
}

}  // namespace minnow::io
