#include "compress/qat_batchnorm.h"

#include "passes/fresh_names.h"
#include "passes/graph_uses.h"

namespace minnow::compress {
namespace {

const Initializer* f32_initializer(const Graph& g, const std::string& name) {
  auto it = g.initializers.find(name);
  if (it == g.initializers.end() || it->second.value.dtype() != DType::kF32) return nullptr;
  return &it->second;
}

bool is_vector(const Initializer* i, int64_t n) { return i && i->value.shape() == Shape{n}; }

Node make_node(std::string name, OpKind op, std::vector<std::string> inputs, std::string output) {
  Node n;
  n.name = std::move(name);
  n.op = op;
  n.inputs = std::move(inputs);
  n.outputs = {std::move(output)};
  return n;
}

// The Conv2d -> BatchNorm pairs to simulate: conv node index -> BatchNorm node index.
std::map<size_t, size_t> find_pairs(const Graph& g, const std::set<std::string>& convs) {
  const GraphUses uses(g);
  std::map<size_t, size_t> pairs;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& bn = g.nodes[i];
    if (bn.op != OpKind::kBatchNorm || bn.inputs.size() != 5 || bn.attrs.has("activation")) {
      continue;
    }
    auto p = uses.writer.find(bn.inputs[0]);
    if (p == uses.writer.end() || !uses.only_internal_reader(bn.inputs[0])) continue;
    const Node& conv = g.nodes[p->second];
    if (conv.op != OpKind::kConv2d || !convs.count(conv.name) || conv.outputs.size() != 1 ||
        !conv.attrs.get_string("activation", "").empty()) {
      continue;
    }
    const Initializer* w = f32_initializer(g, conv.inputs[1]);
    if (!w || w->value.rank() != 4) continue;
    const int64_t c = w->value.dim(0);
    const bool has_bias = conv.inputs.size() > 2 && !conv.inputs[2].empty();
    if (has_bias && !is_vector(f32_initializer(g, conv.inputs[2]), c)) continue;
    bool params_ok = true;
    for (size_t k = 1; k < 5; ++k) params_ok &= is_vector(f32_initializer(g, bn.inputs[k]), c);
    if (params_ok) pairs[p->second] = i;
  }
  return pairs;
}

}  // namespace

std::vector<SimulatedBatchNorm> simulate_batchnorm_folding(Graph& g,
                                                           const std::set<std::string>& convs) {
  const std::map<size_t, size_t> pairs = find_pairs(g, convs);
  std::vector<SimulatedBatchNorm> done;
  if (pairs.empty()) return done;
  FreshNames names(g);
  std::map<size_t, std::string> bn_input;  // BatchNorm index -> its new input value
  std::vector<Node> out;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    auto pair = pairs.find(i);
    if (pair == pairs.end()) {
      Node n = g.nodes[i];
      auto in = bn_input.find(i);
      if (in != bn_input.end()) n.inputs[0] = in->second;
      out.push_back(std::move(n));
      continue;
    }
    Node conv = g.nodes[i];
    const Node& bn = g.nodes[pair->second];
    const int64_t c = g.initializers.at(conv.inputs[1]).value.dim(0);
    const std::string& base = bn.name;
    // s = gamma / sqrt(running_var + eps), read from the running statistics every step.
    Tensor eps(DType::kF32, {});
    eps.f32()[0] = static_cast<float>(bn.attrs.get_float("epsilon", 1e-5));
    const std::string eps_name = names.value(base + ".epsilon");
    g.initializers[eps_name] = Initializer{eps, false};
    const std::string var_eps = names.value(base + ".var_eps");
    out.push_back(
        make_node(names.node(base + "/var_eps"), OpKind::kAdd, {bn.inputs[4], eps_name}, var_eps));
    const std::string std_dev = names.value(base + ".running_std");
    out.push_back(make_node(names.node(base + "/running_std"), OpKind::kSqrt, {var_eps}, std_dev));
    const std::string s = names.value(base + ".fold_scale");
    out.push_back(
        make_node(names.node(base + "/fold_scale"), OpKind::kDiv, {bn.inputs[1], std_dev}, s));
    auto reshape = [&](const std::string& v, std::vector<int64_t> shape, const std::string& what) {
      const std::string r = names.value(v + what);
      Node n = make_node(names.node(v + "/" + what), OpKind::kReshape, {v}, r);
      n.attrs.set("shape", std::move(shape));
      out.push_back(std::move(n));
      return r;
    };
    // w' = w * s[c]: the weight as folding will make it.
    const std::string s_rows = reshape(s, {c, 1, 1, 1}, ".rows");
    SimulatedBatchNorm sim{conv.name, bn.name, names.value(conv.name + ".weight_folded")};
    out.push_back(make_node(names.node(conv.name + "/weight_folded"), OpKind::kMul,
                            {conv.inputs[1], s_rows}, sim.folded_weight));
    const bool has_bias = conv.inputs.size() > 2 && !conv.inputs[2].empty();
    const std::string bias = has_bias ? conv.inputs[2] : "";
    conv.inputs = {conv.inputs[0], sim.folded_weight};
    const std::string y = conv.outputs[0];
    out.push_back(std::move(conv));
    // y / s[c] (+ b[c]): what the unfolded conv computed, for BatchNorm's batch statistics.
    const std::string s_channels = reshape(s, {1, c, 1, 1}, ".channels");
    std::string unscaled = names.value(y + "_unscaled");
    out.push_back(
        make_node(names.node(sim.conv + "/unscale"), OpKind::kDiv, {y, s_channels}, unscaled));
    if (has_bias) {
      const std::string b = reshape(bias, {1, c, 1, 1}, ".channels");
      const std::string biased = names.value(y + "_biased");
      out.push_back(make_node(names.node(sim.conv + "/bias"), OpKind::kAdd, {unscaled, b}, biased));
      unscaled = biased;
    }
    bn_input[pair->second] = unscaled;
    done.push_back(std::move(sim));
  }
  g.nodes = std::move(out);
  g.validate();
  return done;
}

}  // namespace minnow::compress
