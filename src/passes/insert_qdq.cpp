#include "passes/insert_qdq.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "core/op_groups.h"
#include "minnow/error.h"
#include "passes/fresh_names.h"
#include "passes/graph_uses.h"
#include "passes/quant_range.h"

namespace minnow {
namespace {

// Inputs that carry data (as opposed to weights, shapes or axes).
std::vector<size_t> data_inputs(const Node& n) {
  switch (n.op) {
    case OpKind::kAdd:
      return {0, 1};
    case OpKind::kConcat: {
      std::vector<size_t> all(n.inputs.size());
      for (size_t i = 0; i < all.size(); ++i) all[i] = i;
      return all;
    }
    default:
      return {0};
  }
}

bool is_float_initializer(const Graph& g, const std::string& name, size_t rank) {
  auto it = g.initializers.find(name);
  return it != g.initializers.end() && it->second.value.dtype() == DType::kF32 &&
         it->second.value.rank() == static_cast<int>(rank);
}

// Why a compute node cannot be quantized ("" when it can).
std::string why_not(const Graph& g, const Node& n, const std::map<std::string, ValueInfo>& info) {
  for (size_t i : data_inputs(n)) {
    if (i >= n.inputs.size() || n.inputs[i].empty()) return "missing input";
    if (g.initializers.count(n.inputs[i])) return "constant input";
    if (info.at(n.inputs[i]).dtype != DType::kF32) return "input is not f32";
  }
  const bool has_bias = n.inputs.size() > 2 && !n.inputs[2].empty();
  switch (n.op) {
    case OpKind::kConv2d:
      if (!is_float_initializer(g, n.inputs[1], 4)) return "weights are not a constant";
      if (has_bias && !is_float_initializer(g, n.inputs[2], 1)) return "bias is not a constant";
      return "";
    case OpKind::kLinear:
      if (info.at(n.inputs[0]).shape.size() != 2) return "input is not 2-d";
      if (!is_float_initializer(g, n.inputs[1], 2)) return "weights are not a constant";
      if (has_bias && !is_float_initializer(g, n.inputs[2], 1)) return "bias is not a constant";
      return "";
    case OpKind::kAdd:
      if (info.at(n.inputs[0]).shape != info.at(n.inputs[1]).shape) return "broadcasting add";
      return "";
    case OpKind::kGlobalAvgPool:
      return info.at(n.inputs[0]).shape.size() == 4 ? "" : "input is not 4-d";
    default:
      if (is_quantizable_elementwise(n.op)) return "";
      return "op has no int8 kernel";
  }
}

// Why an LSTM / GRU cannot get int8 gates ("" when it can): float input, constant float
// weights of rank 2.
std::string why_not_gates(const Graph& g, const Node& n,
                          const std::map<std::string, ValueInfo>& info) {
  if (n.inputs.size() > 6) return "already has int8 weights";
  if (g.initializers.count(n.inputs[0])) return "constant input";
  if (info.at(n.inputs[0]).dtype != DType::kF32) return "input is not f32";
  if (!is_float_initializer(g, n.inputs[1], 2) || !is_float_initializer(g, n.inputs[2], 2)) {
    return "weights are not constants";
  }
  return "";
}

// Union-find over value names: values that must share quantization parameters.
struct Groups {
  std::map<std::string, std::string> parent;
  std::string find(const std::string& v) {
    auto it = parent.find(v);
    if (it == parent.end() || it->second == v) return v;
    std::string root = find(it->second);
    parent[v] = root;
    return root;
  }
  void join(const std::string& a, const std::string& b) {
    std::string ra = find(a), rb = find(b);
    if (ra != rb) parent[ra] = rb;
  }
};

Tensor scalar_f32(float v) {
  Tensor t(DType::kF32, {});
  t.f32()[0] = v;
  return t;
}

// Symmetric int8 weights, per output channel (axis 0) or per tensor.
struct QuantizedWeight {
  Tensor data, scale;  // symmetric: the zero point is 0
};

// A clustered weight (Deep Compression; `minnow cluster`) holds a few values shared by the whole
// tensor. With one scale for the tensor they stay shared: at most that many int8 codes, which
// the .mnw writer stores as b-bit indices into a codebook (and the values keep their sparsity).
// Per-channel scales would give every channel its own codes and undo the clustering's storage
// gain, for no accuracy gain (a handful of shared values is quantized per tensor within half a
// step of 1/127 of the largest).
constexpr size_t kClusteredMaxValues = 64;

bool is_clustered(const Tensor& w) {
  if (w.numel() <= static_cast<int64_t>(4 * kClusteredMaxValues)) return false;
  std::set<float> seen;
  for (int64_t i = 0; i < w.numel(); ++i) {
    if (seen.insert(w.f32()[i]).second && seen.size() > kClusteredMaxValues) return false;
  }
  return true;
}

QuantizedWeight quantize_weight(const Tensor& w, bool per_channel, int bits = 8) {
  if (bits == 8 && per_channel && is_clustered(w)) per_channel = false;
  const int64_t channels = per_channel ? w.dim(0) : 1;
  QuantizedWeights q = quantize_weights_per_channel(w.f32(), channels, w.numel() / channels, bits);
  QuantizedWeight out;
  out.data = Tensor(DType::kI8, w.shape());
  std::copy(q.data.begin(), q.data.end(), out.data.data<int8_t>());
  out.scale = per_channel ? Tensor(DType::kF32, {channels}) : Tensor(DType::kF32, {});
  std::copy(q.scale.begin(), q.scale.end(), out.scale.f32());
  return out;
}

// Bias correction for a depthwise convolution (Nagel et al. 2019, "Data-Free Quantization"):
// rounding its few weights per channel shifts the channel's expected output by
// sum_k (w_q[k] - w[k]) * E[x_c]; subtracting that from the bias removes the shift. Only
// depthwise layers need it: with 9 weights per channel the rounding errors do not average out.
// `mean` is the calibrated per-channel mean of the input. Creates a zero bias when there is none.
bool correct_depthwise_bias(const Node& n, const Tensor& w, const QuantizedWeight& q,
                            const std::vector<double>& mean, Tensor& bias) {
  const int64_t out_channels = w.dim(0), channels = static_cast<int64_t>(mean.size());
  if (n.attrs.get_int("group", 1) != channels || w.dim(1) != 1 || channels == 0 ||
      out_channels % channels != 0) {
    return false;
  }
  if (!bias.defined()) bias = Tensor(DType::kF32, {out_channels});
  const int64_t per = w.numel() / out_channels, multiplier = out_channels / channels;
  for (int64_t o = 0; o < out_channels; ++o) {
    const float scale = q.scale.f32()[q.scale.numel() == 1 ? 0 : o];
    double shift = 0;
    for (int64_t k = 0; k < per; ++k) {
      const int64_t i = o * per + k;
      shift += double(q.data.data<int8_t>()[i]) * scale - w.f32()[i];
    }
    bias.f32()[o] -= static_cast<float>(shift * mean[o / multiplier]);
  }
  return true;
}

}  // namespace

bool is_quantizable_compute(OpKind op) {
  return op == OpKind::kConv2d || op == OpKind::kLinear || op == OpKind::kAdd ||
         op == OpKind::kGlobalAvgPool || is_quantizable_elementwise(op);
}

bool is_quantizable_elementwise(OpKind op) {
  // ReLU and ReLU6 are fused into the op before them instead (their own tables would be exact
  // too, but one integer op less is faster).
  return is_elementwise_activation(op) && op != OpKind::kRelu && op != OpKind::kRelu6;
}

bool is_quantization_passthrough(OpKind op) {
  return op == OpKind::kMaxPool || op == OpKind::kFlatten || op == OpKind::kReshape ||
         op == OpKind::kTranspose || op == OpKind::kConcat;
}

ActivationQuant choose_activation_quant(ValueRange r, bool symmetric) {
  const QuantChoice c =
      symmetric ? choose_i8_symmetric(r.lo, r.hi) : choose_u8_asymmetric(r.lo, r.hi);
  return ActivationQuant{c.scale, c.zero_point, symmetric ? DType::kI8 : DType::kU8};
}

QdqSummary insert_qdq(Graph& g, const std::map<std::string, ValueRange>& ranges,
                      const QdqOptions& opts,
                      const std::map<std::string, std::vector<double>>& input_means) {
  const std::map<std::string, ValueInfo> info = g.infer_shapes();
  QdqSummary summary;
  // 1. Which nodes run on quantized data.
  std::set<std::string> quantized_outputs;  // values written by quantized nodes
  std::vector<char> quantized(g.nodes.size(), 0);
  // LSTM / GRU with int8 gates: int8 weights; their activations are quantized by the op itself,
  // row by row as they come (ops/recurrent_util.h), so they get no QDQ here.
  std::vector<char> int8_gates(g.nodes.size(), 0);
  // Embedding tables: int8 rows in the file (weight-only; the inference session folds them back
  // to float once when it loads: a lookup does no arithmetic to run in int8).
  std::vector<char> int8_table(g.nodes.size(), 0);
  // Records a node's precision, int8 unless it is kept in float or why_not() says why not.
  auto decide = [&](const Node& n, auto why_not) {
    const std::string reason =
        opts.keep_float.count(n.name) ? "kept in float by request" : std::string(why_not());
    if (reason.empty()) {
      summary.int8_nodes.push_back(n.name);
    } else {
      summary.float_nodes.push_back(n.name);
      summary.reasons[n.name] = reason;
    }
    return static_cast<char>(reason.empty());
  };
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    if (n.op == OpKind::kEmbedding) {
      int8_table[i] = decide(n, [&] {
        return is_float_initializer(g, n.inputs[1], 2) ? "" : "table is not a constant";
      });
      continue;
    }
    if (n.op == OpKind::kLstm || n.op == OpKind::kGru) {
      int8_gates[i] = decide(n, [&] { return why_not_gates(g, n, info); });
      continue;
    }
    if (is_quantizable_compute(n.op)) {
      quantized[i] = decide(n, [&] { return why_not(g, n, info); });
    } else if (is_quantization_passthrough(n.op)) {
      bool all = true;
      for (size_t k : data_inputs(n)) all = all && quantized_outputs.count(n.inputs[k]);
      quantized[i] = all && info.at(n.outputs[0]).dtype == DType::kF32;
    }
    if (quantized[i]) quantized_outputs.insert(n.outputs.begin(), n.outputs.end());
  }
  // 2. The values they read get quantization parameters; passthrough ops tie theirs together.
  std::set<std::string> values;
  Groups groups;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (!quantized[i]) continue;
    for (size_t k : data_inputs(g.nodes[i])) values.insert(g.nodes[i].inputs[k]);
  }
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    if (!quantized[i] || !is_quantization_passthrough(n.op) || !values.count(n.outputs[0])) {
      continue;
    }
    for (size_t k : data_inputs(n)) groups.join(n.inputs[k], n.outputs[0]);
  }
  std::map<std::string, ValueRange> group_range;
  for (const std::string& v : values) {
    auto r = ranges.find(v);
    if (r == ranges.end()) throw Error("no calibrated range for value '" + v + "'");
    auto [it, fresh] = group_range.emplace(groups.find(v), r->second);
    if (!fresh) {
      it->second.lo = std::min(it->second.lo, r->second.lo);
      it->second.hi = std::max(it->second.hi, r->second.hi);
    }
  }
  std::map<std::string, ActivationQuant> params;
  for (const std::string& v : values) {
    params[v] = choose_activation_quant(group_range.at(groups.find(v)), opts.symmetric_activations);
  }

  // 3. Rewrite: Q -> DQ after each quantized value's producer, every reader reads the DQ.
  FreshNames names(g);
  auto make_node = [&](const std::string& base, OpKind op, std::vector<std::string> inputs,
                       const std::string& output) {
    Node n;
    n.name = names.node(base);
    n.op = op;
    n.inputs = std::move(inputs);
    n.outputs = {output};
    return n;
  };
  std::map<std::string, std::string> dequantized;  // value -> its DequantizeLinear output
  std::vector<Node> out;
  auto add_initializer = [&](const std::string& base, Tensor t) {
    std::string name = names.value(base);
    g.initializers[name] = Initializer{std::move(t), false};
    return name;
  };
  auto emit_qdq = [&](const std::string& v) {
    const ActivationQuant& q = params.at(v);
    Tensor zp(q.dtype, {});
    if (q.dtype == DType::kU8) {
      zp.data<uint8_t>()[0] = static_cast<uint8_t>(q.zero_point);
    } else {
      zp.data<int8_t>()[0] = static_cast<int8_t>(q.zero_point);
    }
    const std::string scale = add_initializer(v + "_scale", scalar_f32(q.scale));
    const std::string zero = add_initializer(v + "_zero_point", std::move(zp));
    const std::string qv = names.value(v + "_quantized"), dqv = names.value(v + "_dequantized");
    out.push_back(make_node(v + "/QuantizeLinear", OpKind::kQuantizeLinear, {v, scale, zero}, qv));
    out.push_back(
        make_node(v + "/DequantizeLinear", OpKind::kDequantizeLinear, {qv, scale, zero}, dqv));
    dequantized[v] = dqv;
  };
  std::map<std::string, QuantizedWeight> weights;  // float weight name -> quantized
  std::map<std::string, std::string> weight_dq;
  auto dequantized_weight = [&](const std::string& w, bool per_channel) {
    auto it = weight_dq.find(w);
    if (it != weight_dq.end()) return it->second;
    QuantizedWeight q = quantize_weight(g.initializers.at(w).value, per_channel);
    const std::string data = add_initializer(w + "_quantized", q.data);
    const std::string scale = add_initializer(w + "_scale", q.scale);
    const std::string dq = names.value(w + "_dequantized");
    // Symmetric: the zero point is 0, which an absent zero point means.
    Node n = make_node(w + "/DequantizeLinear", OpKind::kDequantizeLinear, {data, scale, ""}, dq);
    n.attrs.set("axis", int64_t{0});
    out.push_back(std::move(n));
    weights[w] = std::move(q);
    return weight_dq[w] = dq;
  };

  for (const ValueInfo& v : g.inputs) {
    if (values.count(v.name)) emit_qdq(v.name);
  }
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node n = g.nodes[i];
    for (std::string& in : n.inputs) {
      auto it = dequantized.find(in);
      if (it != dequantized.end()) in = it->second;
    }
    if (int8_table[i]) n.inputs[1] = dequantized_weight(n.inputs[1], true);
    if (int8_gates[i]) {
      // One scale per row always: the op's int8 gates take per-row scales.
      n.inputs[1] = dequantized_weight(n.inputs[1], true);
      n.inputs[2] = dequantized_weight(n.inputs[2], true);
      n.attrs.set("int8_gates", int64_t{1});
    }
    if (quantized[i] && (n.op == OpKind::kConv2d || n.op == OpKind::kLinear)) {
      const std::string w = n.inputs[1], x = g.nodes[i].inputs[0];
      n.inputs[1] = dequantized_weight(w, opts.per_channel);
      const bool has_bias = n.inputs.size() > 2 && !n.inputs[2].empty();
      Tensor bias = has_bias ? g.initializers.at(n.inputs[2]).value.clone() : Tensor();
      auto mean = input_means.find(x);
      // The bias stays float, corrected or not: the lowering derives its int32 form at
      // x_scale * w_scale, and so does the ONNX exporter (onnx/export_qdq.h).
      if (n.op == OpKind::kConv2d && mean != input_means.end() &&
          correct_depthwise_bias(n, g.initializers.at(w).value, weights.at(w), mean->second,
                                 bias)) {
        summary.bias_corrected.push_back(n.name);
        n.inputs.resize(3);
        n.inputs[2] = add_initializer((has_bias ? n.inputs[2] : n.name + ".bias") + "_corrected",
                                      std::move(bias));
      }
    }
    out.push_back(std::move(n));
    for (const std::string& o : g.nodes[i].outputs) {
      if (values.count(o)) emit_qdq(o);
    }
  }
  g.nodes = std::move(out);
  remove_unread_initializers(g);
  g.validate();
  return summary;
}

std::vector<std::string> quantize_weights_only(Graph& g, int bits, bool per_channel,
                                               int64_t group_size) {
  if (bits != 8 && bits != 4) throw Error("weight-only quantization takes 8 or 4 bits");
  if (group_size < 0) {
    throw Error("weight group size must be positive, got " + std::to_string(group_size));
  }
  FreshNames names(g);
  std::vector<Node> out;
  std::vector<std::string> done;
  std::map<std::string, std::string> dequantized;  // float weight -> DequantizeLinear output
  for (Node& n : g.nodes) {
    const bool weighted = n.op == OpKind::kConv2d || n.op == OpKind::kLinear;
    const size_t rank = n.op == OpKind::kConv2d ? 4 : 2;
    if (weighted && n.inputs.size() > 1 && is_float_initializer(g, n.inputs[1], rank)) {
      const std::string w = n.inputs[1];
      auto it = dequantized.find(w);
      if (it == dequantized.end()) {
        const Tensor& wt = g.initializers.at(w).value;
        const int64_t per_output = wt.numel() / wt.dim(0);
        // Per group: the weight viewed as [numel / G, G] is quantized per row (a "channel" of
        // G consecutive weights of one output), then reshaped back, all with standard ops.
        const bool grouped =
            group_size > 0 && group_size < per_output && per_output % group_size == 0;
        Tensor view = wt;
        if (grouped) view = wt.reshaped({wt.numel() / group_size, group_size});
        QuantizedWeight q = quantize_weight(view, per_channel || grouped, bits);
        Node dq;
        dq.name = names.node(w + "/DequantizeLinear");
        dq.op = OpKind::kDequantizeLinear;
        dq.inputs = {names.value(w + "_quantized"), names.value(w + "_scale"), ""};
        dq.outputs = {names.value(w + "_dequantized")};
        dq.attrs.set("axis", int64_t{0});
        g.initializers[dq.inputs[0]] = Initializer{q.data, false};
        g.initializers[dq.inputs[1]] = Initializer{q.scale, false};
        it = dequantized.emplace(w, dq.outputs[0]).first;
        out.push_back(std::move(dq));
        if (grouped) {
          Node reshape;
          reshape.name = names.node(w + "/Reshape");
          reshape.op = OpKind::kReshape;
          reshape.inputs = {it->second};
          reshape.outputs = {
              names.value(w + "_dequantized_" + std::string(rank == 4 ? "oihw" : "oi"))};
          reshape.attrs.set("shape", std::vector<int64_t>(wt.shape().begin(), wt.shape().end()));
          it->second = reshape.outputs[0];
          out.push_back(std::move(reshape));
        }
      }
      n.inputs[1] = it->second;
      done.push_back(n.name);
    }
    out.push_back(std::move(n));
  }
  g.nodes = std::move(out);
  remove_unread_initializers(g);
  g.validate();
  return done;
}

}  // namespace minnow
