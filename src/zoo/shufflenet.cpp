// ShuffleNetV2 (Ma et al. 2018) at torchvision's x0.5 widths, adapted to small inputs.
//
// Layout: stem 3x3 conv 24 + BN + ReLU (stride 1 and no max pool on inputs under 64 pixels;
// stride 2 + maxpool 3/2 above), three stages of 4, 8, 4 units with 48, 96, 192 channels
// (times ZooOptions::width, multiples of 8), 1x1 conv 1024 + BN + ReLU, global average
// pool, fc. A stage's first unit downsamples: both branches see the whole input (branch1:
// 3x3 depthwise stride 2 + BN, 1x1 + BN + ReLU; branch2: 1x1 + BN + ReLU, 3x3 depthwise
// stride 2 + BN, 1x1 + BN + ReLU). The other units split the channels in half, pass one
// half through and run branch2 on the other. Each unit ends with concat + channel shuffle
// (2 groups). 28x28 ends at 4x4 and 32x32 at 4x4.
#include <algorithm>
#include <string>
#include <vector>

#include "minnow/builder.h"
#include "minnow/error.h"
#include "zoo/blocks.h"
#include "zoo/builders.h"

namespace minnow::zoo {
namespace {

std::string branch2(GraphBuilder& b, const std::string& x, int64_t c, int64_t stride,
                    const std::string& name) {
  std::string y = conv_bn_act(b, x, c, 1, 1, 1, OpKind::kRelu, name + ".pw1");
  y = conv_bn_act(b, y, c, 3, stride, c, kNoAct, name + ".dw");
  return conv_bn_act(b, y, c, 1, 1, 1, OpKind::kRelu, name + ".pw2");
}

std::string shuffle_unit(GraphBuilder& b, const std::string& x, int64_t out, int64_t stride,
                         const std::string& name) {
  const int64_t half = out / 2;
  std::string left, right;
  if (stride == 1) {
    const int64_t c = b.info(x).shape[1];
    Attrs a;
    a.set("axis", int64_t{1});
    a.set("split", std::vector<int64_t>{c / 2, c / 2});
    std::vector<std::string> parts =
        b.op_multi(OpKind::kSplit, {x}, 2, std::move(a), name + ".split");
    left = parts[0];
    right = branch2(b, parts[1], half, 1, name + ".branch2");
  } else {
    const int64_t c = b.info(x).shape[1];
    left = conv_bn_act(b, x, c, 3, stride, c, kNoAct, name + ".branch1.dw");
    left = conv_bn_act(b, left, half, 1, 1, 1, OpKind::kRelu, name + ".branch1.pw");
    right = branch2(b, x, half, stride, name + ".branch2");
  }
  Attrs a;
  a.set("axis", int64_t{1});
  std::string y = b.op(OpKind::kConcat, {left, right}, std::move(a), name + ".concat");
  return channel_shuffle(b, y, 2, name + ".shuffle");
}

}  // namespace

Graph build_shufflenet_v2(const ZooOptions& opt) {
  GraphBuilder b("shufflenet_v2", opt.seed);
  std::string x = image_input(b, opt, "shufflenet_v2", 8, 8);
  const int64_t s = stem_stride(opt);
  x = conv_bn_act(b, x, 24, 3, s, 1, OpKind::kRelu, "stem");
  if (s > 1) x = b.max_pool(x, 3, 2, 1, "stem.pool");
  const int64_t repeats[3] = {4, 8, 4};
  const int64_t channels[3] = {48, 96, 192};
  for (int st = 0; st < 3; ++st) {
    const int64_t out = scaled_channels(opt, channels[st]);  // multiple of 8: splits in half
    for (int64_t u = 0; u < repeats[st]; ++u) {
      x = shuffle_unit(b, x, out, u == 0 ? 2 : 1,
                       "stage" + std::to_string(st + 2) + "." + std::to_string(u + 1));
    }
  }
  x = conv_bn_act(b, x, make_divisible(1024.0 * std::max(1.0, opt.width)), 1, 1, 1, OpKind::kRelu,
                  "conv5");
  b.output(pooled_classifier(b, x, opt));
  return b.build();
}

}  // namespace minnow::zoo
