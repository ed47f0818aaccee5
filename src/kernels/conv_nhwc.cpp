#include "kernels/conv_nhwc.h"

#include <cmath>
#include <limits>

#include "kernels/dnnl_impl_choice.h"

namespace minnow::kernels {

using dnnl::memory;
using Tag = memory::format_tag;
constexpr auto kF32 = memory::data_type::f32;

namespace {

struct Described {
  dnnl::convolution_forward::desc d;
  dnnl::primitive_attr attr;
  memory::desc wei_plain, bias, dst;  // the caller's weights (OIHW/GOIHW), bias and y
};

Described describe(const ConvGeometry& g, bool sum, bool clamp, float lo, float hi) {
  using namespace dnnl;
  const memory::desc src({g.n, g.c, g.h, g.w}, kF32, Tag::nhwc);
  const memory::desc dst({g.n, g.o, g.oh(), g.ow()}, kF32, Tag::nhwc);
  const memory::dims wdims = g.group > 1 ? memory::dims{g.group, g.og(), g.cg(), g.kh, g.kw}
                                         : memory::dims{g.o, g.c, g.kh, g.kw};
  const memory::desc wei_any(wdims, kF32, Tag::any);
  const memory::desc wei_plain(wdims, kF32, g.group > 1 ? Tag::goihw : Tag::oihw);
  const memory::desc bias({g.o}, kF32, Tag::x);
  primitive_attr attr = dnnl_glue::user_scratchpad_attr();
  post_ops po;
  if (sum) po.append_binary(algorithm::binary_add, dst);  // post-op 0
  if (clamp) {
    if (std::isinf(hi) && lo == 0) {
      po.append_eltwise(1.0f, algorithm::eltwise_relu, 0.0f, 0.0f);
    } else {
      po.append_eltwise(1.0f, algorithm::eltwise_clip, lo, hi);
    }
  }
  attr.set_post_ops(po);
  const memory::dims strides{g.sh, g.sw}, dil{g.dh - 1, g.dw - 1}, pl{g.pt, g.pl}, pr{g.pb, g.pr};
  const auto alg = algorithm::convolution_direct;
  auto d = g.has_bias ? convolution_forward::desc(prop_kind::forward_inference, alg, src, wei_any,
                                                  bias, dst, strides, dil, pl, pr)
                      : convolution_forward::desc(prop_kind::forward_inference, alg, src, wei_any,
                                                  dst, strides, dil, pl, pr);
  return {d, attr, wei_plain, bias, dst};
}

}  // namespace

std::vector<std::string> ConvNhwc::candidates(const ConvGeometry& g, bool sum, bool clamp, float lo,
                                              float hi) {
  const Described s = describe(g, sum, clamp, lo, hi);
  std::vector<std::string> names;
  for (const auto& pd : dnnl_glue::convolution_candidates(s.d, s.attr)) {
    names.push_back(pd.impl_info_str());
  }
  return names;
}

ConvNhwc::ConvNhwc(const ConvGeometry& g, bool sum, bool clamp, float lo, float hi,
                   const std::string& impl)
    : g_(g) {
  using namespace dnnl;
  auto& eng = dnnl_glue::engine();
  const Described s = describe(g, sum, clamp, lo, hi);
  if (!impl.empty()) {
    pd_ = dnnl_glue::convolution_impl(s.d, s.attr, impl);
  } else if (g.n * g.macs_per_sample() <= dnnl_glue::kTimedChoiceMaxMacs) {
    dnnl_glue::ExtraArgs extra;
    if (sum) extra.push_back({DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, s.dst});
    pd_ = dnnl_glue::fastest_convolution(s.d, s.attr, extra);
  } else {
    pd_ = convolution_forward::primitive_desc(s.d, s.attr, eng);
  }
  src_ = memory(pd_.src_desc(), eng, nullptr);
  dst_ = memory(pd_.dst_desc(), eng, nullptr);
  wei_user_ = memory(s.wei_plain, eng, nullptr);
  wei_inner_ = memory(pd_.weights_desc(), eng);
  std::vector<std::pair<int, memory>> args{
      {DNNL_ARG_SRC, src_}, {DNNL_ARG_WEIGHTS, wei_inner_}, {DNNL_ARG_DST, dst_}};
  if (g.has_bias) {
    bias_ = memory(s.bias, eng, nullptr);
    args.push_back({DNNL_ARG_BIAS, bias_});
  }
  if (sum) {
    sum_ = memory(s.dst, eng, nullptr);
    args.push_back({DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, sum_});
  }
  conv_ = dnnl_glue::Call(convolution_forward(pd_), args);
  wei_reorder_ = dnnl_glue::Call(dnnl_glue::make_reorder(wei_user_, wei_inner_),
                                 {{DNNL_ARG_FROM, wei_user_}, {DNNL_ARG_TO, wei_inner_}});
}

void ConvNhwc::forward(const float* x, const float* w, const float* b, const float* s, float* y) {
  if (w != packed_from_) {
    wei_user_.set_data_handle(const_cast<float*>(w));
    wei_reorder_();
    packed_from_ = w;
  }
  src_.set_data_handle(const_cast<float*>(x));
  dst_.set_data_handle(y);
  if (g_.has_bias) bias_.set_data_handle(const_cast<float*>(b));
  if (sum_) sum_.set_data_handle(const_cast<float*>(s));
  conv_();
}

std::string ConvNhwc::impl() const { return pd_.impl_info_str(); }

}  // namespace minnow::kernels
