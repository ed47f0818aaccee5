#include "kernels/conv_dnnl.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "kernels/dnnl_glue.h"

namespace minnow::kernels {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;
constexpr auto kF32 = memory::data_type::f32;

struct Descs {
  memory::desc src, wei, bias, dst;
};

Descs make_descs(const ConvGeometry& g, bool any) {
  memory::dims wdims = g.group > 1 ? memory::dims{g.group, g.og(), g.cg(), g.kh, g.kw}
                                   : memory::dims{g.o, g.c, g.kh, g.kw};
  Tag wtag = any ? Tag::any : (g.group > 1 ? Tag::goihw : Tag::oihw);
  Tag atag = any ? Tag::any : Tag::nchw;
  Descs d;
  d.src = memory::desc({g.n, g.c, g.h, g.w}, kF32, atag);
  d.dst = memory::desc({g.n, g.o, g.oh(), g.ow()}, kF32, atag);
  d.wei = memory::desc(wdims, kF32, wtag);
  d.bias = g.has_bias ? memory::desc({g.o}, kF32, Tag::x) : memory::desc();
  return d;
}

memory::desc plain_weights(const ConvGeometry& g) {
  return g.group > 1 ? memory::desc({g.group, g.og(), g.cg(), g.kh, g.kw}, kF32, Tag::goihw)
                     : memory::desc({g.o, g.c, g.kh, g.kw}, kF32, Tag::oihw);
}

}  // namespace

void ConvDnnl::Port::init(const memory::desc& plain, const memory::desc& want, bool to_inner) {
  auto& eng = dnnl_glue::engine();
  user = memory(plain, eng, nullptr);
  if (want == plain) {
    inner = user;
    return;
  }
  inner = memory(want, eng);
  reorder = to_inner ? dnnl_glue::Call(dnnl_glue::make_reorder(user, inner),
                                       {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, inner}})
                     : dnnl_glue::Call(dnnl_glue::make_reorder(inner, user),
                                       {{DNNL_ARG_FROM, inner}, {DNNL_ARG_TO, user}});
}

memory& ConvDnnl::Port::in(const void* p) {
  user.set_data_handle(const_cast<void*>(p));
  if (reorder) reorder();
  return inner;
}

memory& ConvDnnl::Port::out(void* p) {
  user.set_data_handle(p);
  return inner;
}

void ConvDnnl::Port::out_done() {
  if (reorder) reorder();
}

ConvDnnl::ConvDnnl(const ConvGeometry& g, Layout layout) : g_(g), layout_(layout) {
  using namespace dnnl;
  auto& eng = dnnl_glue::engine();
  const bool any = layout == Layout::kAny;
  Descs d = make_descs(g, any);
  memory::dims strides{g.sh, g.sw}, dil{g.dh - 1, g.dw - 1}, pl{g.pt, g.pl}, pr{g.pb, g.pr};
  primitive_attr attr;
  attr.set_scratchpad_mode(scratchpad_mode::user);
  const auto alg = algorithm::convolution_direct;

  auto fd = g.has_bias ? convolution_forward::desc(prop_kind::forward_training, alg, d.src, d.wei,
                                                   d.bias, d.dst, strides, dil, pl, pr)
                       : convolution_forward::desc(prop_kind::forward_training, alg, d.src, d.wei,
                                                   d.dst, strides, dil, pl, pr);
  fwd_pd_ = convolution_forward::primitive_desc(fd, attr, eng);
  convolution_backward_data::desc bdd(alg, d.src, d.wei, d.dst, strides, dil, pl, pr);
  bwd_data_pd_ = convolution_backward_data::primitive_desc(bdd, attr, eng, fwd_pd_);
  auto bwd = g.has_bias ? convolution_backward_weights::desc(alg, d.src, d.wei, d.bias, d.dst,
                                                             strides, dil, pl, pr)
                        : convolution_backward_weights::desc(alg, d.src, d.wei, d.dst, strides, dil,
                                                             pl, pr);
  bwd_weights_pd_ = convolution_backward_weights::primitive_desc(bwd, attr, eng, fwd_pd_);
  fwd_ = convolution_forward(fwd_pd_);
  bwd_data_ = convolution_backward_data(bwd_data_pd_);
  bwd_weights_ = convolution_backward_weights(bwd_weights_pd_);

  const memory::desc src = memory::desc({g.n, g.c, g.h, g.w}, kF32, Tag::nchw);
  const memory::desc dst = memory::desc({g.n, g.o, g.oh(), g.ow()}, kF32, Tag::nchw);
  const memory::desc wei = plain_weights(g);
  fwd_src_.init(src, fwd_pd_.src_desc(), true);
  fwd_wei_.init(wei, fwd_pd_.weights_desc(), true);
  fwd_dst_.init(dst, fwd_pd_.dst_desc(), false);
  if (g.has_bias) {
    const memory::desc bias({g.o}, kF32, Tag::x);
    bias_.init(bias, fwd_pd_.bias_desc(), true);
    bw_bias_.init(bias, bwd_weights_pd_.diff_bias_desc(), false);
    unused_bias_grad_ = memory(bwd_weights_pd_.diff_bias_desc(), eng);
  }
  bd_dst_.init(dst, bwd_data_pd_.diff_dst_desc(), true);
  bd_wei_.init(wei, bwd_data_pd_.weights_desc(), true);
  bd_src_.init(src, bwd_data_pd_.diff_src_desc(), false);
  reuse_fwd_src_ = fwd_src_.reorder && bwd_weights_pd_.src_desc() == fwd_pd_.src_desc();
  bw_src_.init(src, bwd_weights_pd_.src_desc(), true);
  bw_dst_.init(dst, bwd_weights_pd_.diff_dst_desc(), true);
  bw_wei_.init(wei, bwd_weights_pd_.diff_weights_desc(), false);

  size_t scratch =
      std::max({fwd_pd_.scratchpad_desc().get_size(), bwd_data_pd_.scratchpad_desc().get_size(),
                bwd_weights_pd_.scratchpad_desc().get_size()});
  scratch_ =
      memory(memory::desc({static_cast<memory::dim>(scratch)}, memory::data_type::u8, Tag::x), eng);

  std::vector<std::pair<int, memory>> fa{{DNNL_ARG_SRC, fwd_src_.inner},
                                         {DNNL_ARG_WEIGHTS, fwd_wei_.inner},
                                         {DNNL_ARG_DST, fwd_dst_.inner},
                                         {DNNL_ARG_SCRATCHPAD, scratch_}};
  if (g.has_bias) fa.push_back({DNNL_ARG_BIAS, bias_.inner});
  fwd_call_ = dnnl_glue::Call(fwd_, fa);
  bwd_data_call_ = dnnl_glue::Call(bwd_data_, {{DNNL_ARG_DIFF_DST, bd_dst_.inner},
                                               {DNNL_ARG_WEIGHTS, bd_wei_.inner},
                                               {DNNL_ARG_DIFF_SRC, bd_src_.inner},
                                               {DNNL_ARG_SCRATCHPAD, scratch_}});
  std::vector<std::pair<int, memory>> ba{
      {DNNL_ARG_SRC, reuse_fwd_src_ ? fwd_src_.inner : bw_src_.inner},
      {DNNL_ARG_DIFF_DST, bw_dst_.inner},
      {DNNL_ARG_DIFF_WEIGHTS, bw_wei_.inner},
      {DNNL_ARG_SCRATCHPAD, scratch_}};
  if (g.has_bias) {
    std::vector<std::pair<int, memory>> unused = ba;
    unused.push_back({DNNL_ARG_DIFF_BIAS, unused_bias_grad_});
    bwd_weights_no_db_call_ = dnnl_glue::Call(bwd_weights_, unused);
    ba.push_back({DNNL_ARG_DIFF_BIAS, bw_bias_.inner});
  }
  bwd_weights_call_ = dnnl_glue::Call(bwd_weights_, ba);
}

void ConvDnnl::forward(const float* x, const float* w, const float* b, float* y, bool training) {
  fwd_src_.in(x);
  fwd_wei_.in(w);
  if (g_.has_bias) bias_.in(b);
  fwd_dst_.out(y);
  fwd_call_();
  fwd_dst_.out_done();
  fwd_src_of_ = training ? x : nullptr;
  dnnl_glue::stream().wait();
}

void ConvDnnl::backward_data(const float* dy, const float* w, float* dx) {
  bd_dst_.in(dy);
  bd_wei_.in(w);
  bd_src_.out(dx);
  bwd_data_call_();
  bd_src_.out_done();
  dnnl_glue::stream().wait();
}

void ConvDnnl::backward_weights(const float* x, const float* dy, float* dw, float* db) {
  if (reuse_fwd_src_ && fwd_src_of_ != x) {
    fwd_src_.in(x);  // same layout as forward's; refresh the copy
    fwd_src_of_ = x;
  } else if (!reuse_fwd_src_) {
    bw_src_.in(x);
  }
  bw_dst_.in(dy);
  bw_wei_.out(dw);
  if (g_.has_bias && db) bw_bias_.out(db);
  if (g_.has_bias && !db) {
    bwd_weights_no_db_call_();
  } else {
    bwd_weights_call_();
  }
  bw_wei_.out_done();
  if (g_.has_bias && db) bw_bias_.out_done();
  dnnl_glue::stream().wait();
}

std::string ConvDnnl::name() const {
  return std::string(layout_ == Layout::kAny ? "dnnl-any/" : "dnnl-plain/") + forward_impl();
}

const char* ConvDnnl::forward_impl() const { return fwd_pd_.impl_info_str(); }
const char* ConvDnnl::backward_data_impl() const { return bwd_data_pd_.impl_info_str(); }
const char* ConvDnnl::backward_weights_impl() const { return bwd_weights_pd_.impl_info_str(); }

}  // namespace minnow::kernels
