// What minnow's own int8 convolutions (qconv_depthwise_nhwc.h, qconv_one_channel_nhwc.h,
// qconv_pointwise_nhwc.h) share: the interface QLinearConv drives them through, the watch on
// their weights, and their per-channel requantization constants.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kernels/qlinear_reference.h"
#include "kernels/weights_watch.h"
#include "minnow/error.h"

namespace minnow::kernels {

class QConvOwnKernel {
 public:
  virtual ~QConvOwnKernel() = default;

  // x and y channels-last (shapes in each kernel's header). p.w_zp must be all zero (weights
  // symmetric).
  virtual void forward(const QLinearParams& p, const void* x, const int8_t* w, void* y) = 0;
  // As QConvDnnl::set_weights_constant, the weights are prepared once per address when
  // `weights`; when `params`, the caller promises that scales, zero points and bias never
  // change (graph initializers), and the requantization constants are computed once.
  void set_constant(bool weights, bool params) {
    weights_.set_constant(weights);
    params_constant_ = params;
  }

 protected:
  // weight_bytes: w's size; channels: the output channels rounded up to 16. Throws
  // minnow::Error naming the kernel for an output dtype other than u8, i8 or f32.
  QConvOwnKernel(const char* name, DType y, size_t weight_bytes, int64_t channels)
      : weights_(weight_bytes),
        wsum_(static_cast<size_t>(channels), 0),
        mult_(static_cast<size_t>(channels), 0.0f),
        offset_(static_cast<size_t>(channels), 0) {
    if (y != DType::kU8 && y != DType::kI8 && y != DType::kF32) {
      throw Error(std::string(name) + ": unsupported output dtype " + std::string(dtype_name(y)));
    }
  }

  // mult_ and offset_ for this call's scales and bias (one value per channel): the output
  // multiplier, and the accumulator's start, bias - x_zp * wsum_, where x_zp is the zero point
  // of the codes the kernel multiplies (i8 inputs offset to u8). They are tensors, so re-read
  // on every call unless promised constant and the weights (wsum_) are unchanged. Returns
  // whether it recomputed them. Channel c's constants go to entry slot(c) (a kernel that keeps
  // its channels in another order; wsum_ stays in channel order).
  template <class Slot = std::identity>
  bool update_constants(const QLinearParams& p, int32_t x_zp, int64_t channels,
                        bool weights_changed, Slot slot = {}) {
    if (params_constant_ && constants_ready_ && !weights_changed) return false;
    for (int64_t c = 0; c < channels; ++c) {
      const auto at = static_cast<size_t>(slot(c));
      mult_[at] = p.multiplier(c);
      offset_[at] = (p.bias ? p.bias[c] : 0) - x_zp * wsum_[static_cast<size_t>(c)];
    }
    constants_ready_ = true;
    return true;
  }

  // Whether PackedRequant (qconv_vnni_common.h) gives the exact result for these constants:
  // |acc * mult| < 2^31 for every accumulator of `products` u8 x s8 products (bounded by the
  // largest start plus 255 * 128 per product), with a factor 2 to spare.
  bool packed_requant_exact(int64_t products) const {
    float largest = 0;
    for (size_t i = 0; i < mult_.size(); ++i) {
      const float bound = std::fabs(static_cast<float>(offset_[i])) +
                          255.0f * 128.0f * static_cast<float>(products);
      largest = std::max(largest, bound * std::fabs(mult_[i]));
    }
    return largest < 1073741824.0f;
  }

  WeightsWatch weights_;         // the weights the kernel's packed copy was made from
  std::vector<int32_t> wsum_;    // sum of each output channel's weights
  std::vector<float> mult_;      // x_scale * w_scale[c] (/ y_scale)
  std::vector<int32_t> offset_;  // every accumulator's start
  bool params_constant_ = false, constants_ready_ = false;
};

}  // namespace minnow::kernels
