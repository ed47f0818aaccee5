// The closed set of operators. The op table (src/core/op_table.cpp) has one row per entry,
// in this order; a static_assert there keeps the two in step.
#pragma once

#include <cstdint>

namespace minnow {

enum class OpKind : uint16_t {
  // Convolution and pooling (src/ops/conv.cpp, src/ops/pool.cpp)
  kConv2d,
  kMaxPool,
  kAvgPool,
  kGlobalAvgPool,
  // Dense (src/ops/linear.cpp)
  kLinear,  // y = x W^T + b, W is [out, in] (PyTorch layout); ONNX Gemm maps here
  kMatMul,
  // Normalization (src/ops/norm.cpp)
  kBatchNorm,
  // Activations (src/ops/activation.cpp)
  kRelu,
  kRelu6,
  kLeakyRelu,
  kSigmoid,
  kTanh,
  kGelu,
  kHardSwish,
  kHardSigmoid,
  // Elementwise binary with broadcasting (src/ops/binary.cpp)
  kAdd,
  kSub,
  kMul,
  // Tensor layout (src/ops/layout.cpp)
  kConcat,
  kSplit,
  kReshape,
  kFlatten,
  kTranspose,
  // Softmax family (src/ops/softmax.cpp)
  kSoftmax,
  kLogSoftmax,
  // Regularization (src/ops/dropout.cpp)
  kDropout,
  // Losses (src/ops/loss.cpp): output is a scalar mean over the batch
  kSoftmaxCrossEntropy,
  kMseLoss,
  kBceWithLogits,
  kDistillationLoss,  // Hinton soft targets + hard labels (training-only)
  // Sequence models (src/ops/embedding.cpp, layer_norm.cpp, attention.cpp)
  kEmbedding,
  kLayerNorm,
  kMultiHeadAttention,
  // Recurrent (src/ops/lstm.cpp, src/ops/gru.cpp)
  kLstm,
  kGru,
  // Elementwise math and reductions (src/ops/math_unary.cpp, math_binary.cpp, reduce.cpp)
  kExp,
  kLog,
  kSqrt,
  kNeg,
  kAbs,
  kReciprocal,
  kErf,
  kFloor,
  kCeil,
  kRound,
  kSign,
  kSin,
  kCos,
  kTan,
  kAsin,
  kAcos,
  kAtan,
  kSinh,
  kCosh,
  kAsinh,
  kAcosh,
  kAtanh,
  kSoftplus,
  kSoftsign,
  kElu,
  kSelu,
  kCelu,
  kThresholdedRelu,
  kClip,
  kDiv,
  kPow,
  kMax,
  kMin,
  kReduceMean,
  kReduceSum,
  kReduceMax,
  kReduceMin,
  kReduceProd,
  kReduceL1,
  kReduceL2,
  kReduceSumSquare,
  kReduceLogSum,
  kReduceLogSumExp,
  // Shape manipulation (src/ops/shape_ops.cpp, slice.cpp, pad.cpp, gather.cpp, cast.cpp)
  kSqueeze,
  kUnsqueeze,
  kIdentity,
  kExpand,
  kDepthToSpace,
  kSpaceToDepth,
  kSlice,  // src/ops/slice.cpp
  kPad,
  kGather,
  kCast,  // src/ops/cast.cpp
  // Quantized inference (src/ops/quantize_linear.cpp, qlinear_conv.cpp, qlinear_linear.cpp,
  // qlinear_add.cpp, qlinear_pool.cpp, qlinear_lookup.cpp, qlinear_softmax.cpp)
  kQuantizeLinear,
  kDequantizeLinear,
  kQLinearConv,
  kQLinearLinear,
  kQLinearAdd,
  kQLinearGlobalAvgPool,
  kQLinearLookup,
  kQLinearSoftmax,
  // Quantization-aware training (src/ops/fake_quantize.cpp)
  kFakeQuantize,
  // BatchNorm [+ ReLU/ReLU6] -> depthwise Conv2d as one node (src/ops/bn_depthwise_conv.cpp;
  // made by the training session's fuse_batchnorm_depthwise pass, never stored)
  kBatchNormDepthwiseConv,
  kCount
};

}  // namespace minnow
