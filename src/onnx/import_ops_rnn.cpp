// ONNX LSTM and GRU onto minnow's whole-sequence ops.
//
// minnow follows PyTorch (batch_first [N,T,F], gates i,f,g,o and r,z,n, separate b_ih/b_hh,
// outputs y [N,T,dirs*H] and h_last [N,dirs*H]); ONNX has [T,N,F] (layout 0), gates i,o,f,c and
// z,r,h, B = [Wb | Rb], outputs Y [T,dirs,N,H] and Y_h [dirs,N,H]. The weights are reordered
// once here (they must be initializers); the layouts are converted by Transpose/Reshape nodes.
#include <cstring>
#include <optional>

#include "core/op_registry.h"
#include "onnx/import_ops.h"
#include "passes/graph_uses.h"

namespace minnow::onnx {
namespace {

// Rows of a [dirs, G*H, K] tensor regrouped per direction into minnow's gate order: minnow gate
// g comes from ONNX gate order[g]. Result [dirs*G*H, K].
Tensor reorder_gates(const Tensor& t, int64_t dirs, int64_t gates, int64_t h,
                     const std::vector<int>& order) {
  const int64_t k = t.numel() / (dirs * gates * h);
  Tensor out(t.dtype(), {dirs * gates * h, k});
  const size_t row = static_cast<size_t>(k) * dtype_size(t.dtype());
  const char* s = static_cast<const char*>(t.raw());
  char* d = static_cast<char*>(out.raw());
  for (int64_t dir = 0; dir < dirs; ++dir)
    for (int64_t g = 0; g < gates; ++g)
      for (int64_t j = 0; j < h; ++j) {
        const int64_t src = (dir * gates + order[g]) * h + j, dst = (dir * gates + g) * h + j;
        std::memcpy(d + dst * row, s + src * row, row);
      }
  return out;
}

bool all_zero(const Tensor& t) {
  const char* p = static_cast<const char*>(t.raw());
  for (size_t i = 0; i < t.nbytes(); ++i) {
    if (p[i] != 0) return false;
  }
  return true;
}

// W or R when it is not a constant but DequantizeLinear of constants, possibly reshaped: the
// int8 weights minnow's export writes (export_sequence.cpp). Folded here to the float weights the
// file means (ONNX Runtime runs them so too); nullopt for anything else.
std::optional<Tensor> dequantized_weight(ImportContext& cx, const std::string& onnx_name) {
  if (!cx.has_value(onnx_name)) return std::nullopt;
  const Graph& g = cx.graph();
  const Node* n = g.producer(cx.value(onnx_name));
  Shape shape;
  if (n && n->op == OpKind::kReshape) {
    shape = n->attrs.get_ints("shape", {});
    n = g.producer(n->inputs[0]);
  }
  if (!n || n->op != OpKind::kDequantizeLinear || n->inputs.size() < 2) return std::nullopt;
  auto constant = [&](size_t i) { return constant_input(g, *n, i); };
  const Tensor* codes = constant(0);
  const Tensor* scale = constant(1);
  const Tensor* zp = constant(2);
  if (!codes || !scale || scale->dtype() != DType::kF32 || codes->rank() < 1 ||
      (codes->dtype() != DType::kI8 && codes->dtype() != DType::kU8) ||
      (n->inputs.size() > 2 && !n->inputs[2].empty() && !zp)) {
    return std::nullopt;
  }
  const int64_t axis = n->attrs.get_int("axis", 1);
  const bool per_axis = scale->numel() > 1;
  if (per_axis && (axis < 0 || axis >= codes->rank() || codes->dim(axis) != scale->numel())) {
    return std::nullopt;
  }
  int64_t inner = 1;
  for (int64_t d = axis + 1; d < codes->rank(); ++d) inner *= codes->dim(d);
  Tensor w(DType::kF32, codes->shape());
  for (int64_t i = 0; i < codes->numel(); ++i) {
    const int64_t c = per_axis ? i / inner % scale->numel() : 0;
    const int32_t q =
        codes->dtype() == DType::kI8 ? codes->data<int8_t>()[i] : codes->data<uint8_t>()[i];
    int32_t z = 0;
    if (zp)
      z = zp->dtype() == DType::kI8 ? zp->data<int8_t>()[zp->numel() > 1 ? c : 0]
                                    : zp->data<uint8_t>()[zp->numel() > 1 ? c : 0];
    w.f32()[i] = static_cast<float>(q - z) * scale->f32()[c];
  }
  if (shape.empty()) return w;
  for (int64_t d : shape) {
    if (d <= 0) return std::nullopt;
  }
  if (shape_numel(shape) != w.numel()) return std::nullopt;
  return w.reshaped(shape);
}

void convert_recurrent(ImportContext& cx) {
  const bool lstm = cx.node().op_type() == "LSTM";
  cx.allow_attrs(
      {"hidden_size", "direction", "layout", "activations", "linear_before_reset", "input_forget"});
  const int64_t h = cx.attr_int("hidden_size", 0);
  if (h <= 0) cx.fail("hidden_size must be > 0");
  const std::string dir = cx.attr_string("direction", "forward");
  if (dir == "reverse") cx.unsupported("a reverse-only recurrent layer");
  const int64_t dirs = dir == "bidirectional" ? 2 : 1;
  const int64_t layout = cx.attr_int("layout", 0);
  if (cx.attr_int("input_forget", 0)) cx.unsupported("input_forget");
  if (!lstm && cx.attr_int("linear_before_reset", 0) != 1) {
    cx.unsupported(
        "GRU with linear_before_reset=0 (PyTorch's GRU, and minnow's, apply the reset "
        "gate after the hidden projection)");
  }
  if (const auto* acts = cx.attr("activations")) {
    static const std::vector<std::string> kLstm{"Sigmoid", "Tanh", "Tanh"};
    static const std::vector<std::string> kGru{"Sigmoid", "Tanh"};
    const auto& want = lstm ? kLstm : kGru;
    for (int i = 0; i < acts->strings_size(); ++i) {
      if (acts->strings(i) != want[i % want.size()])
        cx.unsupported("activations other than the defaults");
    }
  }
  const int64_t gates = lstm ? 4 : 3;
  const std::vector<int> order = lstm ? std::vector<int>{0, 2, 3, 1} : std::vector<int>{1, 0, 2};
  auto weight = [&](int i, const char* role) {
    if (const Tensor* t = cx.find_const(cx.in(i))) return *t;
    if (std::optional<Tensor> t = dequantized_weight(cx, cx.in(i))) return *t;
    return cx.const_value(cx.in(i), role);  // the error
  };
  const Tensor w = weight(1, "W");
  const Tensor r = weight(2, "R");
  if (w.rank() != 3 || w.dim(0) != dirs || w.dim(1) != gates * h)
    cx.fail("W has shape " + shape_str(w.shape()));
  if (r.rank() != 3 || r.dim(0) != dirs || r.dim(1) != gates * h || r.dim(2) != h)
    cx.fail("R has shape " + shape_str(r.shape()));
  Tensor bi(w.dtype(), {dirs * gates * h}), bh(w.dtype(), {dirs * gates * h});
  if (!cx.in(3).empty()) {
    const Tensor& b = cx.const_value(cx.in(3), "B");
    if (b.numel() != dirs * 2 * gates * h) cx.fail("B has shape " + shape_str(b.shape()));
    // [dirs, 2*G*H] as [dirs*2, G*H] rows: per direction the Wb half then the Rb half.
    Tensor wb(b.dtype(), {dirs, gates * h, 1}), rb(b.dtype(), {dirs, gates * h, 1});
    const size_t half = static_cast<size_t>(gates * h) * dtype_size(b.dtype());
    for (int64_t d = 0; d < dirs; ++d) {
      std::memcpy(static_cast<char*>(wb.raw()) + d * half,
                  static_cast<const char*>(b.raw()) + 2 * d * half, half);
      std::memcpy(static_cast<char*>(rb.raw()) + d * half,
                  static_cast<const char*>(b.raw()) + (2 * d + 1) * half, half);
    }
    bi = reorder_gates(wb, dirs, gates, h, order).reshaped({dirs * gates * h});
    bh = reorder_gates(rb, dirs, gates, h, order).reshaped({dirs * gates * h});
  }
  for (int i : {5, 6}) {  // initial_h, initial_c: only zeros (minnow starts from zero state)
    if (cx.in(i).empty() || (i == 6 && !lstm) || cx.is_symbolic_zeros(cx.in(i))) continue;
    if (!all_zero(cx.const_value(cx.in(i), i == 5 ? "initial_h" : "initial_c"))) {
      cx.unsupported("a non-zero initial state");
    }
  }
  if (lstm && !cx.in(7).empty()) cx.unsupported("LSTM peepholes (input P)");
  if (lstm && !cx.out(2).empty() && cx.is_read(cx.out(2))) {
    cx.unsupported("the Y_c output of LSTM (the final cell state)");
  }

  const ValueInfo x = cx.info(cx.in(0));
  if (x.shape.size() != 3) cx.fail("X has shape " + shape_str(x.shape));
  std::string xv = cx.value(cx.in(0));
  Attrs perm;
  perm.set("perm", std::vector<int64_t>{1, 0, 2});
  if (layout == 0) xv = cx.emit1(OpKind::kTranspose, {xv}, perm);
  const std::string base = cx.in(1);
  std::vector<std::string> ins{
      xv, cx.add_initializer(base + "/w_ih", reorder_gates(w, dirs, gates, h, order), true),
      cx.add_initializer(base + "/w_hh", reorder_gates(r, dirs, gates, h, order), true),
      cx.add_initializer(base + "/b_ih", bi, true), cx.add_initializer(base + "/b_hh", bh, true)};
  if (!cx.in(4).empty()) {
    const std::string len_name = cx.in(4);
    if (const Tensor* lens = cx.find_const(len_name)) {
      Tensor l(DType::kI64, lens->shape());
      for (int64_t i = 0; i < lens->numel(); ++i) {
        static_cast<int64_t*>(l.raw())[i] = lens->dtype() == DType::kI64
                                                ? static_cast<const int64_t*>(lens->raw())[i]
                                                : static_cast<const int32_t*>(lens->raw())[i];
      }
      ins.push_back(cx.add_initializer(len_name, l, false));
    } else if (cx.info(len_name).dtype == DType::kI64) {
      ins.push_back(cx.value(len_name));
    } else {
      Attrs c;
      c.set("to", std::string("i64"));
      try {
        ins.push_back(cx.emit1(op_kind_from_name("Cast"), {cx.value(len_name)}, c));
      } catch (const Unsupported&) {
        throw;
      } catch (const Error&) {
        cx.unsupported("sequence_lens of type " + std::string(dtype_name(cx.info(len_name).dtype)));
      }
    }
  }
  Attrs a;
  a.set("hidden_size", h);
  a.set("bidirectional", dirs == 2 ? int64_t{1} : int64_t{0});
  const auto outs = cx.emit(lstm ? OpKind::kLstm : OpKind::kGru, ins, a, {"", ""});
  const int64_t t = x.shape[layout == 0 ? 0 : 1];
  if (t == kDynamic) cx.unsupported("a symbolic sequence length");
  if (!cx.out(0).empty() && cx.is_read(cx.out(0))) {
    Attrs rs;
    rs.set("shape", std::vector<int64_t>{-1, t, dirs, h});
    std::string y = cx.emit1(OpKind::kReshape, {outs[0]}, rs, layout == 0 ? "" : cx.out(0));
    if (layout == 0) {
      Attrs p;
      p.set("perm", std::vector<int64_t>{1, 2, 0, 3});
      cx.emit1(OpKind::kTranspose, {y}, p, cx.out(0));
    }
  }
  if (!cx.out(1).empty() && cx.is_read(cx.out(1))) {
    Attrs rs;
    rs.set("shape", std::vector<int64_t>{-1, dirs, h});
    std::string y = cx.emit1(OpKind::kReshape, {outs[1]}, rs, layout == 0 ? "" : cx.out(1));
    if (layout == 0) {
      Attrs p;
      p.set("perm", std::vector<int64_t>{1, 0, 2});
      cx.emit1(OpKind::kTranspose, {y}, p, cx.out(1));
    }
  }
}

}  // namespace

void add_rnn_converters(ConverterTable& t) {
  t["LSTM"] = convert_recurrent;
  t["GRU"] = convert_recurrent;
}

}  // namespace minnow::onnx
