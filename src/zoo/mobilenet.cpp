// MobileNet V1, V2 and V3-Small, adapted to small inputs (MNIST 28x28, CIFAR 32x32).
//
// All three keep the stem's stride 2 only for inputs of 64 pixels and more (stem_stride()):
// the ImageNet layouts downsample 32x, which would leave a 28x28 image at 1x1 after a few
// blocks. Widths scale with ZooOptions::width (channels rounded to multiples of 8).
#include <algorithm>
#include <string>
#include <vector>

#include "minnow/builder.h"
#include "minnow/error.h"
#include "zoo/blocks.h"
#include "zoo/builders.h"

namespace minnow::zoo {

// MobileNetV1 (Howard et al. 2017), the common CIFAR layout: stem 3x3 conv 32 (stride 1 on
// small inputs), 13 depthwise-separable blocks (3x3 depthwise -> BN -> ReLU -> 1x1 pointwise
// -> BN -> ReLU) with out channels / strides 64/1 128/2 128/1 256/2 256/1 512/2 512/1 x5
// 1024/2 1024/1, global average pool, fc. 28x28 ends at 2x2, 32x32 at 2x2.
Graph build_mobilenet_v1(const ZooOptions& opt) {
  GraphBuilder b("mobilenet_v1", opt.seed);
  std::string x = image_input(b, opt, "mobilenet_v1", 16, 16);
  x = conv_bn_act(b, x, scaled_channels(opt, 32), 3, stem_stride(opt), 1, OpKind::kRelu, "stem");
  struct Layer {
    int64_t out, stride;
  };
  const std::vector<Layer> layers = {{64, 1},  {128, 2},  {128, 1}, {256, 2}, {256, 1},
                                     {512, 2}, {512, 1},  {512, 1}, {512, 1}, {512, 1},
                                     {512, 1}, {1024, 2}, {1024, 1}};
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string name = "block" + std::to_string(i + 1);
    const int64_t c = b.info(x).shape[1];
    x = conv_bn_act(b, x, c, 3, layers[i].stride, c, OpKind::kRelu, name + ".dw");
    x = conv_bn_act(b, x, scaled_channels(opt, layers[i].out), 1, 1, 1, OpKind::kRelu,
                    name + ".pw");
  }
  b.output(pooled_classifier(b, x, opt));
  return b.build();
}

// MobileNetV2 (Sandler et al. 2018), shortened for small inputs. At 1x28x28 and width 1:
// stem 3x3 conv 16 stride 1 + BN + ReLU6; inverted residuals (expansion t, out c, stride s)
// (1,16,1) (6,24,2) (6,24,1) (6,32,2) (6,32,1) (6,64,1); head 1x1 conv 128 + BN + ReLU6;
// global average pool; fc. 70,250 parameters and 6,904,400 MACs for 10 classes.
// Like torchvision, the head is widened for width > 1 but never narrowed.
Graph build_mobilenet_v2(const ZooOptions& opt) {
  GraphBuilder b("mobilenet_v2", opt.seed);
  std::string x = image_input(b, opt, "mobilenet_v2", 8, 8);
  x = conv_bn_act(b, x, scaled_channels(opt, 16), 3, stem_stride(opt), 1, OpKind::kRelu6, "stem");
  struct Setting {
    int64_t t, c, s;
  };
  const std::vector<Setting> settings = {{1, 16, 1}, {6, 24, 2}, {6, 24, 1},
                                         {6, 32, 2}, {6, 32, 1}, {6, 64, 1}};
  for (size_t i = 0; i < settings.size(); ++i) {
    InvertedResidualSpec s;
    s.expanded = b.info(x).shape[1] * settings[i].t;
    s.out = scaled_channels(opt, settings[i].c);
    s.stride = settings[i].s;
    s.act = OpKind::kRelu6;
    x = inverted_residual(b, x, s, "block" + std::to_string(i + 1));
  }
  const int64_t head = make_divisible(128.0 * std::max(1.0, opt.width));
  x = conv_bn_act(b, x, head, 1, 1, 1, OpKind::kRelu6, "head");
  b.output(pooled_classifier(b, x, opt));
  return b.build();
}

// MobileNetV3-Small (Howard et al. 2019), torchvision's block table: stem 3x3 conv 16 +
// BN + HardSwish (stride 1 on small inputs), 11 inverted residuals with SE (squeeze to
// expanded/4, HardSigmoid gate) and ReLU or HardSwish, 1x1 conv to 576 + BN + HardSwish,
// global average pool, fc 1024 (scaled) + HardSwish, [dropout], fc. 28x28 and 32x32 end at 2x2.
Graph build_mobilenet_v3_small(const ZooOptions& opt) {
  GraphBuilder b("mobilenet_v3_small", opt.seed);
  std::string x = image_input(b, opt, "mobilenet_v3_small", 16, 16);
  x = conv_bn_act(b, x, scaled_channels(opt, 16), 3, stem_stride(opt), 1, OpKind::kHardSwish,
                  "stem");
  constexpr OpKind kRE = OpKind::kRelu, kHS = OpKind::kHardSwish;
  struct Setting {
    int64_t kernel, expanded, out;
    bool se;
    OpKind act;
    int64_t stride;
  };
  const std::vector<Setting> settings = {
      {3, 16, 16, true, kRE, 2},  {3, 72, 24, false, kRE, 2}, {3, 88, 24, false, kRE, 1},
      {5, 96, 40, true, kHS, 2},  {5, 240, 40, true, kHS, 1}, {5, 240, 40, true, kHS, 1},
      {5, 120, 48, true, kHS, 1}, {5, 144, 48, true, kHS, 1}, {5, 288, 96, true, kHS, 2},
      {5, 576, 96, true, kHS, 1}, {5, 576, 96, true, kHS, 1}};
  for (size_t i = 0; i < settings.size(); ++i) {
    const Setting& st = settings[i];
    InvertedResidualSpec s;
    s.kernel = st.kernel;
    s.expanded = scaled_channels(opt, st.expanded);
    s.out = scaled_channels(opt, st.out);
    s.stride = st.stride;
    s.act = st.act;
    s.se_channels = st.se ? make_divisible(static_cast<double>(s.expanded / 4)) : 0;
    x = inverted_residual(b, x, s, "block" + std::to_string(i + 1));
  }
  x = conv_bn_act(b, x, 6 * b.info(x).shape[1], 1, 1, 1, kHS, "head");
  x = b.flatten(b.global_avg_pool(x, "pool"), 1, "flatten");
  x = b.activation(kHS, b.linear(x, scaled_channels(opt, 1024), true, "fc1"), "fc1.act");
  if (opt.dropout > 0) x = b.dropout(x, opt.dropout, "dropout");
  b.output(b.linear(x, opt.classes, true, "logits"));
  return b.build();
}

}  // namespace minnow::zoo
