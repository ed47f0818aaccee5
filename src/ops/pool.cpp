// Pooling: MaxPool, AvgPool (attrs kernel, strides, pads [t,l,b,r], ceil_mode; AvgPool also
// count_include_pad) and GlobalAvgPool ([N,C,H,W] -> [N,C,1,1]). PyTorch semantics.
// MaxPool also takes u8/i8 data (output the same dtype, no gradient): max commutes with the
// monotone quantization map, so a quantized graph pools its integers directly, with the
// input's scale and zero point.
#include <memory>
#include <string>

#include "kernels/pool_fast.h"
#include "kernels/pool_geometry.h"
#include "kernels/pool_reference.h"
#include "ops/op_defs.h"
#include "ops/op_util.h"

namespace minnow::ops {
namespace {

using kernels::PoolGeometry;

bool flag_attr(const Node& n, const char* key) {
  int64_t v = n.attrs.get_int(key, 0);
  if (v != 0 && v != 1) {
    fail(n, std::string("attribute '") + key + "' is " + std::to_string(v) + ", expected 0 or 1");
  }
  return v == 1;
}

bool is_int8(DType t) { return t == DType::kU8 || t == DType::kI8; }

// Input [N,C,H,W] with concrete C, H, W (N may be kDynamic).
const ValueInfo& pool_input(const Node& n, const InputInfos& in) {
  const ValueInfo& x = input(n, in, 0);
  require_rank(n, x, 4);
  if (n.op != OpKind::kMaxPool || !is_int8(x.dtype)) require_float(n, x);
  for (int d = 1; d < 4; ++d) {
    if (x.shape[d] <= 0) {
      fail(n, "input '" + x.name + "' has shape " + shape_str(x.shape) +
                  ": channel and spatial dims must be concrete and positive");
    }
  }
  return x;
}

PoolGeometry geometry(const Node& n, const InputInfos& in) {
  const ValueInfo& x = pool_input(n, in);
  if (!n.attrs.has("kernel")) fail(n, "attribute 'kernel' [kh,kw] is required");
  std::vector<int64_t> k = ints_attr(n, "kernel", {}, 2, 1);
  std::vector<int64_t> s = ints_attr(n, "strides", k, 2, 1);
  std::vector<int64_t> p = ints_attr(n, "pads", {0, 0, 0, 0}, 4, 0);
  PoolGeometry g;
  g.n = x.shape[0];
  g.c = x.shape[1];
  g.h = x.shape[2];
  g.w = x.shape[3];
  g.kh = k[0];
  g.kw = k[1];
  g.sh = s[0];
  g.sw = s[1];
  g.pt = p[0];
  g.pl = p[1];
  g.pb = p[2];
  g.pr = p[3];
  g.ceil_mode = flag_attr(n, "ceil_mode");
  if (n.op == OpKind::kAvgPool) g.count_include_pad = flag_attr(n, "count_include_pad");
  // A pad as large as the kernel would allow windows that see only padding.
  if (g.pt >= g.kh || g.pb >= g.kh || g.pl >= g.kw || g.pr >= g.kw) {
    fail(n, "pads [" + std::to_string(g.pt) + "," + std::to_string(g.pl) + "," +
                std::to_string(g.pb) + "," + std::to_string(g.pr) +
                "] must be smaller than the kernel " + std::to_string(g.kh) + "x" +
                std::to_string(g.kw));
  }
  if (g.oh() < 1 || g.ow() < 1) {
    fail(n, "kernel " + std::to_string(g.kh) + "x" + std::to_string(g.kw) +
                " is larger than the padded input " + std::to_string(g.h + g.pt + g.pb) + "x" +
                std::to_string(g.w + g.pl + g.pr));
  }
  return g;
}

PoolGeometry concrete_geometry(const Node& n, const InputInfos& in) {
  PoolGeometry g = geometry(n, in);
  if (g.n == kDynamic) fail(n, "kernel needs a concrete batch size");
  return g;
}

void infer_pool(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  PoolGeometry g = geometry(n, in);
  out[0].dtype = in[0]->dtype;
  out[0].shape = {in[0]->shape[0], g.c, g.oh(), g.ow()};
}

void check_input(const PoolGeometry& g, const Tensor& x, const char* op) {
  if (x.rank() != 4 || x.dim(0) != g.n || x.dim(1) != g.c || x.dim(2) != g.h || x.dim(3) != g.w) {
    throw Error(std::string(op) + " kernel built for input [" + std::to_string(g.n) + "," +
                std::to_string(g.c) + "," + std::to_string(g.h) + "," + std::to_string(g.w) +
                "] got " + shape_str(x.shape()));
  }
}

// grad_out null means a zero gradient; grad_in null means not wanted.
bool needs_backward(Tensors grad_out, Tensors grad_in) {
  if (!grad_in[0]) return false;
  if (!grad_out[0]) {
    grad_in[0]->fill_zero();
    return false;
  }
  return true;
}

class MaxPoolReference : public Kernel {
 public:
  explicit MaxPoolReference(const PoolGeometry& g) : g_(g) {}
  void forward(Tensors in, Tensors out, RunContext&) override {
    check_input(g_, *in[0], "MaxPool");
    if (in[0]->dtype() == DType::kU8) return forward_int<uint8_t>(*in[0], *out[0]);
    if (in[0]->dtype() == DType::kI8) return forward_int<int8_t>(*in[0], *out[0]);
    dispatch_float(in[0]->dtype(), [&]<class T>() {
      kernels::max_pool_forward_reference<T>(g_, in[0]->data<T>(), out[0]->data<T>());
    });
  }
  void backward(Tensors in, Tensors, Tensors grad_out, Tensors grad_in, RunContext&) override {
    if (is_int8(in[0]->dtype()))
      throw Error("MaxPool on " + std::string(dtype_name(in[0]->dtype())) +
                  " data has no gradient");
    if (!needs_backward(grad_out, grad_in)) return;
    dispatch_float(in[0]->dtype(), [&]<class T>() {
      kernels::max_pool_backward_reference<T>(g_, in[0]->data<T>(), grad_out[0]->data<T>(),
                                              grad_in[0]->data<T>());
    });
  }

 private:
  template <class T>
  void forward_int(const Tensor& x, Tensor& y) const {
    kernels::max_pool_forward_reference<T>(g_, static_cast<const T*>(x.raw()),
                                           static_cast<T*>(y.raw()));
  }

  PoolGeometry g_;
};

class AvgPoolReference : public Kernel {
 public:
  explicit AvgPoolReference(const PoolGeometry& g) : g_(g) {}
  void forward(Tensors in, Tensors out, RunContext&) override {
    check_input(g_, *in[0], "AvgPool");
    dispatch_float(in[0]->dtype(), [&]<class T>() {
      kernels::avg_pool_forward_reference<T>(g_, in[0]->data<T>(), out[0]->data<T>());
    });
  }
  void backward(Tensors in, Tensors, Tensors grad_out, Tensors grad_in, RunContext&) override {
    if (!needs_backward(grad_out, grad_in)) return;
    dispatch_float(in[0]->dtype(), [&]<class T>() {
      kernels::avg_pool_backward_reference<T>(g_, grad_out[0]->data<T>(), grad_in[0]->data<T>());
    });
  }

 private:
  PoolGeometry g_;
};

class MaxPoolFast : public Kernel {
 public:
  explicit MaxPoolFast(const PoolGeometry& g) : g_(g), impl_(g) {}
  void forward(Tensors in, Tensors out, RunContext& ctx) override {
    check_input(g_, *in[0], "MaxPool");
    impl_.forward(in[0]->f32(), out[0]->f32(), ctx.training);
  }
  void backward(Tensors in, Tensors, Tensors grad_out, Tensors grad_in, RunContext&) override {
    if (!needs_backward(grad_out, grad_in)) return;
    impl_.backward(in[0]->f32(), grad_out[0]->f32(), grad_in[0]->f32());
  }

 private:
  PoolGeometry g_;
  kernels::MaxPoolFast impl_;
};

class AvgPoolFast : public Kernel {
 public:
  explicit AvgPoolFast(const PoolGeometry& g) : g_(g), impl_(g) {}
  void forward(Tensors in, Tensors out, RunContext&) override {
    check_input(g_, *in[0], "AvgPool");
    impl_.forward(in[0]->f32(), out[0]->f32());
  }
  void backward(Tensors, Tensors, Tensors grad_out, Tensors grad_in, RunContext&) override {
    if (!needs_backward(grad_out, grad_in)) return;
    impl_.backward(grad_out[0]->f32(), grad_in[0]->f32());
  }

 private:
  PoolGeometry g_;
  kernels::AvgPoolFast impl_;
};

std::unique_ptr<Kernel> make_max_reference(const Node& n, const InputInfos& in,
                                           const std::vector<ValueInfo>&) {
  return std::make_unique<MaxPoolReference>(concrete_geometry(n, in));
}
std::unique_ptr<Kernel> make_max_fast(const Node& n, const InputInfos& in,
                                      const std::vector<ValueInfo>&) {
  // The integer path is the reference loop: the fast kernel (oneDNN) is built for f32.
  if (is_int8(input(n, in, 0).dtype))
    return std::make_unique<MaxPoolReference>(concrete_geometry(n, in));
  return std::make_unique<MaxPoolFast>(concrete_geometry(n, in));
}
std::unique_ptr<Kernel> make_avg_reference(const Node& n, const InputInfos& in,
                                           const std::vector<ValueInfo>&) {
  return std::make_unique<AvgPoolReference>(concrete_geometry(n, in));
}
std::unique_ptr<Kernel> make_avg_fast(const Node& n, const InputInfos& in,
                                      const std::vector<ValueInfo>&) {
  return std::make_unique<AvgPoolFast>(concrete_geometry(n, in));
}

// GlobalAvgPool: the mean of each [H,W] plane. With attribute channels_last = 1 (set by the
// inference pass passes/channels_last.h; no gradient) x is [N,H,W,C] and y [N,1,1,C].
void infer_global(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  const ValueInfo& x = pool_input(n, in);
  out[0].dtype = x.dtype;
  out[0].shape = channels_last_attr(n) ? Shape{x.shape[0], 1, 1, x.shape[3]}
                                       : Shape{x.shape[0], x.shape[1], 1, 1};
}

class GlobalAvgPoolKernel : public Kernel {
 public:
  GlobalAvgPoolKernel(Shape shape, bool fast, bool nhwc)
      : shape_(std::move(shape)), fast_(fast), nhwc_(nhwc) {}

  void forward(Tensors in, Tensors out, RunContext&) override {
    check(*in[0]);
    if (nhwc_) return forward_nhwc(*in[0], *out[0]);
    const int64_t planes = shape_[0] * shape_[1], hw = shape_[2] * shape_[3];
    if (fast_) return kernels::global_avg_pool_forward(in[0]->f32(), out[0]->f32(), planes, hw);
    dispatch_float(in[0]->dtype(), [&]<class T>() {
      const T* x = in[0]->data<T>();
      T* y = out[0]->data<T>();
      for (int64_t p = 0; p < planes; ++p) {
        T sum = 0;
        for (int64_t i = 0; i < hw; ++i) sum += x[p * hw + i];
        y[p] = sum / static_cast<T>(hw);
      }
    });
  }

  void backward(Tensors in, Tensors, Tensors grad_out, Tensors grad_in, RunContext&) override {
    if (!needs_backward(grad_out, grad_in)) return;
    if (nhwc_) throw Error("a channels_last GlobalAvgPool has no gradient (inference only)");
    const int64_t planes = shape_[0] * shape_[1], hw = shape_[2] * shape_[3];
    if (fast_) {
      return kernels::global_avg_pool_backward(grad_out[0]->f32(), grad_in[0]->f32(), planes, hw);
    }
    dispatch_float(in[0]->dtype(), [&]<class T>() {
      const T* dy = grad_out[0]->data<T>();
      T* dx = grad_in[0]->data<T>();
      for (int64_t p = 0; p < planes; ++p) {
        for (int64_t i = 0; i < hw; ++i) dx[p * hw + i] = dy[p] / static_cast<T>(hw);
      }
    });
  }

 private:
  void check(const Tensor& x) const {
    if (x.shape() != shape_) {
      throw Error("GlobalAvgPool kernel built for input " + shape_str(shape_) + " got " +
                  shape_str(x.shape()));
    }
  }
  // Sums whole rows of C channels (the inner loop vectorizes over channels).
  void forward_nhwc(const Tensor& in, Tensor& out) const {
    const int64_t hw = shape_[1] * shape_[2], c = shape_[3];
    if (fast_ && in.dtype() == DType::kF32) {
      return kernels::global_avg_pool_nhwc_forward(in.f32(), out.f32(), shape_[0], hw, c);
    }
    dispatch_float(in.dtype(), [&]<class T>() {
      const T* x = in.data<T>();
      T* y = out.data<T>();
      for (int64_t s = 0; s < shape_[0]; ++s) {
        T* ys = y + s * c;
        std::fill(ys, ys + c, T(0));
        for (int64_t p = 0; p < hw; ++p) {
          const T* row = x + (s * hw + p) * c;
          for (int64_t k = 0; k < c; ++k) ys[k] += row[k];
        }
        for (int64_t k = 0; k < c; ++k) ys[k] /= static_cast<T>(hw);
      }
    });
  }

  Shape shape_;
  bool fast_, nhwc_;
};

Shape concrete_shape(const Node& n, const InputInfos& in) {
  const ValueInfo& x = pool_input(n, in);
  if (x.shape[0] == kDynamic) fail(n, "kernel needs a concrete batch size");
  return x.shape;
}

std::unique_ptr<Kernel> make_global_reference(const Node& n, const InputInfos& in,
                                              const std::vector<ValueInfo>&) {
  return std::make_unique<GlobalAvgPoolKernel>(concrete_shape(n, in), false, channels_last_attr(n));
}
std::unique_ptr<Kernel> make_global_fast(const Node& n, const InputInfos& in,
                                         const std::vector<ValueInfo>&) {
  return std::make_unique<GlobalAvgPoolKernel>(concrete_shape(n, in), true, channels_last_attr(n));
}

}  // namespace

const OpDef kMaxPoolDef = {OpKind::kMaxPool,   "MaxPool",     1,    1,      1, infer_pool,
                           make_max_reference, make_max_fast, true, nullptr};
const OpDef kAvgPoolDef = {OpKind::kAvgPool,   "AvgPool",     1,    1,      1, infer_pool,
                           make_avg_reference, make_avg_fast, true, nullptr};
const OpDef kGlobalAvgPoolDef = {
    OpKind::kGlobalAvgPool, "GlobalAvgPool",  1,    1,      1, infer_global,
    make_global_reference,  make_global_fast, true, nullptr};

}  // namespace minnow::ops
