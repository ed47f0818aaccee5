// Div, Pow, Max, Min with numpy broadcasting (ONNX semantics; ONNX Max/Min are variadic, the
// importer chains two-input nodes).
//
// Forward runs the broadcast plan of broadcast.h. Backward first forms the elementwise
// gradient dy * d(a op b)/d(operand) over the output shape, then, for a broadcast operand,
// sums it over the broadcast dims with the same reducer Add/Sub/Mul use. The output-shaped
// scratch for that is made once, only when an operand is broadcast.
#include <cmath>

#include "ops/broadcast.h"
#include "ops/op_defs.h"
#include "ops/op_util.h"

namespace minnow::ops {
namespace {

// Each functor: apply(a, b) and, per operand, dy * d(a op b)/d operand at (a, b, y = apply(a, b)).
// Taking dy lets Max/Min return a select (dy or 0), which vectorizes where a 0/1 factor did not.
struct DivOp {
  template <class T>
  static T apply(T a, T b) {
    return a / b;
  }
  template <class T>
  static T da(T, T b, T, T dy) {
    return dy / b;
  }
  template <class T>
  static T db(T, T b, T y, T dy) {
    return -dy * y / b;
  }
};

// d/db a^b = a^b log a exists only for a > 0; elsewhere (negative base with an integral
// exponent, or 0) the exponent gets no gradient, as in PyTorch.
struct PowOp {
  template <class T>
  static T apply(T a, T b) {
    return std::pow(a, b);
  }
  template <class T>
  static T da(T a, T b, T, T dy) {
    return b == T(0) ? T(0) : dy * b * std::pow(a, b - T(1));
  }
  template <class T>
  static T db(T a, T, T y, T dy) {
    return a > T(0) ? dy * y * std::log(a) : T(0);
  }
};

// NaN propagates (numpy maximum/minimum); on ties the first input is chosen and gets the
// gradient.
struct MaxOp {
  template <class T>
  static bool first(T a, T b) {
    return (a >= b) | (a != a);  // no short circuit: the select vectorizes
  }
  template <class T>
  static T apply(T a, T b) {
    return first(a, b) ? a : b;
  }
  template <class T>
  static T da(T a, T b, T, T dy) {
    return first(a, b) ? dy : T(0);
  }
  template <class T>
  static T db(T a, T b, T, T dy) {
    return first(a, b) ? T(0) : dy;
  }
};

struct MinOp {
  template <class T>
  static bool first(T a, T b) {
    return (a <= b) | (a != a);  // no short circuit: the select vectorizes
  }
  template <class T>
  static T apply(T a, T b) {
    return first(a, b) ? a : b;
  }
  template <class T>
  static T da(T a, T b, T, T dy) {
    return first(a, b) ? dy : T(0);
  }
  template <class T>
  static T db(T a, T b, T, T dy) {
    return first(a, b) ? T(0) : dy;
  }
};

// t[i] = dy[i] * d op / d operand k over the output, i.e. the gradient before any reduction.
template <class Op, int K, class T>
void local_grad(const Plan& p, T* t, const T* dy, const T* a, const T* b, const T* y) {
  const int sa = p.inner_stride[0], sb = p.inner_stride[1];
#pragma omp parallel for if (p.numel >= kParallelMin) schedule(static)
  for (int64_t it = 0; it < p.items; ++it) {
    int64_t off[3], len;
    p.locate(it, off, len);
    T* __restrict tr = t + off[0];
    const T* dr = dy + off[0];
    const T* yr = y + off[0];
    const T* ar = a + off[1];
    const T* br = b + off[2];
    auto d = [](T av, T bv, T yv, T dv) {
      return K == 0 ? Op::da(av, bv, yv, dv) : Op::db(av, bv, yv, dv);
    };
    if (sa && sb) {  // equal shapes: unit strides, a loop the compiler vectorizes
      for (int64_t j = 0; j < len; ++j) tr[j] = d(ar[j], br[j], yr[j], dr[j]);
    } else {
      for (int64_t j = 0; j < len; ++j) tr[j] = d(ar[j * sa], br[j * sb], yr[j], dr[j]);
    }
  }
}

template <class Op, class T>
class MathBinaryKernel final : public Kernel {
 public:
  MathBinaryKernel(const Shape& a, const Shape& b, const Shape& out)
      : plan_(out, a, b), numel_{shape_numel(a), shape_numel(b)}, reducer_(plan_, numel_) {
    if (numel_[0] != plan_.numel || numel_[1] != plan_.numel) {
      scratch_.resize(static_cast<size_t>(plan_.numel));
    }
  }

  void forward(Tensors in, Tensors out, RunContext&) override {
    apply_plan<Op>(plan_, out[0]->data<T>(), in[0]->data<T>(), in[1]->data<T>());
  }

  void backward(Tensors in, Tensors out, Tensors grad_out, Tensors grad_in, RunContext&) override {
    const T* a = in[0]->data<T>();
    const T* b = in[1]->data<T>();
    const T* y = out[0]->data<T>();
    for (int k = 0; k < 2; ++k) {
      if (!grad_in[k]) continue;
      T* g = grad_in[k]->data<T>();
      if (!grad_out[0]) {
        grad_in[k]->fill_zero();
        continue;
      }
      const T* dy = grad_out[0]->data<T>();
      // An operand with the output's size sits at the output's offsets: write in place.
      const bool full = numel_[k] == plan_.numel;
      T* t = full ? g : scratch_.data();
      if (k == 0) {
        local_grad<Op, 0>(plan_, t, dy, a, b, y);
      } else {
        local_grad<Op, 1>(plan_, t, dy, a, b, y);
      }
      if (!full) reducer_.reduce(plan_, k, g, t, static_cast<const T*>(nullptr));
    }
  }

 private:
  Plan plan_;
  int64_t numel_[2];
  BroadcastReducer<T> reducer_;
  std::vector<T> scratch_;
};

template <class Op>
std::unique_ptr<Kernel> make_math_binary(const Node& n, const InputInfos& in,
                                         const std::vector<ValueInfo>& out) {
  const ValueInfo& a = input(n, in, 0);
  const ValueInfo& b = input(n, in, 1);
  return dispatch_float(a.dtype, [&]<class T>() -> std::unique_ptr<Kernel> {
    return std::make_unique<MathBinaryKernel<Op, T>>(a.shape, b.shape, out[0].shape);
  });
}

}  // namespace

const OpDef kDivDef = {OpKind::kDiv, "Div", 2,      2, 1, infer_binary, make_math_binary<DivOp>,
                       nullptr,      true,  nullptr};
const OpDef kPowDef = {OpKind::kPow, "Pow", 2,      2, 1, infer_binary, make_math_binary<PowOp>,
                       nullptr,      true,  nullptr};
const OpDef kMaxDef = {OpKind::kMax, "Max", 2,      2, 1, infer_binary, make_math_binary<MaxOp>,
                       nullptr,      true,  nullptr};
const OpDef kMinDef = {OpKind::kMin, "Min", 2,      2, 1, infer_binary, make_math_binary<MinOp>,
                       nullptr,      true,  nullptr};

}  // namespace minnow::ops
