// Declarations of every op table row; each is defined in its family's file.
#pragma once

#include "core/op_registry.h"
#include "kernels/conv_geometry.h"

namespace minnow::ops {

// conv.cpp
extern const OpDef kConv2dDef;
// The concrete geometry of a Conv2d node for these inputs (validated; throws naming the node).
kernels::ConvGeometry conv_geometry(const Node& n, const InputInfos& in);
// pool.cpp
extern const OpDef kMaxPoolDef, kAvgPoolDef, kGlobalAvgPoolDef;
// linear.cpp
extern const OpDef kLinearDef, kMatMulDef;
// norm.cpp
extern const OpDef kBatchNormDef;
// activation.cpp
extern const OpDef kReluDef, kRelu6Def, kLeakyReluDef, kSigmoidDef, kTanhDef, kGeluDef,
    kHardSwishDef, kHardSigmoidDef;
// binary.cpp
extern const OpDef kAddDef, kSubDef, kMulDef;
// layout.cpp
extern const OpDef kConcatDef, kSplitDef, kReshapeDef, kFlattenDef, kTransposeDef;
// softmax.cpp
extern const OpDef kSoftmaxDef, kLogSoftmaxDef;
// dropout.cpp
extern const OpDef kDropoutDef;
// loss.cpp
extern const OpDef kSoftmaxCrossEntropyDef, kMseLossDef, kBceWithLogitsDef, kDistillationLossDef;
// embedding.cpp, layer_norm.cpp, attention.cpp
extern const OpDef kEmbeddingDef, kLayerNormDef, kMultiHeadAttentionDef;
// lstm.cpp, gru.cpp
extern const OpDef kLstmDef, kGruDef;
// math_unary.cpp
extern const OpDef kExpDef, kLogDef, kSqrtDef, kNegDef, kAbsDef, kReciprocalDef, kErfDef, kFloorDef,
    kCeilDef, kRoundDef, kSignDef, kSinDef, kCosDef, kTanDef, kAsinDef, kAcosDef, kAtanDef,
    kSinhDef, kCoshDef, kAsinhDef, kAcoshDef, kAtanhDef, kSoftplusDef, kSoftsignDef, kEluDef,
    kSeluDef, kCeluDef, kThresholdedReluDef, kClipDef;
// math_binary.cpp
extern const OpDef kDivDef, kPowDef, kMaxDef, kMinDef;
// reduce.cpp
extern const OpDef kReduceMeanDef, kReduceSumDef, kReduceMaxDef, kReduceMinDef, kReduceProdDef,
    kReduceL1Def, kReduceL2Def, kReduceSumSquareDef, kReduceLogSumDef, kReduceLogSumExpDef;
// shape_ops.cpp, slice.cpp, pad.cpp, gather.cpp, cast.cpp
extern const OpDef kSqueezeDef, kUnsqueezeDef, kIdentityDef, kExpandDef, kDepthToSpaceDef,
    kSpaceToDepthDef, kSliceDef, kPadDef, kGatherDef, kCastDef;
// quantize_linear.cpp
extern const OpDef kQuantizeLinearDef, kDequantizeLinearDef;
// qlinear_conv.cpp, qlinear_linear.cpp (int8 convolution and dense)
extern const OpDef kQLinearConvDef, kQLinearLinearDef;
// qlinear_add.cpp, qlinear_pool.cpp
extern const OpDef kQLinearAddDef, kQLinearGlobalAvgPoolDef, kQLinearLookupDef;
extern const OpDef kQLinearSoftmaxDef;
// fake_quantize.cpp (quantization-aware training)
extern const OpDef kFakeQuantizeDef;
// bn_depthwise_conv.cpp (training-time fusion)
extern const OpDef kBatchNormDepthwiseConvDef;

}  // namespace minnow::ops
