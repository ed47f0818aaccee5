// DS-CNN of the MLPerf Tiny keyword-spotting benchmark (Zhang et al. 2017 "Hello Edge",
// input 49x10 MFCC frames), for any input size.
//
// conv 10x4 stride 2 with 64 filters ("same" padding as Keras: out = ceil(in/2), the odd
// padding pixel at the bottom/right) + BN + ReLU; four depthwise-separable blocks (3x3
// depthwise + BN + ReLU, 1x1 conv 64 + BN + ReLU); global average pool (the reference
// pools over the whole feature map); [dropout]; fc. 64 scales with ZooOptions::width.
// Convs keep their biases like the Keras reference. 49x10 gives 25x5 feature maps, 28x28
// gives 14x14.
#include <algorithm>
#include <string>
#include <vector>

#include "minnow/builder.h"
#include "minnow/error.h"
#include "zoo/blocks.h"
#include "zoo/builders.h"

namespace minnow::zoo {
namespace {

// Keras "same" padding of one dim for a stride-s conv: (before, after).
std::pair<int64_t, int64_t> same_pads(int64_t in, int64_t kernel, int64_t stride) {
  const int64_t out = (in + stride - 1) / stride;
  const int64_t total = std::max<int64_t>((out - 1) * stride + kernel - in, 0);
  return {total / 2, total - total / 2};
}

std::string bn_relu(GraphBuilder& b, const std::string& x, const std::string& name) {
  return b.activation(OpKind::kRelu, b.batch_norm(x, 1e-5, 0.1, name + ".bn"), name + ".relu");
}

}  // namespace

Graph build_ds_cnn(const ZooOptions& opt) {
  GraphBuilder b("ds_cnn", opt.seed);
  std::string x = image_input(b, opt, "ds_cnn", 10, 4);
  const int64_t c = scaled_channels(opt, 64);
  auto [top, bottom] = same_pads(opt.input_shape[1], 10, 2);
  auto [left, right] = same_pads(opt.input_shape[2], 4, 2);
  x = conv_rect(b, x, c, 10, 4, 2, {top, left, bottom, right}, true, "conv1.conv");
  x = bn_relu(b, x, "conv1");
  for (int i = 1; i <= 4; ++i) {
    const std::string name = "block" + std::to_string(i);
    ConvOptions dw;
    dw.pad = 1;
    dw.groups = c;
    x = bn_relu(b, b.conv2d(x, c, 3, dw, name + ".dw.conv"), name + ".dw");
    x = bn_relu(b, b.conv2d(x, c, 1, {}, name + ".pw.conv"), name + ".pw");
  }
  b.output(pooled_classifier(b, x, opt));
  return b.build();
}

}  // namespace minnow::zoo
