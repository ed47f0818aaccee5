// Converters for Conv, Gemm, MatMul, BatchNormalization, pooling and LayerNormalization.
#include <cmath>
#include <cstring>

#include "onnx/import_ops.h"

namespace minnow::onnx {
namespace {

void require_float(ImportContext& cx, const std::string& name) {
  const DType t = cx.info(name).dtype;
  if (!dtype_is_float(t)) {
    cx.unsupported("input '" + name + "' has dtype " + std::string(dtype_name(t)) +
                   "; this op runs on floating-point tensors only");
  }
}

// Padding [begin..., end...] for auto_pad SAME_UPPER/SAME_LOWER/VALID, or the pads attribute.
std::vector<int64_t> spatial_pads(ImportContext& cx, const Shape& in_spatial,
                                  const std::vector<int64_t>& kernel,
                                  const std::vector<int64_t>& strides,
                                  const std::vector<int64_t>& dilations) {
  const size_t k = in_spatial.size();
  const std::string mode = cx.attr_string("auto_pad", "NOTSET");
  if (mode == "NOTSET") {
    std::vector<int64_t> p = cx.attr_ints("pads", std::vector<int64_t>(2 * k, 0));
    if (p.size() != 2 * k) cx.fail("pads has " + std::to_string(p.size()) + " values");
    return p;
  }
  std::vector<int64_t> p(2 * k, 0);
  if (mode == "VALID") return p;
  if (mode != "SAME_UPPER" && mode != "SAME_LOWER") cx.fail("unknown auto_pad '" + mode + "'");
  for (size_t i = 0; i < k; ++i) {
    const int64_t out = (in_spatial[i] + strides[i] - 1) / strides[i];
    const int64_t eff = (kernel[i] - 1) * dilations[i] + 1;
    const int64_t total = std::max<int64_t>((out - 1) * strides[i] + eff - in_spatial[i], 0);
    const int64_t small = total / 2, big = total - small;
    p[i] = mode == "SAME_UPPER" ? small : big;
    p[i + k] = mode == "SAME_UPPER" ? big : small;
  }
  return p;
}

// minnow's [t, l, b, r] from ONNX's [x1_begin, x2_begin, x1_end, x2_end] (the same order).
void convert_conv(ImportContext& cx) {
  cx.allow_attrs({"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"});
  require_float(cx, cx.in(0));
  const ValueInfo x = cx.info(cx.in(0));
  const ValueInfo w = cx.info(cx.in(1));
  if (x.shape.size() != 4 || w.shape.size() != 4) {
    cx.unsupported("only 2-D convolution ([N,C,H,W] input) is supported, input is " +
                   shape_str(x.shape));
  }
  const std::vector<int64_t> kernel{w.shape[2], w.shape[3]};
  const std::vector<int64_t> strides = cx.attr_ints("strides", {1, 1});
  const std::vector<int64_t> dil = cx.attr_ints("dilations", {1, 1});
  Attrs a;
  a.set("strides", strides);
  a.set("dilations", dil);
  a.set("pads", spatial_pads(cx, {x.shape[2], x.shape[3]}, kernel, strides, dil));
  a.set("group", cx.attr_int("group", 1));
  std::vector<std::string> ins{cx.value(cx.in(0)), cx.value(cx.in(1))};
  if (!cx.in(2).empty()) ins.push_back(cx.value(cx.in(2)));
  cx.emit1(OpKind::kConv2d, ins, a, cx.out(0));
}

void convert_pool(ImportContext& cx) {
  const std::string& op = cx.node().op_type();
  const bool is_max = op == "MaxPool";
  cx.allow_attrs({"auto_pad", "ceil_mode", "count_include_pad", "dilations", "kernel_shape", "pads",
                  "strides", "storage_order"});
  require_float(cx, cx.in(0));
  if (!cx.out(1).empty()) cx.unsupported("the Indices output of MaxPool");
  const ValueInfo x = cx.info(cx.in(0));
  const size_t k = x.shape.size() - 2;
  if (x.shape.size() != 3 && x.shape.size() != 4) {
    cx.unsupported("only 1-D and 2-D pooling are supported, input is " + shape_str(x.shape));
  }
  std::vector<int64_t> kernel = cx.attr_ints("kernel_shape", {});
  if (kernel.size() != k) cx.fail("kernel_shape must have " + std::to_string(k) + " values");
  std::vector<int64_t> strides = cx.attr_ints("strides", std::vector<int64_t>(k, 1));
  std::vector<int64_t> dil = cx.attr_ints("dilations", std::vector<int64_t>(k, 1));
  for (int64_t d : dil) {
    if (d != 1) cx.unsupported("dilated pooling");
  }
  Shape spatial(x.shape.begin() + 2, x.shape.end());
  std::vector<int64_t> pads = spatial_pads(cx, spatial, kernel, strides, dil);
  for (size_t i = 0; i < k; ++i) {
    if (pads[i] >= kernel[i] || pads[i + k] >= kernel[i]) {
      cx.unsupported("padding as large as the pooling window");
    }
  }
  std::string in = cx.value(cx.in(0));
  if (k == 1) {  // [N,C,L] pools as [N,C,1,L]
    Attrs r;
    r.set("shape", std::vector<int64_t>{0, x.shape[1], 1, x.shape[2]});
    in = cx.emit1(OpKind::kReshape, {in}, r);
    kernel.insert(kernel.begin(), 1);
    strides.insert(strides.begin(), 1);
    pads = {0, pads[0], 0, pads[1]};
  }
  Attrs a;
  a.set("kernel", kernel);
  a.set("strides", strides);
  a.set("pads", pads);
  a.set("ceil_mode", cx.attr_int("ceil_mode", 0));
  if (!is_max) a.set("count_include_pad", cx.attr_int("count_include_pad", 0));
  const OpKind kind = is_max ? OpKind::kMaxPool : OpKind::kAvgPool;
  if (k == 2) {
    cx.emit1(kind, {in}, a, cx.out(0));
    return;
  }
  std::string y = cx.emit1(kind, {in}, a);
  Attrs r;
  r.set("shape", std::vector<int64_t>{0, x.shape[1], -1});
  cx.emit1(OpKind::kReshape, {y}, r, cx.out(0));
}

void convert_global_avg_pool(ImportContext& cx) {
  require_float(cx, cx.in(0));
  const ValueInfo x = cx.info(cx.in(0));
  if (x.shape.size() == 4) {
    cx.emit1(OpKind::kGlobalAvgPool, {cx.value(cx.in(0))}, {}, cx.out(0));
    return;
  }
  cx.unsupported("GlobalAveragePool of a rank-" + std::to_string(x.shape.size()) + " input");
}

Tensor transposed_2d(const Tensor& t) {
  const int64_t r = t.dim(0), c = t.dim(1);
  Tensor out(t.dtype(), {c, r});
  const size_t es = dtype_size(t.dtype());
  const char* s = static_cast<const char*>(t.raw());
  char* d = static_cast<char*>(out.raw());
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < c; ++j) std::memcpy(d + (j * r + i) * es, s + (i * c + j) * es, es);
  return out;
}

Tensor scaled(Tensor t, double s) {
  t = t.clone();
  if (s == 1.0) return t;
  if (t.dtype() == DType::kF64) {
    for (int64_t i = 0; i < t.numel(); ++i) t.data<double>()[i] *= s;
  } else {
    for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] *= static_cast<float>(s);
  }
  return t;
}

Tensor scalar_like(DType t, double v) {
  Tensor s(t, {});
  if (t == DType::kF64) {
    s.data<double>()[0] = v;
  } else {
    s.f32()[0] = static_cast<float>(v);
  }
  return s;
}

// Gemm: Y = alpha * A' B' + beta * C. With a constant B this is a Linear (W = B'^T scaled by
// alpha, bias = beta * C when C is per output column); otherwise MatMul with the extra terms.
void convert_gemm(ImportContext& cx) {
  cx.allow_attrs({"alpha", "beta", "transA", "transB"});
  require_float(cx, cx.in(0));
  const double alpha = cx.attr_float("alpha", 1.0), beta = cx.attr_float("beta", 1.0);
  const bool ta = cx.attr_int("transA", 0) != 0, tb = cx.attr_int("transB", 0) != 0;
  std::string a = cx.value(cx.in(0));
  if (ta) a = cx.emit1(OpKind::kTranspose, {a});
  const ValueInfo av = cx.info(cx.in(0));
  const bool has_c = !cx.in(2).empty() && beta != 0.0;
  const Tensor* b = cx.find_const(cx.in(1));
  const Tensor* c = has_c ? cx.find_const(cx.in(2)) : nullptr;
  const std::string out = cx.out(0);
  if (b && b->rank() == 2) {
    Tensor w = scaled(tb ? *b : transposed_2d(*b), alpha);  // [N, K]
    const int64_t n = w.dim(0);
    std::vector<std::string> ins{a, cx.add_initializer(cx.in(1), w, true)};
    bool bias_done = !has_c;
    if (c && (c->numel() == n || c->numel() == 1) && (c->rank() <= 1 || c->dim(-1) == c->numel())) {
      Tensor bias(w.dtype(), {n});
      for (int64_t j = 0; j < n; ++j) {
        const int64_t src = c->numel() == 1 ? 0 : j;
        const double v =
            beta * (c->dtype() == DType::kF64 ? c->data<double>()[src] : c->data<float>()[src]);
        if (w.dtype() == DType::kF64) {
          bias.data<double>()[j] = v;
        } else {
          bias.f32()[j] = static_cast<float>(v);
        }
      }
      ins.push_back(cx.add_initializer(cx.in(2), bias, true));
      bias_done = true;
    }
    const std::string y = cx.emit1(OpKind::kLinear, ins, {}, bias_done ? out : "");
    if (!bias_done) {
      std::string cv = cx.value(cx.in(2));
      if (beta != 1.0)
        cv = cx.emit1(OpKind::kMul,
                      {cv, cx.add_initializer("beta", scalar_like(w.dtype(), beta), false)});
      cx.emit1(OpKind::kAdd, {y, cv}, {}, out);
    }
    return;
  }
  // B computed at run time but already [N, K] (transB), e.g. PyTorch's quantized export where B
  // and C are DequantizeLinear of int8 weights and an int32 bias: still minnow's Linear, so
  // that passes/lower_qdq.h can run it on integer kernels.
  const ValueInfo bi = cx.info(cx.in(1));
  const bool c_is_bias =
      !has_c || (beta == 1.0 && cx.info(cx.in(2)).dtype == av.dtype && bi.shape.size() == 2 &&
                 cx.info(cx.in(2)).shape == Shape{bi.shape[0]});
  if (tb && alpha == 1.0 && bi.dtype == av.dtype && bi.shape.size() == 2 && bi.shape[0] >= 0 &&
      bi.shape[1] >= 0 && c_is_bias) {
    std::vector<std::string> ins{a, cx.value(cx.in(1))};
    if (has_c) ins.push_back(cx.value(cx.in(2)));
    cx.emit1(OpKind::kLinear, ins, {}, out);
    return;
  }
  std::string bv = cx.value(cx.in(1));
  if (tb) bv = cx.emit1(OpKind::kTranspose, {bv});
  std::string y = cx.emit1(OpKind::kMatMul, {a, bv}, {}, has_c || alpha != 1.0 ? "" : out);
  if (alpha != 1.0) {
    y = cx.emit1(OpKind::kMul,
                 {y, cx.add_initializer("alpha", scalar_like(av.dtype, alpha), false)}, {},
                 has_c ? "" : out);
  }
  if (has_c) {
    std::string cv = cx.value(cx.in(2));
    if (beta != 1.0)
      cv = cx.emit1(OpKind::kMul,
                    {cv, cx.add_initializer("beta", scalar_like(av.dtype, beta), false)});
    cx.emit1(OpKind::kAdd, {y, cv}, {}, out);
  }
}

void convert_matmul(ImportContext& cx) {
  require_float(cx, cx.in(0));
  require_float(cx, cx.in(1));
  cx.emit1(OpKind::kMatMul, {cx.value(cx.in(0)), cx.value(cx.in(1))}, {}, cx.out(0));
}

void convert_batchnorm(ImportContext& cx) {
  cx.allow_attrs({"epsilon", "momentum", "training_mode", "spatial", "is_test"});
  require_float(cx, cx.in(0));
  if (cx.attr_int("training_mode", 0) != 0 || cx.num_outputs_used() > 1) {
    cx.unsupported("BatchNormalization in training mode (running-statistics outputs)");
  }
  if (cx.attr_int("spatial", 1) != 1) cx.unsupported("BatchNormalization with spatial=0");
  Attrs a;
  a.set("epsilon", cx.attr_float("epsilon", 1e-5));
  // ONNX momentum weights the old statistic (0.9); PyTorch's (minnow's) weights the new one.
  a.set("momentum", 1.0 - cx.attr_float("momentum", 0.9));
  cx.emit1(OpKind::kBatchNorm,
           {cx.value(cx.in(0)), cx.value(cx.in(1)), cx.value(cx.in(2)), cx.frozen_value(cx.in(3)),
            cx.frozen_value(cx.in(4))},
           a, cx.out(0));
}

// LayerNormalization over the dims from `axis` on: minnow normalizes the last dim, so other
// axes flatten the normalized dims into one first (scale and bias must then be constants).
void convert_layer_norm(ImportContext& cx) {
  cx.allow_attrs({"axis", "epsilon", "stash_type"});
  require_float(cx, cx.in(0));
  if (!cx.out(1).empty() || !cx.out(2).empty()) {
    cx.unsupported("the Mean and InvStdDev outputs of LayerNormalization");
  }
  const ValueInfo x = cx.info(cx.in(0));
  const int64_t r = static_cast<int64_t>(x.shape.size());
  const int64_t axis = onnx_axis(cx, cx.attr_int("axis", -1), r);
  int64_t d = 1;
  for (int64_t i = axis; i < r; ++i) {
    if (x.shape[i] == kDynamic) cx.unsupported("normalizing over the symbolic batch");
    d *= x.shape[i];
  }
  Attrs a;
  a.set("epsilon", cx.attr_float("epsilon", 1e-5));
  auto param = [&](int i, double fill) -> std::string {
    if (cx.in(i).empty()) {
      Tensor t(x.dtype, {d});
      for (int64_t k = 0; k < d; ++k) {
        if (x.dtype == DType::kF64) {
          t.data<double>()[k] = fill;
        } else {
          t.f32()[k] = static_cast<float>(fill);
        }
      }
      return cx.add_initializer(i == 1 ? "ln_scale" : "ln_bias", t, true);
    }
    const ValueInfo p = cx.info(cx.in(i));
    if (shape_numel(p.shape) == d && p.shape.size() == 1) return cx.value(cx.in(i));
    const Tensor& t = cx.const_value(cx.in(i), i == 1 ? "scale" : "bias");
    if (t.numel() != d) cx.unsupported("a broadcast LayerNormalization scale or bias");
    return cx.add_initializer(cx.in(i), t.clone().reshaped({d}), true);
  };
  const std::string scale = param(1, 1.0), bias = param(2, 0.0);
  if (axis == r - 1) {
    cx.emit1(OpKind::kLayerNorm, {cx.value(cx.in(0)), scale, bias}, a, cx.out(0));
    return;
  }
  std::vector<int64_t> flat;
  for (int64_t i = 0; i < axis; ++i) flat.push_back(x.shape[i] == kDynamic ? 0 : x.shape[i]);
  flat.push_back(d);
  Attrs ra;
  ra.set("shape", flat);
  std::string y = cx.emit1(OpKind::kReshape, {cx.value(cx.in(0))}, ra);
  y = cx.emit1(OpKind::kLayerNorm, {y, scale, bias}, a);
  std::vector<int64_t> back;
  for (int64_t i = 0; i < r; ++i) back.push_back(x.shape[i] == kDynamic ? 0 : x.shape[i]);
  Attrs rb;
  rb.set("shape", back);
  cx.emit1(OpKind::kReshape, {y}, rb, cx.out(0));
}

}  // namespace

void add_nn_converters(ConverterTable& t) {
  t["Conv"] = convert_conv;
  t["MaxPool"] = convert_pool;
  t["AveragePool"] = convert_pool;
  t["GlobalAveragePool"] = convert_global_avg_pool;
  t["Gemm"] = convert_gemm;
  t["MatMul"] = convert_matmul;
  t["BatchNormalization"] = convert_batchnorm;
  t["LayerNormalization"] = convert_layer_norm;
}

}  // namespace minnow::onnx
