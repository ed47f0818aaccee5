#include "passes/lower_qdq.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "core/op_groups.h"
#include "core/op_registry.h"
#include "minnow/error.h"
#include "passes/fold_constants.h"
#include "passes/fresh_names.h"
#include "passes/graph_uses.h"
#include "passes/insert_qdq.h"
#include "passes/quant_range.h"
#include "passes/row_scaled_int8.h"

namespace minnow {
namespace {

// Quantization parameters as the lowering reads them: constant scale and zero point.
struct Params {
  const Tensor* scale = nullptr;
  const Tensor* zero_point = nullptr;  // nullptr: absent (zero)
  std::string scale_name, zero_point_name;
};

bool is_q8(DType t) { return t == DType::kU8 || t == DType::kI8; }

int32_t int_at(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::kU8:
      return t.data<uint8_t>()[i];
    case DType::kI8:
      return t.data<int8_t>()[i];
    case DType::kI32:
      return t.data<int32_t>()[i];
    default:
      return std::numeric_limits<int32_t>::min();  // never equal to a real zero point
  }
}

bool same_params(const Params& a, const Params& b) {
  if (a.scale->numel() != 1 || b.scale->numel() != 1) return false;
  if (a.scale->f32()[0] != b.scale->f32()[0]) return false;
  const int32_t za = a.zero_point ? int_at(*a.zero_point, 0) : 0;
  const int32_t zb = b.zero_point ? int_at(*b.zero_point, 0) : 0;
  const DType ta = a.zero_point ? a.zero_point->dtype() : DType::kU8;
  const DType tb = b.zero_point ? b.zero_point->dtype() : DType::kU8;
  return za == zb && ta == tb;
}

class Lowering {
 public:
  Lowering(Graph& g, const LowerQdqOptions& opts)
      : g_(g), opts_(opts), uses_(g), names_(g), info_(g.infer_shapes()) {}

  int run() {
    removed_.assign(g_.nodes.size(), 0);
    int lowered = 0;
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      const OpKind op = g_.nodes[i].op;
      if (opts_.qoperator_only && op != OpKind::kConv2d && op != OpKind::kLinear) continue;
      switch (op) {
        case OpKind::kConv2d:
        case OpKind::kLinear:
          lowered += lower_weighted(i);
          break;
        case OpKind::kAdd:
          lowered += lower_add(i);
          break;
        case OpKind::kGlobalAvgPool:
          lowered += lower_unary(i, OpKind::kQLinearGlobalAvgPool);
          break;
        case OpKind::kSoftmax:
          lowered += lower_softmax(i);
          break;
        case OpKind::kLstm:
        case OpKind::kGru:
          lowered += lower_recurrent(i);
          break;
        case OpKind::kMaxPool:
        case OpKind::kFlatten:
        case OpKind::kReshape:
        case OpKind::kTranspose:
        case OpKind::kConcat:
          lowered += lower_passthrough(i);
          break;
        default:
          if (is_quantizable_elementwise(g_.nodes[i].op)) lowered += lower_lookup(i);
          break;
      }
    }
    if (lowered == 0) {
      for (const std::string& name : added_) g_.initializers.erase(name);
      return 0;
    }
    remove_nodes(g_, removed_);
    remove_dead_dequantize();
    remove_unread_initializers(g_);
    return lowered;
  }

 private:
  const Tensor* constant(const std::string& name) const {
    auto it = g_.initializers.find(name);
    return it == g_.initializers.end() ? nullptr : &it->second.value;
  }

  // The node (not yet removed) writing `value`, if it is a DequantizeLinear or QuantizeLinear
  // with constant parameters.
  const Node* qdq_node(const std::string& value, OpKind op) const {
    auto w = uses_.writer.find(value);
    if (w == uses_.writer.end() || removed_[w->second]) return nullptr;
    const Node& n = g_.nodes[w->second];
    if (n.op != op || n.inputs.size() < 2 || !constant(n.inputs[1])) return nullptr;
    if (n.inputs.size() > 2 && !n.inputs[2].empty() && !constant(n.inputs[2])) return nullptr;
    return &n;
  }

  Params params_of(const Node& qdq) const {
    Params p;
    p.scale_name = qdq.inputs[1];
    p.scale = constant(p.scale_name);
    if (qdq.inputs.size() > 2 && !qdq.inputs[2].empty()) {
      p.zero_point_name = qdq.inputs[2];
      p.zero_point = constant(p.zero_point_name);
    }
    return p;
  }

  // An activation read through DequantizeLinear of per-tensor u8/i8 data.
  struct Dequantized {
    std::string data;
    Params params;
  };
  std::optional<Dequantized> dequantized_activation(const std::string& value) const {
    const Node* dq = qdq_node(value, OpKind::kDequantizeLinear);
    if (!dq || constant(dq->inputs[0])) return std::nullopt;
    auto it = info_.find(dq->inputs[0]);
    if (it == info_.end() || !is_q8(it->second.dtype)) return std::nullopt;
    Params p = params_of(*dq);
    if (p.scale->numel() != 1) return std::nullopt;
    return Dequantized{dq->inputs[0], p};
  }

  // The single QuantizeLinear (per tensor) that reads `value`, when nothing else does.
  std::optional<size_t> sole_quantize_reader(const std::string& value) const {
    if (!uses_.only_internal_reader(value)) return std::nullopt;
    for (size_t k = 0; k < g_.nodes.size(); ++k) {
      const Node& n = g_.nodes[k];
      if (removed_[k] || n.inputs.empty() || n.inputs[0] != value) continue;
      if (!qdq_node(n.outputs[0], OpKind::kQuantizeLinear)) return std::nullopt;
      if (params_of(n).scale->numel() != 1) return std::nullopt;
      return k;
    }
    return std::nullopt;
  }

  // A zero point input for `p`, creating a u8 zero when the graph left it out.
  std::string zero_point_input(const Params& p) {
    if (!p.zero_point_name.empty()) return p.zero_point_name;
    const std::string name = names_.value(p.scale_name + "_zero_point");
    add_initializer(name, Tensor(DType::kU8, {}));
    return name;
  }

  // LSTM / GRU that `minnow quantize` marked for int8 gates (attribute int8_gates = 1; a QDQ
  // model from elsewhere means float gates), whose w_ih and w_hh are DequantizeLinear of int8
  // constants with zero points 0 and one scale per row (or one for all): the op takes the codes
  // and the scales (inputs 6 and 7) and computes its gates in int8 (ops/recurrent_util.h).
  int lower_recurrent(size_t i) {
    Node& n = g_.nodes[i];
    if (n.attrs.get_int("int8_gates", 0) != 1 || n.inputs.size() > 6) return 0;
    std::string codes[2], scales[2];
    for (int k = 0; k < 2; ++k) {
      const Node* dq = qdq_node(n.inputs[1 + k], OpKind::kDequantizeLinear);
      std::optional<RowScaledInt8> w = row_scaled_int8(g_, dq);
      if (!w) return 0;
      codes[k] = dq->inputs[0];
      scales[k] = dq->inputs[1];
      if (!w->per_row) {
        scales[k] = names_.value(dq->inputs[1] + "_rows");
        add_initializer(scales[k], std::move(w->scales));
      }
    }
    n.inputs.resize(8);  // the lengths (input 5) keep their place
    n.inputs[1] = codes[0];
    n.inputs[2] = codes[1];
    n.inputs[6] = scales[0];
    n.inputs[7] = scales[1];
    return 1;
  }

  // Conv2d / Linear with quantized input and int8 symmetric weights.
  int lower_weighted(size_t i) {
    const Node& n = g_.nodes[i];
    // A float residual sum (Conv2d input 3, fuse_residual_add) has no place among QLinearConv's
    // inputs: lowering would drop it.
    if (n.inputs.size() > 3 && !n.inputs[3].empty()) return 0;
    auto x = dequantized_activation(n.inputs[0]);
    const Node* wdq = qdq_node(n.inputs[1], OpKind::kDequantizeLinear);
    if (!x || !wdq) return 0;
    const Tensor* w = constant(wdq->inputs[0]);
    if (!w || w->dtype() != DType::kI8) return 0;
    const Params wp = params_of(*wdq);
    const int64_t channels = w->dim(0);
    if (wp.scale->numel() != 1) {
      if (wp.scale->numel() != channels || wdq->attrs.get_int("axis", 1) != 0) return 0;
    }
    if (wp.zero_point) {
      for (int64_t c = 0; c < wp.zero_point->numel(); ++c) {
        if (int_at(*wp.zero_point, c) != 0) return 0;  // the integer kernels take symmetric weights
      }
    }
    std::string bias;
    if (n.inputs.size() > 2 && !n.inputs[2].empty()) {
      bias = integer_bias(n.inputs[2], x->params.scale->f32()[0], *wp.scale, channels);
      if (bias.empty()) return 0;
    }
    Node q = n;  // keeps name and attributes (strides, pads, group, activation)
    q.op = n.op == OpKind::kConv2d ? OpKind::kQLinearConv : OpKind::kQLinearLinear;
    q.inputs = {x->data,
                x->params.scale_name,
                zero_point_input(x->params),
                wdq->inputs[0],
                wp.scale_name,
                wp.zero_point_name,
                "",
                "",
                bias};
    const auto k = sole_quantize_reader(n.outputs[0]);
    if (!k && opts_.qoperator_only) return 0;  // ONNX's QLinear ops write quantized outputs only
    if (k) {
      const Params yp = params_of(g_.nodes[*k]);
      q.inputs[6] = yp.scale_name;
      q.inputs[7] = zero_point_input(yp);
      q.outputs = g_.nodes[*k].outputs;
    }
    if (!accepts(q)) return 0;
    if (k) removed_[*k] = 1;
    g_.nodes[i] = std::move(q);
    return 1;
  }

  // The bias as int32 at scale x_scale * w_scale: taken as it is when it already is that, else
  // requantized from its real values.
  std::string integer_bias(const std::string& value, float x_scale, const Tensor& w_scale,
                           int64_t channels) {
    const Tensor* real = constant(value);
    const Node* bdq = real ? nullptr : qdq_node(value, OpKind::kDequantizeLinear);
    Tensor b(DType::kF32, {channels});
    if (real) {
      if (real->dtype() != DType::kF32 || real->numel() != channels) return "";
      for (int64_t c = 0; c < channels; ++c) b.f32()[c] = real->f32()[c];
    } else if (bdq) {
      const Tensor* data = constant(bdq->inputs[0]);
      const Params bp = params_of(*bdq);
      if (!data || data->dtype() != DType::kI32 || data->numel() != channels) return "";
      if (bp.scale->numel() != 1 && bp.scale->numel() != channels) return "";
      for (int64_t c = 0; c < channels; ++c) {
        const int64_t k = bp.scale->numel() == 1 ? 0 : c;
        const int32_t zp = bp.zero_point ? int_at(*bp.zero_point, k) : 0;
        b.f32()[c] =
            static_cast<float>((double(data->data<int32_t>()[c]) - zp) * bp.scale->f32()[k]);
      }
    } else {
      return "";
    }
    Tensor q(DType::kI32, {channels});
    for (int64_t c = 0; c < channels; ++c) {
      const double s = double(x_scale) * w_scale.f32()[w_scale.numel() == 1 ? 0 : c];
      q.data<int32_t>()[c] = quantize_bias(b.f32()[c], s);
    }
    const std::string name = names_.value(value + "_int32");
    add_initializer(name, std::move(q));
    return name;
  }

  // The ReLU / ReLU6 node that alone reads `value` (residual networks add, then activate).
  std::optional<size_t> sole_activation_reader(const std::string& value) const {
    if (!uses_.only_internal_reader(value)) return std::nullopt;
    for (size_t k = 0; k < g_.nodes.size(); ++k) {
      const Node& n = g_.nodes[k];
      if (removed_[k] || n.inputs.empty() || n.inputs[0] != value) continue;
      if (n.op != OpKind::kRelu && n.op != OpKind::kRelu6) return std::nullopt;
      return k;
    }
    return std::nullopt;
  }

  int lower_add(size_t i) {
    const Node& n = g_.nodes[i];
    auto a = dequantized_activation(n.inputs[0]);
    auto b = a ? dequantized_activation(n.inputs[1]) : std::nullopt;
    if (!b || n.attrs.has("activation")) return 0;
    const auto act = sole_activation_reader(n.outputs[0]);
    auto k = sole_quantize_reader(act ? g_.nodes[*act].outputs[0] : n.outputs[0]);
    if (!k || info_.at(n.inputs[0]).shape != info_.at(n.inputs[1]).shape) return 0;
    const Params yp = params_of(g_.nodes[*k]);
    Node q = n;
    q.op = OpKind::kQLinearAdd;
    q.inputs = {a->data,       a->params.scale_name, zero_point_input(a->params),
                b->data,       b->params.scale_name, zero_point_input(b->params),
                yp.scale_name, zero_point_input(yp)};
    q.outputs = g_.nodes[*k].outputs;
    if (act) {
      q.attrs.set("activation", std::string(g_.nodes[*act].op == OpKind::kRelu ? "relu" : "relu6"));
    }
    if (!accepts(q)) return 0;
    removed_[*k] = 1;
    if (act) removed_[*act] = 1;
    g_.nodes[i] = std::move(q);
    return 1;
  }

  int lower_unary(size_t i, OpKind op) {
    const Node& n = g_.nodes[i];
    auto x = dequantized_activation(n.inputs[0]);
    auto k = x ? sole_quantize_reader(n.outputs[0]) : std::nullopt;
    if (!k) return 0;
    const Params yp = params_of(g_.nodes[*k]);
    Node q = n;
    q.op = op;
    q.inputs = {x->data, x->params.scale_name, zero_point_input(x->params), yp.scale_name,
                zero_point_input(yp)};
    q.outputs = g_.nodes[*k].outputs;
    if (!accepts(q)) return 0;
    removed_[*k] = 1;
    g_.nodes[i] = std::move(q);
    return 1;
  }

  // DQ -> Softmax becomes QLinearSoftmax with f32 output, and DQ -> Softmax -> Q with quantized
  // output: either way the softmax reads the codes, not a float copy of them.
  int lower_softmax(size_t i) {
    const Node& n = g_.nodes[i];
    auto x = dequantized_activation(n.inputs[0]);
    if (!x) return 0;
    Node q = n;
    q.op = OpKind::kQLinearSoftmax;
    q.inputs = {x->data, x->params.scale_name, zero_point_input(x->params)};
    const auto k = sole_quantize_reader(n.outputs[0]);
    if (k) {
      const Params yp = params_of(g_.nodes[*k]);
      q.inputs.push_back(yp.scale_name);
      q.inputs.push_back(zero_point_input(yp));
      q.outputs = g_.nodes[*k].outputs;
    }
    if (!accepts(q)) return 0;
    if (k) removed_[*k] = 1;
    g_.nodes[i] = std::move(q);
    return 1;
  }

  // DQ -> f -> Q for an elementwise f becomes a table of its 256 results, computed by running
  // those three nodes on the 256 codes (ops/qlinear_lookup.cpp): bit-identical to the float path.
  int lower_lookup(size_t i) {
    const Node& n = g_.nodes[i];
    if (n.inputs.size() != 1 || n.outputs.size() != 1) return 0;
    auto x = dequantized_activation(n.inputs[0]);
    auto k = x ? sole_quantize_reader(n.outputs[0]) : std::nullopt;
    if (!k) return 0;
    const Node& quantize = g_.nodes[*k];
    const Node* dequantize = qdq_node(n.inputs[0], OpKind::kDequantizeLinear);
    const DType xt = info_.at(x->data).dtype;
    Tensor codes(xt, {256});
    for (int c = 0; c < 256; ++c) {
      if (xt == DType::kU8) {
        codes.data<uint8_t>()[c] = static_cast<uint8_t>(c);
      } else {
        codes.data<int8_t>()[c] = static_cast<int8_t>(c - 128);
      }
    }
    auto parameters = [&](const Node& qdq, Tensor first) {
      std::vector<Tensor> in = {std::move(first)};
      for (size_t p = 1; p < qdq.inputs.size(); ++p) {
        in.push_back(qdq.inputs[p].empty() ? Tensor() : *constant(qdq.inputs[p]));
      }
      return in;
    };
    const Tensor real = evaluate_node(*dequantize, parameters(*dequantize, codes))[0];
    const Tensor f = evaluate_node(n, {real})[0];
    const Tensor table = evaluate_node(quantize, parameters(quantize, f))[0];
    const std::string table_name = names_.value(n.name + ".table");
    add_initializer(table_name, table);
    Node q;
    q.name = n.name;
    q.op = OpKind::kQLinearLookup;
    q.inputs = {x->data, table_name};
    q.outputs = quantize.outputs;
    if (!accepts(q)) return 0;
    removed_[*k] = 1;
    g_.nodes[i] = std::move(q);
    return 1;
  }

  // Ops that move or select values: valid on the integer data when all inputs and the output
  // share one set of parameters.
  int lower_passthrough(size_t i) {
    const Node& n = g_.nodes[i];
    const size_t data_inputs = n.op == OpKind::kConcat ? n.inputs.size() : 1;
    auto k = sole_quantize_reader(n.outputs[0]);
    if (!k) return 0;
    const Params yp = params_of(g_.nodes[*k]);
    Node q = n;
    for (size_t d = 0; d < data_inputs; ++d) {
      auto x = dequantized_activation(n.inputs[d]);
      if (!x || !same_params(x->params, yp)) return 0;
      q.inputs[d] = x->data;
    }
    q.outputs = g_.nodes[*k].outputs;
    if (!accepts(q)) return 0;
    removed_[*k] = 1;
    g_.nodes[i] = std::move(q);
    return 1;
  }

  // Whether the op's shape inference takes the rewritten node (e.g. a pooling op without an
  // integer kernel rejects u8 input): then the float form stays.
  bool accepts(const Node& n) const {
    std::vector<ValueInfo> in_info;
    for (const std::string& v : n.inputs) {
      if (v.empty()) {
        in_info.push_back({});
        continue;
      }
      const Tensor* c = constant(v);
      in_info.push_back(c ? ValueInfo{v, c->dtype(), c->shape()} : info_.at(v));
    }
    InputInfos infos;
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      infos.push_back(n.inputs[k].empty() ? nullptr : &in_info[k]);
    }
    std::vector<ValueInfo> out(n.outputs.size());
    for (size_t k = 0; k < out.size(); ++k) out[k].name = n.outputs[k];
    try {
      op_def(n.op).infer(n, infos, out);
    } catch (const Error&) {
      return false;
    }
    return true;
  }

  // DequantizeLinear nodes nobody reads any more (weights now read as int8 by the new ops).
  void remove_dead_dequantize() {
    for (bool again = true; again;) {
      again = false;
      const GraphUses uses(g_);
      std::vector<char> dead(g_.nodes.size(), 0);
      for (size_t i = 0; i < g_.nodes.size(); ++i) {
        const Node& n = g_.nodes[i];
        if (n.op != OpKind::kDequantizeLinear && n.op != OpKind::kQuantizeLinear) continue;
        const std::string& o = n.outputs[0];
        if (!uses.readers.count(o) && !uses.graph_outputs.count(o)) dead[i] = again = true;
      }
      if (again) remove_nodes(g_, dead);
    }
  }

  void add_initializer(const std::string& name, Tensor t) {
    g_.initializers[name] = Initializer{std::move(t), false};
    added_.push_back(name);
  }

  Graph& g_;
  const LowerQdqOptions opts_;
  std::vector<std::string> added_;  // initializers this pass created
  const GraphUses uses_;
  FreshNames names_;
  const std::map<std::string, ValueInfo> info_;
  std::vector<char> removed_;
};

// The parameters of a QuantizeLinear / DequantizeLinear whose scale and zero point are constants.
std::optional<Params> constant_params(const Graph& g, const Node& n) {
  auto constant = [&](const std::string& name) -> const Tensor* {
    auto it = g.initializers.find(name);
    return it == g.initializers.end() ? nullptr : &it->second.value;
  };
  if (n.inputs.size() < 2) return std::nullopt;
  Params p;
  p.scale_name = n.inputs[1];
  p.scale = constant(p.scale_name);
  if (!p.scale || p.scale->dtype() != DType::kF32) return std::nullopt;
  if (n.inputs.size() > 2 && !n.inputs[2].empty()) {
    p.zero_point_name = n.inputs[2];
    p.zero_point = constant(p.zero_point_name);
    if (!p.zero_point) return std::nullopt;
  }
  return p;
}

// PyTorch's eager-mode export writes a ReLU after a quantized Linear (torch 1.13 cannot export
// quantized::linear_relu, so it stays a quantized ReLU module) as
//   QuantizeLinear -> DequantizeLinear -> Relu -> QuantizeLinear, all with one set of parameters.
// After lowering, the integer op's quantized output runs through that float chain. With equal
// per-tensor parameters Q(relu(DQ(q))) = Q(relu(real)) exactly (the zero point is representable,
// so the ReLU clamps at it in either order; ReLU6 likewise), so the ReLU becomes the integer
// op's fused activation and the chain goes away.
int fuse_requantized_activations(Graph& g) {
  const GraphUses uses(g);
  std::vector<char> removed(g.nodes.size(), 0);
  // The node that alone reads `value`, if it has kind `op`.
  auto sole_reader = [&](const std::string& value, OpKind op) -> std::optional<size_t> {
    if (!uses.only_internal_reader(value)) return std::nullopt;
    for (size_t k = 0; k < g.nodes.size(); ++k) {
      const Node& n = g.nodes[k];
      if (removed[k] || n.inputs.empty() || n.inputs[0] != value) continue;
      if (n.op != op) return std::nullopt;
      return k;
    }
    return std::nullopt;
  };
  int fused = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node& n = g.nodes[i];
    const bool add = n.op == OpKind::kQLinearAdd;
    if (!add && n.op != OpKind::kQLinearConv && n.op != OpKind::kQLinearLinear) continue;
    if (n.attrs.has("activation") || n.inputs.size() < 8 || n.inputs[6].empty()) continue;
    Node y_quantize;  // the node's output parameters, as a QuantizeLinear would hold them
    y_quantize.inputs = {n.outputs[0], n.inputs[6], n.inputs[7]};
    const auto yp = constant_params(g, y_quantize);
    const auto d = sole_reader(n.outputs[0], OpKind::kDequantizeLinear);
    if (!yp || !d) continue;
    const auto dp = constant_params(g, g.nodes[*d]);
    if (!dp || !same_params(*yp, *dp)) continue;
    std::optional<size_t> r = sole_reader(g.nodes[*d].outputs[0], OpKind::kRelu);
    if (!r) r = sole_reader(g.nodes[*d].outputs[0], OpKind::kRelu6);
    if (!r) continue;
    const auto q = sole_reader(g.nodes[*r].outputs[0], OpKind::kQuantizeLinear);
    if (!q) continue;
    const auto qp = constant_params(g, g.nodes[*q]);
    if (!qp || !same_params(*dp, *qp)) continue;
    n.attrs.set("activation", std::string(g.nodes[*r].op == OpKind::kRelu ? "relu" : "relu6"));
    n.outputs = g.nodes[*q].outputs;
    removed[*d] = removed[*r] = removed[*q] = 1;
    ++fused;
  }
  if (fused > 0) remove_nodes(g, removed);
  return fused;
}

}  // namespace

bool is_quantized_graph(const Graph& graph) {
  for (const Node& n : graph.nodes) {
    if (n.op == OpKind::kQuantizeLinear || n.op == OpKind::kDequantizeLinear ||
        is_integer_op(n.op)) {
      return true;
    }
  }
  return false;
}

int lower_qdq(Graph& graph, const LowerQdqOptions& opts) {
  const int lowered = Lowering(graph, opts).run();
  if (lowered > 0) {
    fuse_requantized_activations(graph);
    remove_unread_initializers(graph);
    graph.validate();
  }
  return lowered;
}

}  // namespace minnow
