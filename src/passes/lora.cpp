#include "passes/lora.h"

#include <fnmatch.h>

#include <cmath>

#include "core/op_registry.h"
#include "core/rng.h"
#include "minnow/error.h"
#include "passes/graph_uses.h"

namespace minnow {
namespace {

// The initializer a node reads as input `i`, or null.
Initializer* weight_of(Graph& g, const Node& n, size_t i) {
  if (n.inputs.size() <= i || n.inputs[i].empty()) return nullptr;
  auto it = g.initializers.find(n.inputs[i]);
  return it == g.initializers.end() ? nullptr : &it->second;
}

// Why node `n` cannot take an adapter ("" when it can).
std::string ineligible(Graph& g, const Node& n) {
  if (n.op != OpKind::kLinear && n.op != OpKind::kConv2d) return "not Linear or Conv2d";
  if (n.attrs.has("activation")) return "has a fused activation";
  const Initializer* w = weight_of(g, n, 1);
  if (!w || w->value.dtype() != DType::kF32) return "weight is not an f32 initializer";
  const Shape& s = w->value.shape();
  if (n.op == OpKind::kLinear && s.size() != 2) return "weight is not 2-d";
  if (n.op == OpKind::kConv2d) {
    if (s.size() != 4 || s[2] != 1 || s[3] != 1) return "not a 1x1 convolution";
    if (n.attrs.get_int("group", 1) != 1) return "grouped convolution";
  }
  if (g.initializers.count(n.name + ".lora_A")) return "already has a LoRA adapter";
  return "";
}

Node make_node(const std::string& name, OpKind op, std::vector<std::string> inputs) {
  Node n;
  n.name = name;
  n.op = op;
  n.inputs = std::move(inputs);
  n.outputs = {name};
  return n;
}

Node* node_named(Graph& g, const std::string& name, OpKind op, const std::string& adapter) {
  Node* n = g.find_node(name);
  if (!n || n->op != op) {
    throw Error("merge_lora: adapter of node '" + adapter + "' has no " +
                std::string(op_def(op).name) + " node '" + name + "'");
  }
  return n;
}

}  // namespace

bool name_matches(const std::string& pattern, const std::string& name) {
  return fnmatch(pattern.c_str(), name.c_str(), 0) == 0;
}

bool name_matches_any(const std::vector<std::string>& patterns, const std::string& name) {
  for (const std::string& p : patterns) {
    if (name_matches(p, name)) return true;
  }
  return false;
}

LoraResult add_lora(Graph& graph, const LoraOptions& o) {
  if (o.rank < 1) throw Error("LoRA rank must be >= 1, got " + std::to_string(o.rank));
  if (!(o.alpha > 0) || !std::isfinite(o.alpha)) {
    throw Error("LoRA alpha must be > 0, got " + std::to_string(o.alpha));
  }
  // Rewritten on a copy: a refused request leaves the caller's graph as it was.
  Graph g = graph;
  LoraResult r;
  Rng rng = Rng::derive(o.seed, 0x10AA);
  std::vector<Node> nodes;
  nodes.reserve(g.nodes.size());
  for (Node& n : g.nodes) {
    const bool targeted = o.targets.empty() || name_matches_any(o.targets, n.name);
    bool excluded = false;
    for (const std::string& e : o.exclude) excluded = excluded || e == n.name;
    if (!targeted || excluded || (n.op != OpKind::kLinear && n.op != OpKind::kConv2d)) {
      nodes.push_back(std::move(n));
      continue;
    }
    const std::string why = ineligible(g, n);
    if (!why.empty()) {
      if (why == "already has a LoRA adapter") throw Error("node '" + n.name + "' " + why);
      r.skipped.push_back(n.name + ": " + why);
      nodes.push_back(std::move(n));
      continue;
    }
    const bool conv = n.op == OpKind::kConv2d;
    Initializer& w = *weight_of(g, n, 1);
    const int64_t out = w.value.dim(0), in = w.value.dim(1), rank = o.rank;
    w.trainable = false;
    if (Initializer* b = weight_of(g, n, 2)) b->trainable = false;
    Tensor a(DType::kF32, conv ? Shape{rank, in, 1, 1} : Shape{rank, in});
    const float bound = 1.0f / std::sqrt(static_cast<float>(in));
    for (int64_t i = 0; i < a.numel(); ++i) a.f32()[i] = rng.uniform(-bound, bound);
    Tensor bmat(DType::kF32, conv ? Shape{out, rank, 1, 1} : Shape{out, rank});
    bmat.fill_zero();
    Tensor scale(DType::kF32, {});
    scale.f32()[0] = static_cast<float>(o.alpha / static_cast<double>(rank));
    const std::string p = n.name + ".lora_";
    g.initializers[p + "A"] = Initializer{a, true};
    g.initializers[p + "B"] = Initializer{bmat, true};
    g.initializers[p + "scale"] = Initializer{scale, false};
    r.adapter_params += a.numel() + bmat.numel();

    const std::string y = n.outputs.at(0);
    Node na = make_node(p + "a", n.op, {n.inputs[0], p + "A"});
    Node nb = make_node(p + "b", n.op, {p + "a", p + "B"});
    if (conv) {
      na.attrs = n.attrs;  // same strides and pads as the base: A x lines up with W x
      nb.attrs.set("strides", std::vector<int64_t>{1, 1});
      nb.attrs.set("pads", std::vector<int64_t>{0, 0, 0, 0});
      nb.attrs.set("dilations", std::vector<int64_t>{1, 1});
      nb.attrs.set("group", int64_t{1});
    }
    Node ns = make_node(p + "scale", OpKind::kMul, {p + "b", p + "scale"});
    ns.outputs = {p + "scaled"};
    Node nadd = make_node(p + "add", OpKind::kAdd, {p + "base", p + "scaled"});
    nadd.outputs = {y};
    n.outputs[0] = p + "base";
    r.adapted.push_back(n.name);
    nodes.push_back(std::move(n));
    for (Node* x : {&na, &nb, &ns, &nadd}) nodes.push_back(std::move(*x));
  }
  if (r.adapted.empty()) {
    std::string msg = "LoRA: no Linear or 1x1 Conv2d node matches the targets";
    for (const std::string& s : r.skipped) msg += "; " + s;
    throw Error(msg);
  }
  g.nodes = std::move(nodes);
  g.validate();
  graph = std::move(g);
  return r;
}

int merge_lora(Graph& g) {
  std::vector<std::string> bases;
  for (const Node& n : g.nodes) {
    const std::string suffix = ".lora_add";
    if (n.name.size() > suffix.size() &&
        n.name.compare(n.name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      bases.push_back(n.name.substr(0, n.name.size() - suffix.size()));
    }
  }
  for (const std::string& base : bases) {
    const std::string p = base + ".lora_";
    Node* add = node_named(g, p + "add", OpKind::kAdd, base);
    Node* scale = node_named(g, p + "scale", OpKind::kMul, base);
    Node* n = g.find_node(base);
    if (!n || (n->op != OpKind::kLinear && n->op != OpKind::kConv2d)) {
      throw Error("merge_lora: adapter '" + p + "add' has no Linear or Conv2d base node '" + base +
                  "'");
    }
    Node* na = node_named(g, p + "a", n->op, base);
    Node* nb = node_named(g, p + "b", n->op, base);
    Initializer* w = weight_of(g, *n, 1);
    Initializer* a = weight_of(g, *na, 1);
    Initializer* b = weight_of(g, *nb, 1);
    Initializer* s = weight_of(g, *scale, 1);
    const bool wired = add->inputs == std::vector<std::string>{n->outputs[0], scale->outputs[0]} &&
                       scale->inputs[0] == nb->outputs[0] && nb->inputs[0] == na->outputs[0] &&
                       na->inputs[0] == n->inputs[0];
    if (!wired || !w || !a || !b || !s || s->value.numel() != 1) {
      throw Error("merge_lora: the adapter of node '" + base +
                  "' is not wired as add_lora builds it (base + scale * B(A x))");
    }
    const int64_t out = w->value.dim(0), in = w->value.dim(1), rank = a->value.dim(0);
    if (b->value.dim(0) != out || b->value.dim(1) != rank || a->value.dim(1) != in ||
        w->value.numel() != out * in || a->value.numel() != rank * in ||
        b->value.numel() != out * rank) {
      throw Error("merge_lora: adapter of node '" + base + "' has A " +
                  shape_str(a->value.shape()) + " and B " + shape_str(b->value.shape()) +
                  " that do not fit its weight " + shape_str(w->value.shape()));
    }
    // W is shared with whoever else holds the tensor; write a fresh one.
    Tensor merged(DType::kF32, w->value.shape());
    const float* wa = a->value.f32();
    const float* wb = b->value.f32();
    const double sc = s->value.f32()[0];
    for (int64_t i = 0; i < out; ++i) {
      for (int64_t j = 0; j < in; ++j) {
        double acc = 0;
        for (int64_t k = 0; k < rank; ++k)
          acc += static_cast<double>(wb[i * rank + k]) * wa[k * in + j];
        merged.f32()[i * in + j] = static_cast<float>(w->value.f32()[i * in + j] + sc * acc);
      }
    }
    w->value = merged;
    w->trainable = true;
    if (Initializer* bias = weight_of(g, *n, 2)) bias->trainable = true;
    n->outputs[0] = add->outputs[0];
    std::vector<char> removed(g.nodes.size(), 0);
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      const std::string& name = g.nodes[i].name;
      removed[i] = name == p + "a" || name == p + "b" || name == p + "scale" || name == p + "add";
    }
    remove_nodes(g, removed);
    for (const char* k : {"A", "B", "scale"}) g.initializers.erase(p + k);
  }
  g.validate();
  return static_cast<int>(bases.size());
}

}  // namespace minnow
