#include "zoo/blocks.h"

#include <algorithm>
#include <cmath>

#include "core/rng.h"
#include "minnow/error.h"

namespace minnow::zoo {

int64_t make_divisible(double v, int64_t divisor) {
  const double d = static_cast<double>(divisor);
  int64_t r = std::max<int64_t>(divisor, static_cast<int64_t>(v + d / 2) / divisor * divisor);
  if (static_cast<double>(r) < 0.9 * v) r += divisor;
  return r;
}

int64_t scaled_channels(const ZooOptions& opt, int64_t base) {
  return make_divisible(static_cast<double>(base) * opt.width);
}

std::string image_input(GraphBuilder& b, const ZooOptions& opt, const std::string& model,
                        int64_t min_h, int64_t min_w) {
  const Shape& s = opt.input_shape;
  const std::string need =
      model + " needs an image input [C,H,W] with C >= 1, H >= " + std::to_string(min_h) +
      " and W >= " + std::to_string(min_w);
  if (s.size() != 3) throw Error(need + ", got " + shape_str(s));
  if (s[0] < 1 || s[1] < min_h || s[2] < min_w) throw Error(need + ", got " + shape_str(s));
  return b.input("input", {kDynamic, s[0], s[1], s[2]});
}

int64_t stem_stride(const ZooOptions& opt) {
  return std::min(opt.input_shape[1], opt.input_shape[2]) >= 64 ? 2 : 1;
}

std::string conv_bn_act(GraphBuilder& b, const std::string& x, int64_t out_channels, int64_t kernel,
                        int64_t stride, int64_t groups, OpKind act, const std::string& name) {
  ConvOptions c;
  c.stride = stride;
  c.pad = kernel / 2;
  c.groups = groups;
  c.bias = false;  // the BN shift makes a conv bias redundant
  std::string y = b.conv2d(x, out_channels, kernel, c, name + ".conv");
  y = b.batch_norm(y, 1e-5, 0.1, name + ".bn");
  if (act != kNoAct) y = b.activation(act, y, name + ".act");
  return y;
}

std::string conv_rect(GraphBuilder& b, const std::string& x, int64_t out_channels, int64_t kh,
                      int64_t kw, int64_t stride, const std::vector<int64_t>& pads, bool bias,
                      const std::string& name) {
  const int64_t in_channels = b.info(x).shape.at(1);
  const int64_t fan_in = in_channels * kh * kw;
  // PyTorch's default conv init, as GraphBuilder::conv2d does: U(-1/sqrt(fan_in), +).
  const float bound = 1.0f / std::sqrt(static_cast<float>(fan_in));
  auto uniform = [&](Shape shape) {
    Tensor t(DType::kF32, std::move(shape));
    for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = b.rng().uniform(-bound, bound);
    return t;
  };
  std::vector<std::string> inputs = {
      x, b.parameter(name + ".weight", uniform({out_channels, in_channels, kh, kw}), true)};
  if (bias) inputs.push_back(b.parameter(name + ".bias", uniform({out_channels}), true));
  Attrs a;
  a.set("strides", std::vector<int64_t>{stride, stride});
  a.set("pads", pads);
  a.set("dilations", std::vector<int64_t>{1, 1});
  a.set("group", int64_t{1});
  return b.op(OpKind::kConv2d, inputs, std::move(a), name);
}

std::string squeeze_excite(GraphBuilder& b, const std::string& x, int64_t squeeze_channels,
                           const std::string& name) {
  const int64_t c = b.info(x).shape.at(1);
  std::string s = b.global_avg_pool(x, name + ".pool");
  s = b.conv2d(s, squeeze_channels, 1, {}, name + ".fc1");
  s = b.activation(OpKind::kRelu, s, name + ".relu");
  s = b.conv2d(s, c, 1, {}, name + ".fc2");
  s = b.activation(OpKind::kHardSigmoid, s, name + ".gate");
  return b.op(OpKind::kMul, {x, s}, {}, name + ".scale");  // [N,C,H,W] * [N,C,1,1]
}

std::string inverted_residual(GraphBuilder& b, const std::string& x, const InvertedResidualSpec& s,
                              const std::string& name) {
  const int64_t in = b.info(x).shape.at(1);
  std::string y = x;
  if (s.expanded != in) y = conv_bn_act(b, y, s.expanded, 1, 1, 1, s.act, name + ".expand");
  y = conv_bn_act(b, y, s.expanded, s.kernel, s.stride, s.expanded, s.act, name + ".dw");
  if (s.se_channels > 0) y = squeeze_excite(b, y, s.se_channels, name + ".se");
  y = conv_bn_act(b, y, s.out, 1, 1, 1, kNoAct, name + ".project");
  if (s.stride == 1 && in == s.out) y = b.op(OpKind::kAdd, {x, y}, {}, name + ".add");
  return y;
}

std::string channel_shuffle(GraphBuilder& b, const std::string& x, int64_t groups,
                            const std::string& name) {
  const Shape& s = b.info(x).shape;
  if (s.size() != 4 || s[1] % groups != 0) {
    throw Error("channel_shuffle: '" + x + "' " + shape_str(s) + " does not split into " +
                std::to_string(groups) + " channel groups");
  }
  Attrs split;
  split.set("shape", std::vector<int64_t>{0, groups, s[1] / groups, s[2], s[3]});
  std::string y = b.op(OpKind::kReshape, {x}, std::move(split), name + ".split_groups");
  Attrs perm;
  perm.set("perm", std::vector<int64_t>{0, 2, 1, 3, 4});
  y = b.op(OpKind::kTranspose, {y}, std::move(perm), name + ".transpose");
  Attrs merge;
  merge.set("shape", std::vector<int64_t>{0, s[1], s[2], s[3]});
  return b.op(OpKind::kReshape, {y}, std::move(merge), name + ".merge_groups");
}

std::string pooled_classifier(GraphBuilder& b, const std::string& x, const ZooOptions& opt) {
  std::string y = b.flatten(b.global_avg_pool(x, "pool"), 1, "flatten");
  if (opt.dropout > 0) y = b.dropout(y, opt.dropout, "dropout");
  return b.linear(y, opt.classes, true, "logits");
}

}  // namespace minnow::zoo
