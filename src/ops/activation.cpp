// Activations: y = f(x) elementwise, dx = f'(x) * dy. Kinks follow PyTorch's backward formulas so
// that gradients match it bit for bit in intent (e.g. Relu6 passes gradient only for 0 < x < 6).
//
// Reference kernels are the UnaryKernel template (elementwise.h) with one small functor per op;
// the piecewise-linear ones vectorize as they are. Sigmoid, Tanh and Gelu spend their time in
// libm (exp/tanh/erf are not vectorized without -ffast-math), so they also get a oneDNN eltwise
// fast kernel, whose JIT code evaluates these functions with SIMD polynomials.
#include <cmath>
#include <numbers>
#include <string>

#include "kernels/dnnl_glue.h"
#include "ops/elementwise.h"
#include "ops/op_defs.h"
#include "ops/op_util.h"

namespace minnow::ops {
namespace {

struct ReluFn {
  // `x < 0 ? 0 : x` rather than max(x, 0): NaN propagates, as in PyTorch.
  template <class T>
  T forward(T x) const {
    return x < T(0) ? T(0) : x;
  }
  template <class T>
  T backward(T x, T, T dy) const {
    return x > T(0) ? dy : T(0);
  }
};

struct Relu6Fn {
  template <class T>
  T forward(T x) const {
    T r = x < T(0) ? T(0) : x;
    return r > T(6) ? T(6) : r;
  }
  template <class T>
  T backward(T x, T, T dy) const {
    return (x > T(0) && x < T(6)) ? dy : T(0);
  }
};

struct LeakyReluFn {
  double alpha = 0.01;
  template <class T>
  T forward(T x) const {
    return x > T(0) ? x : T(alpha) * x;
  }
  template <class T>
  T backward(T x, T, T dy) const {
    return x > T(0) ? dy : T(alpha) * dy;
  }
};

struct SigmoidFn {
  template <class T>
  T forward(T x) const {
    return T(1) / (T(1) + std::exp(-x));
  }
  template <class T>
  T backward(T, T y, T dy) const {
    return dy * y * (T(1) - y);
  }
};

struct TanhFn {
  template <class T>
  T forward(T x) const {
    return std::tanh(x);
  }
  template <class T>
  T backward(T, T y, T dy) const {
    return dy * (T(1) - y * y);
  }
};

// 0.5 x (1 + erf(x / sqrt 2)); derivative Phi(x) + x phi(x).
struct GeluErfFn {
  template <class T>
  T forward(T x) const {
    return T(0.5) * x * (T(1) + std::erf(x * T(std::numbers::sqrt2 / 2)));
  }
  template <class T>
  T backward(T x, T, T dy) const {
    const T cdf = T(0.5) * (T(1) + std::erf(x * T(std::numbers::sqrt2 / 2)));
    const T pdf = std::exp(T(-0.5) * x * x) * T(std::numbers::inv_sqrtpi / std::numbers::sqrt2);
    return dy * (cdf + x * pdf);
  }
};

// PyTorch's approximate="tanh": 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
struct GeluTanhFn {
  static constexpr double kBeta = std::numbers::sqrt2 * std::numbers::inv_sqrtpi;  // sqrt(2/pi)
  static constexpr double kKappa = 0.044715;
  template <class T>
  T forward(T x) const {
    const T u = T(kBeta) * (x + T(kKappa) * x * x * x);
    return T(0.5) * x * (T(1) + std::tanh(u));
  }
  template <class T>
  T backward(T x, T, T dy) const {
    const T u = T(kBeta) * (x + T(kKappa) * x * x * x);
    const T t = std::tanh(u);
    const T du = T(kBeta) * (T(1) + T(3 * kKappa) * x * x);
    return dy * (T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * du);
  }
};

// x * relu6(x + 3) / 6; backward as PyTorch: 0 below -3, x/3 + 1/2 on [-3, 3], 1 above.
struct HardSwishFn {
  template <class T>
  T forward(T x) const {
    T r = x + T(3);
    r = r < T(0) ? T(0) : r;
    r = r > T(6) ? T(6) : r;
    return x * r * T(1.0 / 6.0);
  }
  template <class T>
  T backward(T x, T, T dy) const {
    T d = x * T(1.0 / 3.0) + T(0.5);
    d = x < T(-3) ? T(0) : d;
    d = x > T(3) ? T(1) : d;
    return dy * d;
  }
};

// max(0, min(1, alpha x + beta)); gradient alpha strictly inside the linear part (PyTorch).
struct HardSigmoidFn {
  double alpha = 1.0 / 6.0;
  double beta = 0.5;
  template <class T>
  T forward(T x) const {
    T v = T(alpha) * x + T(beta);
    v = v < T(0) ? T(0) : v;
    return v > T(1) ? T(1) : v;
  }
  template <class T>
  T backward(T x, T, T dy) const {
    const T v = T(alpha) * x + T(beta);
    return (v > T(0) && v < T(1)) ? T(alpha) * dy : T(0);
  }
};

double leaky_alpha(const Node& n) {
  double a = n.attrs.get_float("alpha", 0.01);
  if (!std::isfinite(a)) fail(n, "attribute alpha must be finite, got " + std::to_string(a));
  return a;
}

HardSigmoidFn hard_sigmoid_fn(const Node& n) {
  HardSigmoidFn fn;
  fn.alpha = n.attrs.get_float("alpha", 1.0 / 6.0);
  fn.beta = n.attrs.get_float("beta", 0.5);
  if (!std::isfinite(fn.alpha) || !std::isfinite(fn.beta)) {
    fail(n, "attributes alpha and beta must be finite");
  }
  return fn;
}

bool gelu_is_tanh(const Node& n) {
  std::string mode = n.attrs.get_string("approximate", "none");
  if (mode == "none") return false;
  if (mode == "tanh") return true;
  fail(n, "attribute approximate must be \"none\" or \"tanh\", got \"" + mode + "\"");
}

void infer_unary(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  infer_same_as_input(n, in, out);
}

void infer_leaky_relu(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  leaky_alpha(n);
  infer_same_as_input(n, in, out);
}

void infer_hard_sigmoid(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  hard_sigmoid_fn(n);
  infer_same_as_input(n, in, out);
}

void infer_gelu(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  gelu_is_tanh(n);
  infer_same_as_input(n, in, out);
}

// Reference kernels: one factory per functor.
template <class Fn>
std::unique_ptr<Kernel> make_simple(const Node& n, const InputInfos& in,
                                    const std::vector<ValueInfo>&) {
  return make_unary_kernel(input(n, in, 0).dtype, Fn{});
}

std::unique_ptr<Kernel> make_leaky_relu(const Node& n, const InputInfos& in,
                                        const std::vector<ValueInfo>&) {
  return make_unary_kernel(input(n, in, 0).dtype, LeakyReluFn{leaky_alpha(n)});
}

std::unique_ptr<Kernel> make_hard_sigmoid(const Node& n, const InputInfos& in,
                                          const std::vector<ValueInfo>&) {
  return make_unary_kernel(input(n, in, 0).dtype, hard_sigmoid_fn(n));
}

std::unique_ptr<Kernel> make_gelu(const Node& n, const InputInfos& in,
                                  const std::vector<ValueInfo>&) {
  DType t = input(n, in, 0).dtype;
  if (gelu_is_tanh(n)) return make_unary_kernel(t, GeluTanhFn{});
  return make_unary_kernel(t, GeluErfFn{});
}

// oneDNN eltwise over the tensor viewed as 1-d (the op is elementwise, so layout is irrelevant).
// Primitives are built once here; forward/backward only bind memory and execute.
class DnnlEltwiseKernel final : public Kernel {
 public:
  DnnlEltwiseKernel(dnnl::algorithm alg, int64_t n, float alpha = 0.0f, float beta = 0.0f)
      : md_(dnnl_glue::plain_desc({n})), uses_dst_(uses_dst(alg)) {
    auto& eng = dnnl_glue::engine();
    for (dnnl::memory& m : mems_) m = dnnl::memory(md_, eng, DNNL_MEMORY_NONE);
    dnnl::eltwise_forward::primitive_desc fwd_pd(
        dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_training, alg, md_, alpha, beta), eng);
    dnnl::eltwise_backward::primitive_desc bwd_pd(
        dnnl::eltwise_backward::desc(alg, md_, md_, alpha, beta), eng, fwd_pd);
    fwd_ = dnnl::eltwise_forward(fwd_pd);
    bwd_ = dnnl::eltwise_backward(bwd_pd);
    // Bound once: the C++ execute() would build an argument map on every call.
    fwd_call_ = dnnl_glue::Call(fwd_, {{DNNL_ARG_SRC, mems_[0]}, {DNNL_ARG_DST, mems_[1]}});
    bwd_call_ = dnnl_glue::Call(bwd_, {{uses_dst_ ? DNNL_ARG_DST : DNNL_ARG_SRC, mems_[0]},
                                       {DNNL_ARG_DIFF_DST, mems_[2]},
                                       {DNNL_ARG_DIFF_SRC, mems_[3]}});
  }

  void forward(Tensors in, Tensors out, RunContext&) override {
    bind(0, *in[0]);
    bind(1, *out[0]);
    fwd_call_();
  }

  void backward(Tensors in, Tensors out, Tensors grad_out, Tensors grad_in, RunContext&) override {
    if (!grad_in[0]) return;
    if (!grad_out[0]) {
      grad_in[0]->fill_zero();
      return;
    }
    // The *_use_dst_for_bwd algorithms read the forward output instead of the input.
    const Tensor& data = uses_dst_ ? *out[0] : *in[0];
    bind(0, data);
    bind(2, *grad_out[0]);
    bind(3, *grad_in[0]);
    bwd_call_();
  }

 private:
  static bool uses_dst(dnnl::algorithm alg) {
    return alg == dnnl::algorithm::eltwise_logistic_use_dst_for_bwd ||
           alg == dnnl::algorithm::eltwise_tanh_use_dst_for_bwd;
  }
  // Memory objects are made once; each call only points them at this step's buffers.
  dnnl::memory& bind(int slot, const Tensor& t) {
    mems_[slot].set_data_handle(const_cast<void*>(t.raw()));
    return mems_[slot];
  }

  dnnl::memory::desc md_;
  bool uses_dst_;
  dnnl::eltwise_forward fwd_;
  dnnl::eltwise_backward bwd_;
  dnnl::memory mems_[4];  // src or dst, dst, diff_dst, diff_src
  dnnl_glue::Call fwd_call_, bwd_call_;
};

std::unique_ptr<Kernel> make_dnnl(dnnl::algorithm alg, const InputInfos& in) {
  return std::make_unique<DnnlEltwiseKernel>(alg, shape_numel(in[0]->shape));
}

std::unique_ptr<Kernel> fast_sigmoid(const Node& n, const InputInfos& in,
                                     const std::vector<ValueInfo>&) {
  input(n, in, 0);
  return make_dnnl(dnnl::algorithm::eltwise_logistic_use_dst_for_bwd, in);
}

std::unique_ptr<Kernel> fast_tanh(const Node& n, const InputInfos& in,
                                  const std::vector<ValueInfo>&) {
  input(n, in, 0);
  return make_dnnl(dnnl::algorithm::eltwise_tanh_use_dst_for_bwd, in);
}

std::unique_ptr<Kernel> fast_gelu(const Node& n, const InputInfos& in,
                                  const std::vector<ValueInfo>&) {
  input(n, in, 0);
  return make_dnnl(
      gelu_is_tanh(n) ? dnnl::algorithm::eltwise_gelu_tanh : dnnl::algorithm::eltwise_gelu_erf, in);
}

}  // namespace

const OpDef kReluDef = {OpKind::kRelu,       "Relu",  1,    1,      1, infer_unary,
                        make_simple<ReluFn>, nullptr, true, nullptr};
const OpDef kRelu6Def = {OpKind::kRelu6,       "Relu6", 1,    1,      1, infer_unary,
                         make_simple<Relu6Fn>, nullptr, true, nullptr};
const OpDef kLeakyReluDef = {OpKind::kLeakyRelu, "LeakyRelu",     1,       1,    1,
                             infer_leaky_relu,   make_leaky_relu, nullptr, true, nullptr};
const OpDef kSigmoidDef = {OpKind::kSigmoid,       "Sigmoid",    1,    1,      1, infer_unary,
                           make_simple<SigmoidFn>, fast_sigmoid, true, nullptr};
const OpDef kTanhDef = {OpKind::kTanh,       "Tanh",    1,    1,      1, infer_unary,
                        make_simple<TanhFn>, fast_tanh, true, nullptr};
const OpDef kGeluDef = {OpKind::kGelu, "Gelu",    1,         1,    1,
                        infer_gelu,    make_gelu, fast_gelu, true, nullptr};
const OpDef kHardSwishDef = {OpKind::kHardSwish,       "HardSwish", 1,    1,      1, infer_unary,
                             make_simple<HardSwishFn>, nullptr,     true, nullptr};
const OpDef kHardSigmoidDef = {OpKind::kHardSigmoid, "HardSigmoid",     1,       1,    1,
                               infer_hard_sigmoid,   make_hard_sigmoid, nullptr, true, nullptr};

}  // namespace minnow::ops
