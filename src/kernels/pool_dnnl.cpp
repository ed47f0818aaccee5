#include "kernels/pool_dnnl.h"

#include <utility>
#include <vector>

#include "minnow/error.h"

namespace minnow::kernels {

PoolDnnl::PoolDnnl(const PoolGeometry& g, bool max) : max_(max) {
  using namespace dnnl;
  using Tag = memory::format_tag;
  auto& eng = dnnl_glue::engine();
  const int64_t oh = g.oh(), ow = g.ow();
  // Ceil mode is oneDNN's plain pooling with a larger trailing padding.
  const int64_t pb = (oh - 1) * g.sh + g.kh - g.h - g.pt;
  const int64_t pr = (ow - 1) * g.sw + g.kw - g.w - g.pl;
  if (!max && g.count_include_pad && (pb > g.pb || pr > g.pr)) {
    throw Error("oneDNN pooling cannot express count_include_pad with ceil-mode windows");
  }
  memory::desc src({g.n, g.c, g.h, g.w}, memory::data_type::f32, Tag::nchw);
  memory::desc dst({g.n, g.c, oh, ow}, memory::data_type::f32, Tag::nchw);
  const algorithm alg = max ? algorithm::pooling_max
                            : (g.count_include_pad ? algorithm::pooling_avg_include_padding
                                                   : algorithm::pooling_avg_exclude_padding);
  memory::dims strides{g.sh, g.sw}, kernel{g.kh, g.kw}, pad_l{g.pt, g.pl}, pad_r{pb, pr};
  pooling_forward::desc fd(prop_kind::forward_training, alg, src, dst, strides, kernel, pad_l,
                           pad_r);
  const primitive_attr attr = dnnl_glue::user_scratchpad_attr();
  pooling_forward::primitive_desc fpd(fd, attr, eng);
  pooling_backward::desc bd(alg, src, dst, strides, kernel, pad_l, pad_r);
  pooling_backward::primitive_desc bpd(bd, attr, eng, fpd);
  fwd_ = pooling_forward(fpd);
  bwd_ = pooling_backward(bpd);
  src_ = memory(src, eng, nullptr);
  dst_ = memory(dst, eng, nullptr);
  diff_src_ = memory(src, eng, nullptr);
  diff_dst_ = memory(dst, eng, nullptr);
  std::vector<std::pair<int, memory>> fa{{DNNL_ARG_SRC, src_}, {DNNL_ARG_DST, dst_}};
  std::vector<std::pair<int, memory>> ba{{DNNL_ARG_DIFF_DST, diff_dst_},
                                         {DNNL_ARG_DIFF_SRC, diff_src_}};
  if (max) {
    workspace_ = memory(fpd.workspace_desc(), eng);
    fa.push_back({DNNL_ARG_WORKSPACE, workspace_});
    ba.push_back({DNNL_ARG_WORKSPACE, workspace_});
  }
  fwd_call_ = dnnl_glue::Call(fwd_, fa);
  bwd_call_ = dnnl_glue::Call(bwd_, ba);
}

void PoolDnnl::forward(const float* x, float* y) {
  src_.set_data_handle(const_cast<float*>(x));
  dst_.set_data_handle(y);
  fwd_call_();
}

void PoolDnnl::backward(const float* dy, float* dx) {
  diff_dst_.set_data_handle(const_cast<float*>(dy));
  diff_src_.set_data_handle(dx);
  bwd_call_();
}

}  // namespace minnow::kernels
