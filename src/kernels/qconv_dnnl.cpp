#include "kernels/qconv_dnnl.h"

#include <cmath>
#include <cstring>
#include <string>
#include <utility>

#include "kernels/dnnl_impl_choice.h"
#include "minnow/error.h"

namespace minnow::kernels {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using DT = memory::data_type;

DT dnnl_type(DType t) {
  switch (t) {
    case DType::kU8:
      return DT::u8;
    case DType::kI8:
      return DT::s8;
    case DType::kF32:
      return DT::f32;
    default:
      throw Error("QConvDnnl: unsupported dtype " + std::string(dtype_name(t)));
  }
}

// With a 1x1 image NCHW and NHWC are the same bytes; describing the plain tensor as NHWC lets
// oneDNN's preferred layout match it and saves the reorder (the Linear case).
Tag plain_tag(int64_t h, int64_t w) { return h * w == 1 ? Tag::nhwc : Tag::nchw; }

memory::desc weights_desc(const ConvGeometry& g, Tag tag_if_plain) {
  memory::dims dims = g.group > 1 ? memory::dims{g.group, g.og(), g.cg(), g.kh, g.kw}
                                  : memory::dims{g.o, g.c, g.kh, g.kw};
  Tag tag = tag_if_plain == Tag::any ? Tag::any : (g.group > 1 ? Tag::goihw : Tag::oihw);
  return memory::desc(dims, DT::s8, tag);
}

// A reorder between `user` and `inner` when their layouts differ (empty Call otherwise).
dnnl_glue::Call maybe_reorder(const memory& from, const memory& to) {
  if (from.get_desc() == to.get_desc()) return {};
  return dnnl_glue::Call(dnnl_glue::make_reorder(from, to),
                         {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}});
}

}  // namespace

QConvDnnl::QConvDnnl(const ConvGeometry& g, DType x, DType y, bool channels_last)
    : g_(g),
      x_dtype_(x),
      y_dtype_(y),
      channels_last_(channels_last),
      weights_(static_cast<size_t>(g.o * g.col_rows())) {
  dnnl_type(x);  // validates
  dnnl_type(y);
  want_.scales.resize(static_cast<size_t>(g.o));
}

void QConvDnnl::build(const Key& k) {
  using namespace dnnl;
  auto& eng = dnnl_glue::engine();
  const memory::dims src_dims{g_.n, g_.c, g_.h, g_.w}, dst_dims{g_.n, g_.o, g_.oh(), g_.ow()};
  const memory::desc src_plain(src_dims, dnnl_type(x_dtype_),
                               channels_last_ ? Tag::nhwc : plain_tag(g_.h, g_.w));
  const memory::desc dst_plain(dst_dims, dnnl_type(y_dtype_),
                               channels_last_ ? Tag::nhwc : plain_tag(g_.oh(), g_.ow()));
  const memory::desc wei_any = weights_desc(g_, Tag::any);
  const memory::desc bias({g_.o}, DT::s32, Tag::x);
  const memory::dims strides{g_.sh, g_.sw}, dil{g_.dh - 1, g_.dw - 1};
  const memory::dims pl{g_.pt, g_.pl}, pr{g_.pb, g_.pr};
  const auto alg = algorithm::convolution_direct;
  primitive_attr attr = dnnl_glue::user_scratchpad_attr();
  attr.set_output_scales(1 << 1, k.scales);
  if (k.src_zp) attr.set_zero_points(DNNL_ARG_SRC, 0, {DNNL_RUNTIME_S32_VAL});
  if (k.dst_zp) attr.set_zero_points(DNNL_ARG_DST, 0, {DNNL_RUNTIME_S32_VAL});
  post_ops po;
  if (std::isfinite(k.lo)) {
    if (std::isfinite(k.hi)) {
      po.append_eltwise(1.0f, algorithm::eltwise_clip, k.lo, k.hi);
    } else if (k.lo == 0.0f) {
      po.append_eltwise(1.0f, algorithm::eltwise_relu, 0.0f, 0.0f);
    } else {
      po.append_eltwise(1.0f, algorithm::eltwise_clip, k.lo, INFINITY);
    }
  }
  if (po.len() > 0) attr.set_post_ops(po);
  auto make_desc = [&](const memory::desc& src, const memory::desc& dst) {
    return g_.has_bias ? convolution_forward::desc(prop_kind::forward_inference, alg, src, wei_any,
                                                   bias, dst, strides, dil, pl, pr)
                       : convolution_forward::desc(prop_kind::forward_inference, alg, src, wei_any,
                                                   dst, strides, dil, pl, pr);
  };
  auto make_pd = [&](const memory::desc& src, const memory::desc& dst) {
    return convolution_forward::primitive_desc(make_desc(src, dst), attr, eng);
  };
  // Zero points: one s32 each, given at run time (a timed run needs them too).
  const memory::desc one_s32({1}, DT::s32, Tag::x);
  dnnl_glue::ExtraArgs timing_extra;
  if (k.src_zp) timing_extra.push_back({DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC, one_s32});
  if (k.dst_zp) timing_extra.push_back({DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_DST, one_s32});
  pd_ = make_pd(memory::desc(src_dims, dnnl_type(x_dtype_), Tag::any),
                memory::desc(dst_dims, dnnl_type(y_dtype_), Tag::any));
  // oneDNN's int8 convolutions choose NHWC on x86; should one choose otherwise, channels-last
  // data is better served by an NHWC implementation than by two reorders per call, unless only
  // the reference implementation takes NHWC (it is 100x slower; so is any int8 convolution
  // asked to write NCHW, which is why channels-last f32 results leave through a Transpose).
  // Small channels-last layers then take the fastest of oneDNN's NHWC implementations, timed.
  const bool timed =
      channels_last_ && g_.n * g_.macs_per_sample() <= dnnl_glue::kTimedChoiceMaxMacs;
  if (channels_last_ && (timed || pd_.src_desc() != src_plain || pd_.dst_desc() != dst_plain)) {
    try {
      auto nhwc = timed ? dnnl_glue::fastest_convolution(make_desc(src_plain, dst_plain), attr,
                                                         timing_extra)
                        : make_pd(src_plain, dst_plain);
      if (std::string(nhwc.impl_info_str()).rfind("ref", 0) != 0) pd_ = std::move(nhwc);
    } catch (const dnnl::error&) {
      // No NHWC implementation for this case: keep the chosen one and reorder.
    }
  }
  src_user_ = memory(src_plain, eng, nullptr);
  src_inner_ = pd_.src_desc() == src_plain ? src_user_ : memory(pd_.src_desc(), eng);
  src_reorder_ = maybe_reorder(src_user_, src_inner_);
  dst_user_ = memory(dst_plain, eng, nullptr);
  dst_inner_ = pd_.dst_desc() == dst_plain ? dst_user_ : memory(pd_.dst_desc(), eng);
  dst_reorder_ = maybe_reorder(dst_inner_, dst_user_);
  wei_user_ = memory(weights_desc(g_, Tag::undef), eng, const_cast<int8_t*>(weights_.copy()));
  wei_inner_ = memory(pd_.weights_desc(), eng);
  wei_reorder_ = dnnl_glue::Call(dnnl_glue::make_reorder(wei_user_, wei_inner_),
                                 {{DNNL_ARG_FROM, wei_user_}, {DNNL_ARG_TO, wei_inner_}});
  zp_src_ = memory(one_s32, eng);
  zp_dst_ = memory(one_s32, eng);
  scratch_ = memory(pd_.scratchpad_desc(), eng);
  std::vector<std::pair<int, memory>> args{{DNNL_ARG_SRC, src_inner_},
                                           {DNNL_ARG_WEIGHTS, wei_inner_},
                                           {DNNL_ARG_DST, dst_inner_},
                                           {DNNL_ARG_SCRATCHPAD, scratch_}};
  if (g_.has_bias) {
    bias_ = memory(bias, eng, nullptr);
    args.push_back({DNNL_ARG_BIAS, bias_});
  }
  if (k.src_zp) args.push_back({DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC, zp_src_});
  if (k.dst_zp) args.push_back({DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_DST, zp_dst_});
  conv_ = dnnl_glue::Call(convolution_forward(pd_), args);
  key_ = k;
  built_ = true;
  packed_ = false;
}

void QConvDnnl::pack_weights() {
  wei_reorder_();
  packed_ = true;
}

void QConvDnnl::forward(const QLinearParams& p, const void* x, const int8_t* w, void* y) {
  for (int64_t o = 0; o < g_.o; ++o) want_.scales[o] = p.multiplier(o);
  want_.lo = p.lo();
  want_.hi = p.hi();
  want_.src_zp = p.x_zp != 0;
  want_.dst_zp = p.out != DType::kF32 && p.y_zp != 0;
  if (!built_ || !(want_ == key_)) build(want_);
  // Packed again when the weights change, and for a new primitive (build() clears packed_).
  if (weights_.changed(w) || !packed_) pack_weights();
  if (key_.src_zp) *static_cast<int32_t*>(zp_src_.get_data_handle()) = p.x_zp;
  if (key_.dst_zp) *static_cast<int32_t*>(zp_dst_.get_data_handle()) = p.y_zp;
  src_user_.set_data_handle(const_cast<void*>(x));
  dst_user_.set_data_handle(y);
  if (g_.has_bias) bias_.set_data_handle(const_cast<int32_t*>(p.bias));
  if (src_reorder_) src_reorder_();
  conv_();
  if (dst_reorder_) dst_reorder_();
}

std::string QConvDnnl::impl() const { return built_ ? pd_.impl_info_str() : ""; }

}  // namespace minnow::kernels
