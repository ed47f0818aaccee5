#include "minnow/builder.h"

#include <cmath>

#include "core/op_registry.h"
#include "core/rng.h"
#include "minnow/error.h"

namespace minnow {

GraphBuilder::GraphBuilder(std::string graph_name, uint64_t seed)
    : rng_(std::make_unique<Rng>(seed)) {
  graph_.name = std::move(graph_name);
}

GraphBuilder::~GraphBuilder() = default;

std::string GraphBuilder::input(const std::string& name, Shape shape, DType dtype) {
  ValueInfo v{name, dtype, std::move(shape)};
  graph_.inputs.push_back(v);
  info_[name] = v;
  return name;
}

void GraphBuilder::output(const std::string& value) { graph_.outputs.push_back(info(value)); }

const ValueInfo& GraphBuilder::info(const std::string& value) const {
  auto it = info_.find(value);
  if (it == info_.end()) throw Error("builder: unknown value '" + value + "'");
  return it->second;
}

std::string GraphBuilder::auto_name(const std::string& base, std::string name) {
  if (!name.empty()) return name;
  return base + std::to_string(++counters_[base]);
}

// PyTorch's default for Conv/Linear: kaiming_uniform(a=sqrt(5)), i.e. U(-1/sqrt(fan_in), +).
Tensor GraphBuilder::kaiming_uniform(Shape shape, int64_t fan_in) {
  Tensor t(DType::kF32, std::move(shape));
  float bound = 1.0f / std::sqrt(static_cast<float>(fan_in));
  float* p = t.f32();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = rng_->uniform(-bound, bound);
  return t;
}

std::string GraphBuilder::parameter(const std::string& name, Tensor value, bool trainable) {
  if (info_.count(name)) throw Error("builder: value '" + name + "' defined twice");
  info_[name] = ValueInfo{name, value.dtype(), value.shape()};
  graph_.initializers[name] = Initializer{std::move(value), trainable};
  return name;
}

std::vector<std::string> GraphBuilder::op_multi(OpKind kind, const std::vector<std::string>& inputs,
                                                int num_outputs, Attrs attrs, std::string name) {
  const OpDef& def = op_def(kind);
  Node n;
  n.name = auto_name(def.name, std::move(name));
  n.op = kind;
  n.inputs = inputs;
  n.attrs = std::move(attrs);
  for (int i = 0; i < num_outputs; ++i) {
    n.outputs.push_back(num_outputs == 1 ? n.name : n.name + ":" + std::to_string(i));
  }
  InputInfos in;
  for (const std::string& v : inputs) in.push_back(v.empty() ? nullptr : &info(v));
  std::vector<ValueInfo> out(num_outputs);
  for (int i = 0; i < num_outputs; ++i) out[i].name = n.outputs[i];
  def.infer(n, in, out);
  for (ValueInfo& v : out) info_[v.name] = v;
  graph_.nodes.push_back(std::move(n));
  return graph_.nodes.back().outputs;
}

std::string GraphBuilder::op(OpKind kind, const std::vector<std::string>& inputs, Attrs attrs,
                             std::string name) {
  return op_multi(kind, inputs, 1, std::move(attrs), std::move(name))[0];
}

std::string GraphBuilder::conv2d(const std::string& x, int64_t out_channels, int64_t kernel,
                                 const ConvOptions& opt, std::string name) {
  const ValueInfo& xi = info(x);
  if (xi.shape.size() != 4) throw Error("builder: conv2d input '" + x + "' is not 4-d");
  int64_t in_channels = xi.shape[1];
  if (opt.groups <= 0 || in_channels % opt.groups || out_channels % opt.groups) {
    throw Error("builder: conv2d groups must divide in and out channels");
  }
  name = auto_name("conv", std::move(name));
  int64_t fan_in = in_channels / opt.groups * kernel * kernel;
  std::vector<std::string> inputs = {x};
  inputs.push_back(parameter(
      name + ".weight",
      kaiming_uniform({out_channels, in_channels / opt.groups, kernel, kernel}, fan_in), true));
  if (opt.bias)
    inputs.push_back(parameter(name + ".bias", kaiming_uniform({out_channels}, fan_in), true));
  Attrs a;
  a.set("strides", std::vector<int64_t>{opt.stride, opt.stride});
  a.set("pads", std::vector<int64_t>{opt.pad, opt.pad, opt.pad, opt.pad});
  a.set("dilations", std::vector<int64_t>{opt.dilation, opt.dilation});
  a.set("group", opt.groups);
  return op(OpKind::kConv2d, inputs, std::move(a), name);
}

std::string GraphBuilder::linear(const std::string& x, int64_t out_features, bool bias,
                                 std::string name) {
  const ValueInfo& xi = info(x);
  if (xi.shape.empty()) throw Error("builder: linear input '" + x + "' is a scalar");
  int64_t in_features = xi.shape.back();
  name = auto_name("fc", std::move(name));
  std::vector<std::string> inputs = {x};
  inputs.push_back(
      parameter(name + ".weight", kaiming_uniform({out_features, in_features}, in_features), true));
  if (bias)
    inputs.push_back(parameter(name + ".bias", kaiming_uniform({out_features}, in_features), true));
  return op(OpKind::kLinear, inputs, {}, name);
}

std::string GraphBuilder::batch_norm(const std::string& x, double epsilon, double momentum,
                                     std::string name) {
  const ValueInfo& xi = info(x);
  if (xi.shape.size() < 2) throw Error("builder: batch_norm input '" + x + "' has no channel dim");
  int64_t c = xi.shape[1];
  name = auto_name("bn", std::move(name));
  Tensor scale(DType::kF32, {c}), var(DType::kF32, {c});
  for (int64_t i = 0; i < c; ++i) scale.f32()[i] = var.f32()[i] = 1.0f;
  std::vector<std::string> inputs = {
      x, parameter(name + ".weight", scale, true),
      parameter(name + ".bias", Tensor(DType::kF32, {c}), true),
      parameter(name + ".running_mean", Tensor(DType::kF32, {c}), false),
      parameter(name + ".running_var", var, false)};
  Attrs a;
  a.set("epsilon", epsilon);
  a.set("momentum", momentum);
  return op(OpKind::kBatchNorm, inputs, std::move(a), name);
}

static Attrs pool_attrs(int64_t kernel, int64_t stride, int64_t pad) {
  Attrs a;
  a.set("kernel", std::vector<int64_t>{kernel, kernel});
  int64_t s = stride > 0 ? stride : kernel;
  a.set("strides", std::vector<int64_t>{s, s});
  a.set("pads", std::vector<int64_t>{pad, pad, pad, pad});
  return a;
}

std::string GraphBuilder::max_pool(const std::string& x, int64_t kernel, int64_t stride,
                                   int64_t pad, std::string name) {
  return op(OpKind::kMaxPool, {x}, pool_attrs(kernel, stride, pad),
            auto_name("maxpool", std::move(name)));
}

std::string GraphBuilder::avg_pool(const std::string& x, int64_t kernel, int64_t stride,
                                   int64_t pad, std::string name) {
  Attrs a = pool_attrs(kernel, stride, pad);
  a.set("count_include_pad", int64_t{1});  // PyTorch's AvgPool2d default
  return op(OpKind::kAvgPool, {x}, std::move(a), auto_name("avgpool", std::move(name)));
}

std::string GraphBuilder::global_avg_pool(const std::string& x, std::string name) {
  return op(OpKind::kGlobalAvgPool, {x}, {}, auto_name("gap", std::move(name)));
}

std::string GraphBuilder::flatten(const std::string& x, int64_t axis, std::string name) {
  Attrs a;
  a.set("axis", axis);
  return op(OpKind::kFlatten, {x}, std::move(a), auto_name("flatten", std::move(name)));
}

std::string GraphBuilder::dropout(const std::string& x, double ratio, std::string name) {
  Attrs a;
  a.set("ratio", ratio);
  return op(OpKind::kDropout, {x}, std::move(a), auto_name("dropout", std::move(name)));
}

std::string GraphBuilder::activation(OpKind kind, const std::string& x, std::string name) {
  std::string base = op_def(kind).name;
  for (char& ch : base) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return op(kind, {x}, {}, auto_name(base, std::move(name)));
}

// LSTM (4 gates) and GRU (3 gates) share everything but the gate count.
static std::vector<std::string> recurrent_layer(GraphBuilder& b, OpKind kind, int64_t gates,
                                                const std::string& x, int64_t hidden,
                                                bool bidirectional, const std::string& lengths,
                                                std::string name) {
  const ValueInfo& xi = b.info(x);
  const char* what = kind == OpKind::kLstm ? "lstm" : "gru";
  if (xi.shape.size() != 3) {
    throw Error(std::string("builder: ") + what + " input '" + x + "' is not [N, T, F]");
  }
  if (hidden <= 0) throw Error(std::string("builder: ") + what + " hidden size must be > 0");
  const int64_t features = xi.shape[2];
  const int64_t rows = (bidirectional ? 2 : 1) * gates * hidden;
  const float bound = 1.0f / std::sqrt(static_cast<float>(hidden));
  auto uniform = [&](Shape shape) {
    Tensor t(DType::kF32, std::move(shape));
    for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = b.rng().uniform(-bound, bound);
    return t;
  };
  std::vector<std::string> inputs = {x};
  inputs.push_back(b.parameter(name + ".weight_ih", uniform({rows, features}), true));
  inputs.push_back(b.parameter(name + ".weight_hh", uniform({rows, hidden}), true));
  inputs.push_back(b.parameter(name + ".bias_ih", uniform({rows}), true));
  inputs.push_back(b.parameter(name + ".bias_hh", uniform({rows}), true));
  if (!lengths.empty()) inputs.push_back(lengths);
  Attrs a;
  a.set("hidden_size", hidden);
  a.set("bidirectional", int64_t{bidirectional ? 1 : 0});
  return b.op_multi(kind, inputs, 2, std::move(a), name);
}

std::vector<std::string> GraphBuilder::lstm(const std::string& x, int64_t hidden,
                                            bool bidirectional, const std::string& lengths,
                                            std::string name) {
  return recurrent_layer(*this, OpKind::kLstm, 4, x, hidden, bidirectional, lengths,
                         auto_name("lstm", std::move(name)));
}

std::vector<std::string> GraphBuilder::gru(const std::string& x, int64_t hidden, bool bidirectional,
                                           const std::string& lengths, std::string name) {
  return recurrent_layer(*this, OpKind::kGru, 3, x, hidden, bidirectional, lengths,
                         auto_name("gru", std::move(name)));
}

std::string GraphBuilder::embedding(const std::string& x, int64_t vocab, int64_t dim,
                                    std::string name) {
  if (vocab < 1 || dim < 1) {
    throw Error("builder: embedding needs vocab and dim >= 1, got " + std::to_string(vocab) +
                " and " + std::to_string(dim));
  }
  name = auto_name("embedding", std::move(name));
  Tensor w(DType::kF32, {vocab, dim});
  for (int64_t i = 0; i < w.numel(); ++i) w.f32()[i] = rng_->normal();  // nn.Embedding: N(0, 1)
  return op(OpKind::kEmbedding, {x, parameter(name + ".weight", w, true)}, {}, name);
}

std::string GraphBuilder::layer_norm(const std::string& x, double epsilon, std::string name) {
  const ValueInfo& xi = info(x);
  if (xi.shape.empty()) throw Error("builder: layer_norm input '" + x + "' is a scalar");
  const int64_t d = xi.shape.back();
  name = auto_name("ln", std::move(name));
  Tensor scale(DType::kF32, {d});
  for (int64_t i = 0; i < d; ++i) scale.f32()[i] = 1.0f;
  std::vector<std::string> inputs = {x, parameter(name + ".weight", scale, true),
                                     parameter(name + ".bias", Tensor(DType::kF32, {d}), true)};
  Attrs a;
  a.set("epsilon", epsilon);
  return op(OpKind::kLayerNorm, inputs, std::move(a), name);
}

std::string GraphBuilder::multi_head_attention(const std::string& x, int64_t num_heads,
                                               const std::string& lengths, std::string name) {
  const ValueInfo& xi = info(x);
  if (xi.shape.size() != 3) {
    throw Error("builder: multi_head_attention input '" + x + "' has shape " + shape_str(xi.shape) +
                ", expected [N, T, D]");
  }
  const int64_t d = xi.shape[2];
  name = auto_name("mha", std::move(name));
  // nn.MultiheadAttention._reset_parameters: xavier_uniform_ on in_proj_weight (fan_in D,
  // fan_out 3D), zero biases; out_proj keeps nn.Linear's kaiming-uniform weight.
  Tensor in_w(DType::kF32, {3 * d, d});
  const float bound = std::sqrt(6.0f / static_cast<float>(d + 3 * d));
  for (int64_t i = 0; i < in_w.numel(); ++i) in_w.f32()[i] = rng_->uniform(-bound, bound);
  std::vector<std::string> inputs = {
      x, parameter(name + ".in_proj_weight", in_w, true),
      parameter(name + ".in_proj_bias", Tensor(DType::kF32, {3 * d}), true),
      parameter(name + ".out_proj.weight", kaiming_uniform({d, d}, d), true),
      parameter(name + ".out_proj.bias", Tensor(DType::kF32, {d}), true)};
  if (!lengths.empty()) inputs.push_back(lengths);
  Attrs a;
  a.set("num_heads", num_heads);
  return op(OpKind::kMultiHeadAttention, inputs, std::move(a), name);
}

Graph GraphBuilder::build() {
  graph_.validate();
  graph_.infer_shapes();
  Graph g = std::move(graph_);
  graph_ = Graph();
  info_.clear();
  counters_.clear();
  return g;
}

}  // namespace minnow
