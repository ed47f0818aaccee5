// ResNet-8 of the MLPerf Tiny image-classification benchmark (CIFAR-10, 32x32x3).
//
// conv 3x3 16 + BN + ReLU, then three residual stacks of 16, 32, 64 filters (times
// ZooOptions::width): conv 3x3 (stride 1, 2, 2) + BN + ReLU, conv 3x3 + BN, added to the
// shortcut (identity in stack 1; a 1x1 stride-2 conv without BN in stacks 2 and 3), ReLU;
// global average pool, fc. Convs keep their biases, as in the Keras reference (78,666
// weights there including BN running statistics, i.e. 78,186 trainable at 32x32x3).
// Stride-2 convs pad 1 on each side where Keras "same" pads only bottom/right; output sizes
// agree.
#include <string>

#include "minnow/builder.h"
#include "minnow/error.h"
#include "zoo/blocks.h"
#include "zoo/builders.h"

namespace minnow::zoo {
namespace {

std::string conv_bn(GraphBuilder& b, const std::string& x, int64_t out, int64_t stride,
                    const std::string& name) {
  ConvOptions c;
  c.stride = stride;
  c.pad = 1;
  return b.batch_norm(b.conv2d(x, out, 3, c, name + ".conv"), 1e-5, 0.1, name + ".bn");
}

std::string residual_stack(GraphBuilder& b, const std::string& x, int64_t filters, int64_t stride,
                           const std::string& name) {
  std::string y =
      b.activation(OpKind::kRelu, conv_bn(b, x, filters, stride, name + ".a"), name + ".a.relu");
  y = conv_bn(b, y, filters, 1, name + ".b");
  std::string shortcut = x;
  if (stride != 1 || b.info(x).shape[1] != filters) {
    ConvOptions c;
    c.stride = stride;
    shortcut = b.conv2d(x, filters, 1, c, name + ".shortcut");
  }
  y = b.op(OpKind::kAdd, {shortcut, y}, {}, name + ".add");
  return b.activation(OpKind::kRelu, y, name + ".relu");
}

}  // namespace

Graph build_resnet8(const ZooOptions& opt) {
  GraphBuilder b("resnet8", opt.seed);
  std::string x = image_input(b, opt, "resnet8", 4, 4);
  x = b.activation(OpKind::kRelu, conv_bn(b, x, scaled_channels(opt, 16), 1, "stem"), "stem.relu");
  x = residual_stack(b, x, scaled_channels(opt, 16), 1, "stack1");
  x = residual_stack(b, x, scaled_channels(opt, 32), 2, "stack2");
  x = residual_stack(b, x, scaled_channels(opt, 64), 2, "stack3");
  b.output(pooled_classifier(b, x, opt));
  return b.build();
}

}  // namespace minnow::zoo
