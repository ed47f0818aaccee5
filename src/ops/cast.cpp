// Cast: elementwise conversion to the dtype named by attribute "to" (a minnow dtype name: f32,
// f64, i64, i32, i8, u8; the importer translates ONNX's TensorProto enum). Float -> integer
// truncates toward zero like ONNX/numpy; the cases they leave undefined saturate (see
// convert_value in dtype_dispatch.h). Quantization parameters are not carried: Cast converts
// stored values, DequantizeLinear is the op that applies scale and zero point.
//
// Gradient: float -> float passes dy through (converted back); float -> integer is piecewise
// constant, so its gradient is zero.
#include <string>

#include "ops/dtype_dispatch.h"
#include "ops/elementwise.h"
#include "ops/op_defs.h"
#include "ops/shape_util.h"

namespace minnow::ops {
namespace {

DType cast_target(const Node& n) {
  if (!n.attrs.has("to")) fail(n, "attribute to is required (a dtype name such as f32)");
  const std::string to = n.attrs.get_string("to", "");
  try {
    return dtype_from_name(to);
  } catch (const Error&) {
    fail(n, "attribute to='" + to + "' is not a dtype (expected f32, f64, i64, i32, i8, u8)");
  }
}

void infer_cast(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  const ValueInfo& x = input(n, in, 0);
  out[0].dtype = cast_target(n);
  out[0].shape = x.shape;
}

template <class D, class S>
void convert(D* __restrict y, const S* __restrict x, int64_t count) {
  for_blocks(count, [=](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) y[i] = convert_value<D>(x[i]);
  });
}

// y (dtype of `dst`) = x (dtype of `src`), elementwise.
void convert_tensor(Tensor& dst, const Tensor& src) {
  dispatch_any(dst.dtype(), [&]<class D>() {
    dispatch_any(src.dtype(),
                 [&]<class S>() { convert(dst.data<D>(), src.data<S>(), src.numel()); });
  });
}

class CastKernel final : public Kernel {
 public:
  void forward(Tensors in, Tensors out, RunContext&) override { convert_tensor(*out[0], *in[0]); }

  void backward(Tensors in, Tensors out, Tensors grad_out, Tensors grad_in, RunContext&) override {
    if (!grad_in[0]) return;
    const bool through = dtype_is_float(in[0]->dtype()) && dtype_is_float(out[0]->dtype());
    if (!through || !grad_out[0]) {
      grad_in[0]->fill_zero();
      return;
    }
    convert_tensor(*grad_in[0], *grad_out[0]);
  }
};

std::unique_ptr<Kernel> make_cast(const Node&, const InputInfos&, const std::vector<ValueInfo>&) {
  return std::make_unique<CastKernel>();
}

}  // namespace

const OpDef kCastDef = {OpKind::kCast, "Cast",    1,       1,    1,
                        infer_cast,    make_cast, nullptr, true, nullptr};

}  // namespace minnow::ops
