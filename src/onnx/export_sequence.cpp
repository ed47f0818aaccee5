// ONNX export of the sequence ops: LSTM and GRU (layout and gate-order conversion) and
// MultiHeadAttention (decomposed into MatMul / Softmax / layout nodes).
//
// minnow's recurrent ops are PyTorch's batch_first form: x [N,T,F], w_ih [dirs*G*H, F] with gates
// i,f,g,o (LSTM) or r,z,n (GRU), separate b_ih and b_hh, outputs y [N,T,dirs*H] and
// h_last [N,dirs*H]. ONNX wants x [T,N,F], W [dirs,G*H,F] with gates i,o,f,c or z,r,h,
// B [dirs, 2*G*H] = [Wb, Rb], and writes Y [T,dirs,N,H], Y_h [dirs,N,H]. The weights are
// reordered at export (they must be initializers); the activations go through Transpose and
// Reshape nodes. ONNX Runtime does not run layout=1 (batch-first) recurrences, hence the
// transposes. Both zero Y at steps past a sample's length and keep h at its last real step.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>

#include "minnow/error.h"
#include "onnx/export_context.h"
#include "onnx/onnx_tensor.h"
#include "passes/row_scaled_int8.h"

namespace minnow::onnx {
namespace {

using ::onnx::NodeProto;

// Rows of a [dirs*G*H, K] parameter regrouped as [dirs, G*H, K] in ONNX gate order:
// ONNX gate g takes minnow gate order[g].
Tensor reorder_gates(const Tensor& t, int64_t dirs, int64_t gates, int64_t h,
                     const std::vector<int>& order) {
  const int64_t k = t.rank() == 2 ? t.dim(1) : 1;
  Shape shape = t.rank() == 2 ? Shape{dirs, gates * h, k} : Shape{dirs, gates * h};
  Tensor out(t.dtype(), shape);
  const size_t block = static_cast<size_t>(h * k) * dtype_size(t.dtype());
  const auto* src = static_cast<const std::byte*>(t.raw());
  auto* dst = static_cast<std::byte*>(out.raw());
  for (int64_t d = 0; d < dirs; ++d) {
    for (int64_t g = 0; g < gates; ++g) {
      std::memcpy(dst + (d * gates + g) * block, src + (d * gates + order[g]) * block, block);
    }
  }
  return out;
}

const Tensor& param(ExportContext& cx, const Node& n, size_t i, const char* role) {
  const Tensor* t = i < n.inputs.size() ? cx.initializer(n.inputs[i]) : nullptr;
  if (!t) {
    export_fail(n, std::string(role) + " '" + (i < n.inputs.size() ? n.inputs[i] : "") +
                       "' must be an initializer: its gates are reordered for ONNX at export");
  }
  return *t;
}

// W or R in ONNX's layout [dirs, G*H, K] and gate order: a float initializer reordered, or an
// int8 one (above) as DequantizeLinear of the reordered codes (per row, axis 0) and a Reshape,
// which ONNX Runtime then runs in float on the dequantized weights.
std::string exported_weight(ExportContext& cx, const Node& n, size_t i, const char* role,
                            int64_t dirs, int64_t gates, int64_t h, const std::vector<int>& order,
                            const std::string& base) {
  if (i < n.inputs.size()) {
    if (const std::optional<RowScaledInt8> w =
            row_scaled_int8(cx.graph(), cx.graph().producer(n.inputs[i]))) {
      const int64_t k = w->codes->dim(1);
      const Tensor codes =
          reorder_gates(*w->codes, dirs, gates, h, order).reshaped({dirs * gates * h, k});
      const Tensor scales =
          reorder_gates(w->scales, dirs, gates, h, order).reshaped({dirs * gates * h});
      const std::string flat = cx.fresh(base + "_flat");
      NodeProto* dq = cx.add_node(
          "DequantizeLinear",
          {cx.add_constant(codes, base + "_quantized"), cx.add_constant(scales, base + "_scale")},
          {flat}, base + "/DequantizeLinear");
      set_attr(dq, "axis", int64_t{0});
      const std::string out = cx.fresh(base);
      cx.add_node("Reshape", {flat, cx.const_i64({dirs, gates * h, k}, base + "_shape")}, {out},
                  base + "/Reshape");
      return out;
    }
  }
  return cx.add_constant(reorder_gates(param(cx, n, i, role), dirs, gates, h, order), base);
}

std::string transpose(ExportContext& cx, const std::string& x, std::vector<int64_t> perm,
                      const std::string& out, const std::string& node) {
  set_attr(cx.add_node("Transpose", {x}, {out}, node), "perm", perm);
  return out;
}

}  // namespace

bool only_recurrent_weights_read(const Graph& g, const std::string& value) {
  bool read = false;
  for (const Node& n : g.nodes) {
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      if (n.inputs[i] != value) continue;
      if ((n.op != OpKind::kLstm && n.op != OpKind::kGru) || (i != 1 && i != 2)) return false;
      read = true;
    }
  }
  for (const ValueInfo& v : g.outputs) {
    if (v.name == value) return false;
  }
  return read;
}

void emit_lstm_gru(ExportContext& cx, const Node& n) {
  const bool lstm = n.op == OpKind::kLstm;
  const int64_t gates = lstm ? 4 : 3;
  const int64_t h = n.attrs.get_int("hidden_size", 0);
  const int64_t dirs = n.attrs.get_int("bidirectional", 0) ? 2 : 1;
  const std::vector<int> order = lstm ? std::vector<int>{0, 3, 1, 2} : std::vector<int>{1, 0, 2};
  if (n.inputs.size() > 6) {
    export_fail(n, "lowered int8 gates are not exported; export the QDQ graph (before lowering)");
  }
  const std::string w = exported_weight(cx, n, 1, "w_ih", dirs, gates, h, order, n.name + ".W");
  const std::string r = exported_weight(cx, n, 2, "w_hh", dirs, gates, h, order, n.name + ".R");
  const Tensor& b_ih = param(cx, n, 3, "b_ih");
  const Tensor& b_hh = param(cx, n, 4, "b_hh");
  const Tensor bi = reorder_gates(b_ih, dirs, gates, h, order);
  const Tensor bh = reorder_gates(b_hh, dirs, gates, h, order);
  Tensor b(bi.dtype(), {dirs, 2 * gates * h});
  const size_t half = static_cast<size_t>(gates * h) * dtype_size(b.dtype());
  for (int64_t d = 0; d < dirs; ++d) {
    auto* dst = static_cast<std::byte*>(b.raw()) + d * 2 * half;
    std::memcpy(dst, static_cast<const std::byte*>(bi.raw()) + d * half, half);
    std::memcpy(dst + half, static_cast<const std::byte*>(bh.raw()) + d * half, half);
  }
  const std::string bname = cx.add_constant(b, n.name + ".B");

  const std::string pre = n.name + "/";
  const std::string xt =
      transpose(cx, n.inputs[0], {1, 0, 2}, cx.fresh(n.inputs[0] + "_TNF"), pre + "x_to_TNF");
  std::vector<std::string> ins = {xt, w, r, bname};
  if (n.inputs.size() > 5 && !n.inputs[5].empty()) {
    const std::string lens = cx.fresh(n.inputs[5] + "_i32");
    set_attr(cx.add_node("Cast", {n.inputs[5]}, {lens}, pre + "lengths_i32"), "to",
             static_cast<int64_t>(::onnx::TensorProto::INT32));
    ins.push_back(lens);
  }
  const bool want_y = !n.outputs[0].empty();
  const bool want_h = n.outputs.size() > 1 && !n.outputs[1].empty();
  const std::string y = want_y ? cx.fresh(n.outputs[0] + "_TDNH") : std::string();
  const std::string yh = want_h ? cx.fresh(n.outputs[1] + "_DNH") : std::string();
  NodeProto* p = cx.add_node(lstm ? "LSTM" : "GRU", ins, {y, yh}, n.name);
  set_attr(p, "hidden_size", h);
  set_attr(p, "direction", std::string(dirs == 2 ? "bidirectional" : "forward"));
  // PyTorch applies r to (W_hn h + b_hn), ONNX's default applies it before the product.
  if (!lstm) set_attr(p, "linear_before_reset", int64_t{1});
  if (want_y) {
    const std::string t =
        transpose(cx, y, {2, 0, 1, 3}, cx.fresh(n.outputs[0] + "_NTDH"), pre + "y_to_NTDH");
    cx.add_node("Reshape", {t, cx.const_i64({0, 0, -1}, pre + "y_shape")}, {n.outputs[0]},
                pre + "y_reshape");
  }
  if (want_h) {
    const std::string t =
        transpose(cx, yh, {1, 0, 2}, cx.fresh(n.outputs[1] + "_NDH"), pre + "h_to_NDH");
    cx.add_node("Reshape", {t, cx.const_i64({0, -1}, pre + "h_shape")}, {n.outputs[1]},
                pre + "h_reshape");
  }
}

// softmax(q_h k_h^T / sqrt(D/h) + mask) v_h per head, with q, k, v the column thirds of
// x W_in^T + b_in; keys t >= lengths[n] get no weight (PyTorch's key_padding_mask).
void emit_attention(ExportContext& cx, const Node& n) {
  const ValueInfo& x = cx.info(n.inputs[0]);
  const int64_t t = x.shape[1], d = x.shape[2];
  const int64_t heads = n.attrs.get_int("num_heads", 0);
  if (heads < 1 || d % heads != 0) export_fail(n, "num_heads must divide the embedding dim");
  const int64_t dh = d / heads;
  const DType dt = x.dtype;
  const std::string pre = n.name + "/";
  auto tmp = [&](const char* s) { return cx.fresh(n.outputs[0] + "/" + s); };

  const std::string w_in = transposed_weight(cx, n, n.inputs[1]);
  const std::string proj = tmp("qkv_nobias"), qkv = tmp("qkv");
  cx.add_node("MatMul", {n.inputs[0], w_in}, {proj}, pre + "in_proj");
  cx.add_node("Add", {proj, n.inputs[2]}, {qkv}, pre + "in_proj_bias");
  const std::string q = tmp("q"), k = tmp("k"), v = tmp("v");
  set_attr(cx.add_node("Split", {qkv, cx.const_i64({d, d, d}, pre + "split")}, {q, k, v},
                       pre + "split_qkv"),
           "axis", int64_t{2});
  const std::string heads_shape = cx.const_i64({0, 0, heads, dh}, pre + "heads_shape");
  auto per_head = [&](const std::string& val, std::vector<int64_t> perm, const char* s) {
    const std::string r = cx.fresh(val + "_heads");
    cx.add_node("Reshape", {val, heads_shape}, {r}, pre + s + "_reshape");
    return transpose(cx, r, std::move(perm), cx.fresh(val + "_T"), pre + s + "_transpose");
  };
  const std::string qh = per_head(q, {0, 2, 1, 3}, "q");  // [N,h,T,dh]
  const std::string kh = per_head(k, {0, 2, 3, 1}, "k");  // [N,h,dh,T]
  const std::string vh = per_head(v, {0, 2, 1, 3}, "v");  // [N,h,T,dh]
  const std::string qk = tmp("qk"), scores = tmp("scores");
  cx.add_node("MatMul", {qh, kh}, {qk}, pre + "qk");
  cx.add_node("Mul", {qk, cx.const_scalar(dt, 1.0 / std::sqrt(double(dh)), pre + "scale")},
              {scores}, pre + "scale");
  std::string logits = scores;
  if (n.inputs.size() > 5 && !n.inputs[5].empty()) {
    // keep[n,t] = clip(lengths[n] - t, 0, 1) is 1 for a valid key and 0 past the length;
    // (keep - 1) * 1e30 then adds 0 or -1e30, which softmax turns into exactly 0 weight, like
    // -inf. Arithmetic rather than Less/Where so that importers with fewer ops read it too.
    Tensor pos(dt, {t});
    for (int64_t i = 0; i < t; ++i) {
      if (dt == DType::kF64) {
        pos.data<double>()[i] = static_cast<double>(i);
      } else {
        pos.f32()[i] = static_cast<float>(i);
      }
    }
    const std::string lenf = tmp("lengths_float"), len2 = tmp("lengths_N1"),
                      left = tmp("keys_left"), keep = tmp("key_keep"), drop = tmp("key_drop"),
                      bias = tmp("key_bias"), bias4 = tmp("key_bias_N11T");
    set_attr(cx.add_node("Cast", {n.inputs[5]}, {lenf}, pre + "lengths_float"), "to",
             static_cast<int64_t>(dtype_to_onnx(dt)));
    cx.add_node("Unsqueeze", {lenf, cx.const_i64({1}, pre + "axes_1")}, {len2},
                pre + "lengths_unsqueeze");
    cx.add_node("Sub", {len2, cx.add_constant(pos, pre + "positions")}, {left}, pre + "keys_left");
    const std::string one = cx.const_scalar(dt, 1.0, pre + "one");
    cx.add_node("Clip", {left, cx.const_scalar(dt, 0.0, pre + "zero"), one}, {keep},
                pre + "key_keep");
    cx.add_node("Sub", {keep, one}, {drop}, pre + "key_drop");
    cx.add_node("Mul", {drop, cx.const_scalar(dt, 1e30, pre + "big")}, {bias}, pre + "key_bias");
    cx.add_node("Unsqueeze", {bias, cx.const_i64({1, 2}, pre + "axes_12")}, {bias4},
                pre + "key_bias_unsqueeze");
    logits = tmp("masked_scores");
    cx.add_node("Add", {scores, bias4}, {logits}, pre + "mask");
  }
  const std::string probs = tmp("probs"), ctx = tmp("context"), ctx_t = tmp("context_NTHD"),
                    ctx2 = tmp("context_NTD"), out = tmp("out_nobias");
  set_attr(cx.add_node("Softmax", {logits}, {probs}, pre + "softmax"), "axis", int64_t{-1});
  cx.add_node("MatMul", {probs, vh}, {ctx}, pre + "pv");
  transpose(cx, ctx, {0, 2, 1, 3}, ctx_t, pre + "context_transpose");
  cx.add_node("Reshape", {ctx_t, cx.const_i64({0, 0, d}, pre + "context_shape")}, {ctx2},
              pre + "context_reshape");
  const std::string w_out = transposed_weight(cx, n, n.inputs[3]);
  cx.add_node("MatMul", {ctx2, w_out}, {out}, pre + "out_proj");
  cx.add_node("Add", {out, n.inputs[4]}, {n.outputs[0]}, pre + "out_proj_bias");
}

}  // namespace minnow::onnx
