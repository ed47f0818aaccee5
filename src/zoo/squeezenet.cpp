// SqueezeNet 1.1 (Iandola et al. 2016; the torchvision 1.1 layout), adapted to small inputs.
//
// Fire module: squeeze 1x1 conv + ReLU, then expand 1x1 conv + ReLU and expand 3x3 conv +
// ReLU side by side, concatenated along channels. Layout: conv 3x3 64 (stride 1 and pad 1
// on inputs under 64 pixels, stride 2 above) + ReLU, maxpool 3/2, fire(16,64,64) x2,
// maxpool 3/2, fire(32,128,128) x2, maxpool 3/2, fire(48,192,192) x2, fire(64,256,256) x2,
// [dropout], conv 1x1 to classes + ReLU, global average pool. The max pools pad by 1 so that
// 28x28 gives 14, 7, 4 and 32x32 gives 16, 8, 4 (torchvision uses ceil_mode instead).
// Convs keep their biases (there is no batch norm). Initialization is torchvision's for
// SqueezeNet, not the PyTorch layer default: with no batch norm, the default's smaller
// weights shrink the signal through 26 convs until the logits are flat and nothing trains.
#include <cmath>
#include <string>

#include "core/rng.h"
#include "minnow/builder.h"
#include "minnow/error.h"
#include "zoo/blocks.h"
#include "zoo/builders.h"

namespace minnow::zoo {
namespace {

std::string conv_relu(GraphBuilder& b, const std::string& x, int64_t out, int64_t kernel,
                      int64_t stride, const std::string& name) {
  ConvOptions c;
  c.stride = stride;
  c.pad = kernel / 2;
  return b.activation(OpKind::kRelu, b.conv2d(x, out, kernel, c, name), name + ".relu");
}

std::string fire(GraphBuilder& b, const std::string& x, int64_t squeeze, int64_t expand,
                 const std::string& name) {
  std::string s = conv_relu(b, x, squeeze, 1, 1, name + ".squeeze");
  std::string e1 = conv_relu(b, s, expand, 1, 1, name + ".expand1x1");
  std::string e3 = conv_relu(b, s, expand, 3, 1, name + ".expand3x3");
  Attrs a;
  a.set("axis", int64_t{1});
  return b.op(OpKind::kConcat, {e1, e3}, std::move(a), name + ".concat");
}

// torchvision: kaiming_uniform_ (gain sqrt(2): U(-sqrt(6/fan_in), +)) for every conv but the
// last, which gets N(0, 0.01); biases zero.
void torchvision_init(Graph& g, uint64_t seed) {
  Rng rng = Rng::derive(seed, 0x5153);  // own stream: the builder's draws stay as they were
  for (const Node& n : g.nodes) {
    if (n.op != OpKind::kConv2d) continue;
    Tensor& w = g.initializers.at(n.inputs[1]).value;
    const int64_t fan_in = w.numel() / w.dim(0);
    const float bound = std::sqrt(6.0f / static_cast<float>(fan_in));
    for (int64_t i = 0; i < w.numel(); ++i) {
      w.f32()[i] = n.name == "classifier" ? 0.01f * rng.normal() : rng.uniform(-bound, bound);
    }
    if (n.inputs.size() > 2) g.initializers.at(n.inputs[2]).value.fill_zero();
  }
}

}  // namespace

Graph build_squeezenet(const ZooOptions& opt) {
  GraphBuilder b("squeezenet", opt.seed);
  std::string x = image_input(b, opt, "squeezenet", 8, 8);
  x = conv_relu(b, x, scaled_channels(opt, 64), 3, stem_stride(opt), "stem");
  auto pool = [&](const std::string& v, const std::string& name) {
    return b.max_pool(v, 3, 2, 1, name);
  };
  auto fire_w = [&](const std::string& v, int64_t squeeze, int64_t expand, int i) {
    return fire(b, v, scaled_channels(opt, squeeze), scaled_channels(opt, expand),
                "fire" + std::to_string(i));
  };
  x = pool(x, "pool1");
  x = fire_w(x, 16, 64, 1);
  x = fire_w(x, 16, 64, 2);
  x = pool(x, "pool2");
  x = fire_w(x, 32, 128, 3);
  x = fire_w(x, 32, 128, 4);
  x = pool(x, "pool3");
  x = fire_w(x, 48, 192, 5);
  x = fire_w(x, 48, 192, 6);
  x = fire_w(x, 64, 256, 7);
  x = fire_w(x, 64, 256, 8);
  if (opt.dropout > 0) x = b.dropout(x, opt.dropout, "dropout");
  x = conv_relu(b, x, opt.classes, 1, 1, "classifier");
  x = b.global_avg_pool(x, "pool");
  b.output(b.flatten(x, 1, "logits"));
  Graph g = b.build();
  torchvision_init(g, opt.seed);
  return g;
}

}  // namespace minnow::zoo
