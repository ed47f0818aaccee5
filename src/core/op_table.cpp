// The one op table. Adding an op: an OpKind entry, its OpDef in the family file, one row here.
#include <array>
#include <string>

#include "core/op_registry.h"
#include "minnow/error.h"
#include "ops/op_defs.h"

namespace minnow {
namespace {

using namespace ops;

// Same order as OpKind. The size check is compile-time; op_def() checks each row's kind.
const std::array<const OpDef*, static_cast<size_t>(OpKind::kCount)> kTable = {
    &kConv2dDef,
    &kMaxPoolDef,
    &kAvgPoolDef,
    &kGlobalAvgPoolDef,
    &kLinearDef,
    &kMatMulDef,
    &kBatchNormDef,
    &kReluDef,
    &kRelu6Def,
    &kLeakyReluDef,
    &kSigmoidDef,
    &kTanhDef,
    &kGeluDef,
    &kHardSwishDef,
    &kHardSigmoidDef,
    &kAddDef,
    &kSubDef,
    &kMulDef,
    &kConcatDef,
    &kSplitDef,
    &kReshapeDef,
    &kFlattenDef,
    &kTransposeDef,
    &kSoftmaxDef,
    &kLogSoftmaxDef,
    &kDropoutDef,
    &kSoftmaxCrossEntropyDef,
    &kMseLossDef,
    &kBceWithLogitsDef,
    &kDistillationLossDef,
    &kEmbeddingDef,
    &kLayerNormDef,
    &kMultiHeadAttentionDef,
    &kLstmDef,
    &kGruDef,
    &kExpDef,
    &kLogDef,
    &kSqrtDef,
    &kNegDef,
    &kAbsDef,
    &kReciprocalDef,
    &kErfDef,
    &kFloorDef,
    &kCeilDef,
    &kRoundDef,
    &kSignDef,
    &kSinDef,
    &kCosDef,
    &kTanDef,
    &kAsinDef,
    &kAcosDef,
    &kAtanDef,
    &kSinhDef,
    &kCoshDef,
    &kAsinhDef,
    &kAcoshDef,
    &kAtanhDef,
    &kSoftplusDef,
    &kSoftsignDef,
    &kEluDef,
    &kSeluDef,
    &kCeluDef,
    &kThresholdedReluDef,
    &kClipDef,
    &kDivDef,
    &kPowDef,
    &kMaxDef,
    &kMinDef,
    &kReduceMeanDef,
    &kReduceSumDef,
    &kReduceMaxDef,
    &kReduceMinDef,
    &kReduceProdDef,
    &kReduceL1Def,
    &kReduceL2Def,
    &kReduceSumSquareDef,
    &kReduceLogSumDef,
    &kReduceLogSumExpDef,
    &kSqueezeDef,
    &kUnsqueezeDef,
    &kIdentityDef,
    &kExpandDef,
    &kDepthToSpaceDef,
    &kSpaceToDepthDef,
    &kSliceDef,
    &kPadDef,
    &kGatherDef,
    &kCastDef,
    &kQuantizeLinearDef,
    &kDequantizeLinearDef,
    &kQLinearConvDef,
    &kQLinearLinearDef,
    &kQLinearAddDef,
    &kQLinearGlobalAvgPoolDef,
    &kQLinearLookupDef,
    &kQLinearSoftmaxDef,
    &kFakeQuantizeDef,
    &kBatchNormDepthwiseConvDef,
};
static_assert(kTable.size() == static_cast<size_t>(OpKind::kCount));

}  // namespace

const OpDef& op_def(OpKind kind) {
  size_t i = static_cast<size_t>(kind);
  if (i >= kTable.size()) throw Error("invalid op kind " + std::to_string(i));
  const OpDef& def = *kTable[i];
  if (def.kind != kind)
    throw std::logic_error("op table row " + std::to_string(i) + " out of order");
  return def;
}

OpKind op_kind_from_name(std::string_view name) {
  for (const OpDef* def : kTable) {
    if (name == def->name) return def->kind;
  }
  throw Error("unknown op '" + std::string(name) + "'");
}

std::unique_ptr<Kernel> make_kernel(const Node& node, const InputInfos& in,
                                    const std::vector<ValueInfo>& out, KernelChoice choice) {
  const OpDef& def = op_def(node.op);
  if (choice == KernelChoice::kFast && def.fast) {
    bool all_f32 = true;
    for (const ValueInfo* v : in) {
      if (v && dtype_is_float(v->dtype) && v->dtype != DType::kF32) all_f32 = false;
    }
    if (all_f32) return def.fast(node, in, out);
  }
  return def.reference(node, in, out);
}

void Kernel::backward(Tensors, Tensors, Tensors, Tensors, RunContext&) {
  throw Error("op has no gradient");
}

}  // namespace minnow
