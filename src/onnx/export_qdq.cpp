#include "onnx/export_qdq.h"

#include "passes/quant_range.h"

namespace minnow::onnx {
namespace {

// The constant scale of the DequantizeLinear writing `value`, or nullptr.
const Tensor* dequantize_scale(ExportContext& cx, const std::string& value) {
  const Node* p = cx.graph().producer(value);
  if (!p || p->op != OpKind::kDequantizeLinear || p->inputs.size() < 2) return nullptr;
  const Tensor* scale = cx.initializer(p->inputs[1]);
  return scale && scale->dtype() == DType::kF32 ? scale : nullptr;
}

}  // namespace

std::string exported_bias(ExportContext& cx, const Node& n) {
  const std::string& b = n.inputs[2];
  const Tensor* bias = cx.initializer(b);
  const Tensor* x_scale = dequantize_scale(cx, n.inputs[0]);
  const Tensor* w_scale = dequantize_scale(cx, n.inputs[1]);
  const Node* w_dq = cx.graph().producer(n.inputs[1]);
  if (!bias || bias->dtype() != DType::kF32 || bias->rank() != 1 || !x_scale || !w_scale ||
      x_scale->numel() != 1 || !cx.initializer(w_dq->inputs[0])) {
    return b;
  }
  const int64_t channels = bias->numel();
  if (w_scale->numel() != 1 && w_scale->numel() != channels) return b;
  Tensor q(DType::kI32, {channels});
  Tensor scale(DType::kF32, {channels});
  for (int64_t c = 0; c < channels; ++c) {
    const float s = x_scale->f32()[0] * w_scale->f32()[w_scale->numel() == 1 ? 0 : c];
    scale.f32()[c] = s;
    q.data<int32_t>()[c] = quantize_bias(
        bias->f32()[c], double(x_scale->f32()[0]) * w_scale->f32()[w_scale->numel() == 1 ? 0 : c]);
  }
  const std::string data = cx.add_constant(q, b + "_quantized");
  const std::string scale_name = cx.add_constant(scale, b + "_scale");
  const std::string out = cx.fresh(b + "_dequantized");
  ::onnx::NodeProto* dq =
      cx.add_node("DequantizeLinear", {data, scale_name}, {out}, n.name + "/bias");
  set_attr(dq, "axis", int64_t{0});
  return out;
}

}  // namespace minnow::onnx
