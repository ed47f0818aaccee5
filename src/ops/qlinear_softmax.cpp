// QLinearSoftmax(x, x_scale, [x_zero_point], [y_scale, [y_zero_point]]) -> y: softmax along
// attribute axis (default -1) of quantized x, read without a float copy of x. y is f32
// probabilities without y_scale; with y_scale it is quantized as QuantizeLinear does (round
// half to even, saturate) to the dtype of y_zero_point (u8 when absent). Per-tensor parameters.
//
// Softmax does not change when all inputs of a row move together, so with m the row's largest
// code, exp(x_scale (q - zp) - x_scale (m - zp)) = exp(-x_scale (m - q)): one of 256 values,
// kept in a table made once per x_scale. A row costs a max, a table lookup and a division per
// element, and no exp. passes/lower_qdq.h lowers DequantizeLinear -> Softmax [-> QuantizeLinear]
// to it.
#include <algorithm>
#include <array>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "ops/op_defs.h"
#include "ops/op_util.h"
#include "ops/quant_util.h"

namespace minnow::ops {
namespace {

enum Input { kX = 0, kXScale, kXZp, kYScale, kYZp };

int axis_of(const Node& n, int rank) {
  const int64_t axis = n.attrs.get_int("axis", -1);
  if (axis < -rank || axis >= rank) {
    fail(n, "attribute axis " + std::to_string(axis) + " is out of range for rank " +
                std::to_string(rank));
  }
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

bool has_y_scale(const InputInfos& in) { return in.size() > kYScale && in[kYScale]; }

void infer_qsoftmax(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  const ValueInfo& x = input(n, in, kX);
  if (!quant::is_q8(x.dtype)) {
    fail(n, "input '" + x.name + "' has dtype " + std::string(dtype_name(x.dtype)) +
                ", expected u8 or i8");
  }
  if (x.shape.empty()) fail(n, "input '" + x.name + "' must have rank >= 1, got a scalar");
  axis_of(n, static_cast<int>(x.shape.size()));
  quant::check_qparams(n, in, kXScale, kXZp, false, false, "x_scale");
  out[0].shape = x.shape;
  out[0].dtype = DType::kF32;
  if (has_y_scale(in)) {
    const quant::QParamInfo yq =
        quant::check_qparams(n, in, kYScale, kYZp, false, false, "y_scale");
    out[0].dtype = yq.zp_dtype;
  }
}

class QLinearSoftmaxKernel final : public Kernel {
 public:
  QLinearSoftmaxKernel(const Node& n, const Shape& shape) : node_(n) {
    const int axis = axis_of(n, static_cast<int>(shape.size()));
    for (int i = 0; i < static_cast<int>(shape.size()); ++i) {
      (i < axis ? outer_ : i == axis ? len_ : inner_) *= shape[i];
    }
    e_.resize(static_cast<size_t>(len_));
  }

  void forward(Tensors in, Tensors out, RunContext&) override {
    const quant::QParams xq = quant::read_qparams(node_, in, kXScale, kXZp, 1, "x_scale");
    const float s = xq.scale_at(0);
    if (s != table_scale_) {  // exp(-s d) for every distance d = m - q between two codes
      for (int d = 0; d < 256; ++d) table_[d] = std::exp(-s * static_cast<float>(d));
      table_scale_ = s;
    }
    const bool quantized = in.size() > kYScale && in[kYScale];
    quant::QParams yq;
    if (quantized) yq = quant::read_qparams(node_, in, kYScale, kYZp, 1, "y_scale");
    // Codes as ints in a common order (i8 shifted by 128), so that m - q indexes the table;
    // the zero point cancels out.
    const bool i8 = in[kX]->dtype() == DType::kI8;
    const auto* x = static_cast<const uint8_t*>(in[kX]->raw());
    auto code = [&](int64_t i) { return i8 ? (x[i] ^ 0x80) : x[i]; };
    // The output's parameters, read once: f32, or u8/i8 codes of y_scale and y_zero_point.
    float* yf = quantized ? nullptr : out[0]->f32();
    void* yq_data = quantized ? out[0]->raw() : nullptr;
    const bool y_u8 = out[0]->dtype() == DType::kU8;
    const quant::QRange range = quantized ? quant::qrange(out[0]->dtype()) : quant::QRange{0, 0};
    const float y_scale = quantized ? yq.scale_at(0) : 1.0f;
    const int32_t y_zp = quantized ? yq.zero_point_at(0) : 0;
    for (int64_t o = 0; o < outer_; ++o) {
      for (int64_t r = 0; r < inner_; ++r) {
        const int64_t base = o * len_ * inner_ + r;
        int m = 0;
        for (int64_t k = 0; k < len_; ++k) m = std::max(m, code(base + k * inner_));
        float sum = 0;
        for (int64_t k = 0; k < len_; ++k) {
          e_[k] = table_[m - code(base + k * inner_)];
          sum += e_[k];
        }
        const float inv = 1.0f / sum;
        for (int64_t k = 0; k < len_; ++k) {
          const float p = e_[k] * inv;
          const int64_t i = base + k * inner_;
          if (yf) {
            yf[i] = p;
            continue;
          }
          const int32_t q = quant::quantize_scaled(p / y_scale, y_zp, range);
          if (y_u8) {
            static_cast<uint8_t*>(yq_data)[i] = static_cast<uint8_t>(q);
          } else {
            static_cast<int8_t*>(yq_data)[i] = static_cast<int8_t>(q);
          }
        }
      }
    }
  }

 private:
  Node node_;
  int64_t outer_ = 1, len_ = 1, inner_ = 1;
  std::array<float, 256> table_{};
  float table_scale_ = -1.0f;  // no scale yet: scales are > 0
  std::vector<float> e_;       // one row's exponentials
};

std::unique_ptr<Kernel> make_qsoftmax(const Node& n, const InputInfos& in,
                                      const std::vector<ValueInfo>&) {
  return std::make_unique<QLinearSoftmaxKernel>(n, input(n, in, kX).shape);
}

}  // namespace

const OpDef kQLinearSoftmaxDef = {
    OpKind::kQLinearSoftmax, "QLinearSoftmax", 2,       5,     1,
    infer_qsoftmax,          make_qsoftmax,    nullptr, false, nullptr};

}  // namespace minnow::ops
