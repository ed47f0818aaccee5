// Building blocks shared by the zoo's CNNs: conv+BN+activation, inverted residuals,
// squeeze-and-excitation, channel shuffle and the pooled classifier head.
//
// Every block names its parameters after PyTorch state_dict keys ("<block>.conv.weight",
// "<block>.bn.running_mean", ...) so that weights can be exchanged with a PyTorch twin
// (tests/golden/gen_mobilenet_v2.py relies on this).
#pragma once

#include <cstdint>
#include <string>

#include "minnow/builder.h"
#include "minnow/zoo.h"

namespace minnow::zoo {

// Marks "no activation" (OpKind::kCount is not an op).
inline constexpr OpKind kNoAct = OpKind::kCount;

// torchvision's _make_divisible: the multiple of `divisor` nearest to v (at least `divisor`),
// bumped up one step when rounding down lost more than 10%.
int64_t make_divisible(double v, int64_t divisor = 8);
// `base` channels times opt.width, made divisible by 8.
int64_t scaled_channels(const ZooOptions& opt, int64_t base);

// Declares the graph input "input" [N, C, H, W] after checking that opt.input_shape is
// [C, H, W] with H >= min_h and W >= min_w; the error names the model.
std::string image_input(GraphBuilder& b, const ZooOptions& opt, const std::string& model,
                        int64_t min_h, int64_t min_w);

// 1 for small inputs (both sides under 64 pixels), else 2: the zoo's mobilenets keep the
// ImageNet layout's later strides and drop the stem's downsampling when the input is small.
int64_t stem_stride(const ZooOptions& opt);

// Conv (square kernel, "same" padding k/2, no bias) -> BatchNorm -> activation.
// Nodes "<name>.conv", "<name>.bn", "<name>.act".
std::string conv_bn_act(GraphBuilder& b, const std::string& x, int64_t out_channels, int64_t kernel,
                        int64_t stride, int64_t groups, OpKind act, const std::string& name);

// Conv with a kh x kw kernel, explicit pads [top, left, bottom, right] and PyTorch-default
// initialization; the builder's conv2d only makes square kernels with symmetric padding.
std::string conv_rect(GraphBuilder& b, const std::string& x, int64_t out_channels, int64_t kh,
                      int64_t kw, int64_t stride, const std::vector<int64_t>& pads, bool bias,
                      const std::string& name);

// Squeeze-and-excitation (MobileNetV3 form): x * HardSigmoid(fc2(ReLU(fc1(GAP(x))))), the fcs
// being 1x1 convs with bias ("<name>.fc1", "<name>.fc2").
std::string squeeze_excite(GraphBuilder& b, const std::string& x, int64_t squeeze_channels,
                           const std::string& name);

// MobileNetV2/V3 inverted residual: [1x1 expand -> act] -> kxk depthwise -> act -> [SE] ->
// 1x1 linear projection, every conv followed by BN; a residual add when stride is 1 and the
// channel count is unchanged. No expand conv when expanded == input channels.
struct InvertedResidualSpec {
  int64_t kernel = 3;
  int64_t expanded = 0;  // channels of the depthwise conv
  int64_t out = 0;
  int64_t stride = 1;
  int64_t se_channels = 0;  // 0: no squeeze-and-excitation
  OpKind act = OpKind::kRelu6;
};
std::string inverted_residual(GraphBuilder& b, const std::string& x, const InvertedResidualSpec& s,
                              const std::string& name);

// ShuffleNet's channel shuffle: [N, C, H, W] -> [N, g, C/g, H, W] -> swap dims 1 and 2 ->
// [N, C, H, W]. The batch stays symbolic (Reshape copies it with 0).
std::string channel_shuffle(GraphBuilder& b, const std::string& x, int64_t groups,
                            const std::string& name);

// Global average pool -> flatten -> [Dropout opt.dropout] -> Linear to opt.classes, the last
// node named "logits" (parameters "logits.weight", "logits.bias").
std::string pooled_classifier(GraphBuilder& b, const std::string& x, const ZooOptions& opt);

}  // namespace minnow::zoo
