// Elementwise math (ONNX semantics): y = f(x), dx = f'(x) * dy, one functor per op on the
// UnaryKernel template of elementwise.h. Functors with attributes read and validate them in
// `from(node)`, which both infer and the kernel factory call, so a bad attribute is reported
// at shape inference.
//
// Gradients are the analytic derivatives; where one is undefined the choices are PyTorch's:
// Floor/Ceil/Round/Sign pass nothing, Abs passes 0 at 0, Clip passes only strictly inside
// (min, max), Elu/Selu/Celu take the slope of the linear branch only for x > 0 and
// ThresholdedRelu only for x > alpha.
#include <cmath>
#include <numbers>
#include <string>

#include "ops/elementwise.h"
#include "ops/op_defs.h"
#include "ops/op_util.h"

namespace minnow::ops {
namespace {

struct ExpFn {
  template <class T>
  T forward(T x) const {
    return std::exp(x);
  }
  template <class T>
  T backward(T, T y, T dy) const {
    return dy * y;
  }
};

struct LogFn {
  template <class T>
  T forward(T x) const {
    return std::log(x);
  }
  template <class T>
  T backward(T x, T, T dy) const {
    return dy / x;
  }
};

struct SqrtFn {
  template <class T>
  T forward(T x) const {
    return std::sqrt(x);
  }
  template <class T>
  T backward(T, T y, T dy) const {
    return dy * T(0.5) / y;
  }
};

struct NegFn {
  template <class T>
  T forward(T x) const {
    return -x;
  }
  template <class T>
  T backward(T, T, T dy) const {
    return -dy;
  }
};

struct AbsFn {
  template <class T>
  T forward(T x) const {
    return std::abs(x);
  }
  template <class T>
  T backward(T x, T, T dy) const {
    return x > T(0) ? dy : (x < T(0) ? -dy : T(0));
  }
};

struct ReciprocalFn {
  template <class T>
  T forward(T x) const {
    return T(1) / x;
  }
  template <class T>
  T backward(T, T y, T dy) const {
    return -dy * y * y;
  }
};

struct ErfFn {
  template <class T>
  T forward(T x) const {
    return std::erf(x);
  }
  template <class T>
  T backward(T x, T, T dy) const {
    return dy * T(2 * std::numbers::inv_sqrtpi) * std::exp(-x * x);
  }
};

// Piecewise-constant ops: the derivative is zero wherever it exists.
struct FloorFn {
  template <class T>
  T forward(T x) const {
    return std::floor(x);
  }
  template <class T>
  T backward(T, T, T) const {
    return T(0);
  }
};

struct CeilFn {
  template <class T>
  T forward(T x) const {
    return std::ceil(x);
  }
  template <class T>
  T backward(T, T, T) const {
    return T(0);
  }
};

// Halves round to even (ONNX, numpy): nearbyint in the default rounding mode does exactly that.
struct RoundFn {
  template <class T>
  T forward(T x) const {
    return std::nearbyint(x);
  }
  template <class T>
  T backward(T, T, T) const {
    return T(0);
  }
};

// NaN stays NaN (numpy sign).
struct SignFn {
  template <class T>
  T forward(T x) const {
    return x > T(0) ? T(1) : (x < T(0) ? T(-1) : x);
  }
  template <class T>
  T backward(T, T, T) const {
    return T(0);
  }
};

struct SinFn {
  template <class T>
  T forward(T x) const {
    return std::sin(x);
  }
  template <class T>
  T backward(T x, T, T dy) const {
    return dy * std::cos(x);
  }
};

struct CosFn {
  template <class T>
  T forward(T x) const {
    return std::cos(x);
  }
  template <class T>
  T backward(T x, T, T dy) const {
    return -dy * std::sin(x);
  }
};

struct TanFn {
  template <class T>
  T forward(T x) const {
    return std::tan(x);
  }
  template <class T>
  T backward(T, T y, T dy) const {
    return dy * (T(1) + y * y);
  }
};

struct AsinFn {
  template <class T>
  T forward(T x) const {
    return std::asin(x);
  }
  template <class T>
  T backward(T x, T, T dy) const {
    return dy / std::sqrt(T(1) - x * x);
  }
};

struct AcosFn {
  template <class T>
  T forward(T x) const {
    return std::acos(x);
  }
  template <class T>
  T backward(T x, T, T dy) const {
    return -dy / std::sqrt(T(1) - x * x);
  }
};

struct AtanFn {
  template <class T>
  T forward(T x) const {
    return std::atan(x);
  }
  template <class T>
  T backward(T x, T, T dy) const {
    return dy / (T(1) + x * x);
  }
};

struct SinhFn {
  template <class T>
  T forward(T x) const {
    return std::sinh(x);
  }
  template <class T>
  T backward(T x, T, T dy) const {
    return dy * std::cosh(x);
  }
};

struct CoshFn {
  template <class T>
  T forward(T x) const {
    return std::cosh(x);
  }
  template <class T>
  T backward(T x, T, T dy) const {
    return dy * std::sinh(x);
  }
};

struct AsinhFn {
  template <class T>
  T forward(T x) const {
    return std::asinh(x);
  }
  template <class T>
  T backward(T x, T, T dy) const {
    return dy / std::sqrt(x * x + T(1));
  }
};

struct AcoshFn {
  template <class T>
  T forward(T x) const {
    return std::acosh(x);
  }
  template <class T>
  T backward(T x, T, T dy) const {
    return dy / std::sqrt(x * x - T(1));
  }
};

struct AtanhFn {
  template <class T>
  T forward(T x) const {
    return std::atanh(x);
  }
  template <class T>
  T backward(T x, T, T dy) const {
    return dy / (T(1) - x * x);
  }
};

// log(1 + e^x) without overflow for large x; derivative sigmoid(x).
struct SoftplusFn {
  template <class T>
  T forward(T x) const {
    return x > T(0) ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
  }
  template <class T>
  T backward(T x, T, T dy) const {
    return dy / (T(1) + std::exp(-x));
  }
};

struct SoftsignFn {
  template <class T>
  T forward(T x) const {
    return x / (T(1) + std::abs(x));
  }
  template <class T>
  T backward(T x, T, T dy) const {
    const T d = T(1) + std::abs(x);
    return dy / (d * d);
  }
};

double finite_attr(const Node& n, const char* key, double fallback) {
  const double v = n.attrs.get_float(key, fallback);
  if (!std::isfinite(v)) {
    fail(n, "attribute " + std::string(key) + " must be finite, got " + std::to_string(v));
  }
  return v;
}

// x for x >= 0, alpha (e^x - 1) below.
struct EluFn {
  double alpha = 1.0;
  static EluFn from(const Node& n) { return {finite_attr(n, "alpha", 1.0)}; }
  template <class T>
  T forward(T x) const {
    return x >= T(0) ? x : T(alpha) * std::expm1(x);
  }
  template <class T>
  T backward(T x, T, T dy) const {
    return x > T(0) ? dy : dy * T(alpha) * std::exp(x);
  }
};

// gamma x for x > 0, gamma alpha (e^x - 1) otherwise. The defaults are ONNX's float constants.
struct SeluFn {
  double alpha = 1.67326319217681884765625;
  double gamma = 1.05070102214813232421875;
  static SeluFn from(const Node& n) {
    return {finite_attr(n, "alpha", 1.67326319217681884765625),
            finite_attr(n, "gamma", 1.05070102214813232421875)};
  }
  template <class T>
  T forward(T x) const {
    return x > T(0) ? T(gamma) * x : T(gamma * alpha) * std::expm1(x);
  }
  template <class T>
  T backward(T x, T, T dy) const {
    return x > T(0) ? T(gamma) * dy : dy * T(gamma * alpha) * std::exp(x);
  }
};

// max(0, x) + min(0, alpha (e^(x/alpha) - 1)).
struct CeluFn {
  double alpha = 1.0;
  static CeluFn from(const Node& n) {
    const double a = finite_attr(n, "alpha", 1.0);
    if (a == 0) fail(n, "attribute alpha must be non-zero");
    return {a};
  }
  template <class T>
  T forward(T x) const {
    return x > T(0) ? x : T(alpha) * std::expm1(x / T(alpha));
  }
  template <class T>
  T backward(T x, T, T dy) const {
    return x > T(0) ? dy : dy * std::exp(x / T(alpha));
  }
};

// x where x > alpha, else 0.
struct ThresholdedReluFn {
  double alpha = 1.0;
  static ThresholdedReluFn from(const Node& n) { return {finite_attr(n, "alpha", 1.0)}; }
  template <class T>
  T forward(T x) const {
    return x > T(alpha) ? x : T(0);
  }
  template <class T>
  T backward(T x, T, T dy) const {
    return x > T(alpha) ? dy : T(0);
  }
};

// min(max(x, lo), hi) as numpy clip: with lo > hi every element becomes hi; NaN stays NaN.
struct ClipFn {
  double lo = -INFINITY;
  double hi = INFINITY;
  static ClipFn from(const Node& n) {
    ClipFn fn{n.attrs.get_float("min", -INFINITY), n.attrs.get_float("max", INFINITY)};
    if (std::isnan(fn.lo) || std::isnan(fn.hi)) fail(n, "attributes min and max must not be NaN");
    return fn;
  }
  template <class T>
  T forward(T x) const {
    const T v = x < T(lo) ? T(lo) : x;
    return v > T(hi) ? T(hi) : v;
  }
  template <class T>
  T backward(T x, T, T dy) const {
    return (x > T(lo) && x < T(hi)) ? dy : T(0);
  }
};

template <class Fn>
Fn fn_from(const Node& n) {
  if constexpr (requires { Fn::from(n); }) {
    return Fn::from(n);
  } else {
    return Fn{};
  }
}

template <class Fn>
void infer_math_unary(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  fn_from<Fn>(n);
  infer_same_as_input(n, in, out);
}

template <class Fn>
std::unique_ptr<Kernel> make_math_unary(const Node& n, const InputInfos& in,
                                        const std::vector<ValueInfo>&) {
  return make_unary_kernel(input(n, in, 0).dtype, fn_from<Fn>(n));
}

template <class Fn>
constexpr OpDef unary_def(OpKind kind, const char* name) {
  return {kind, name, 1, 1, 1, infer_math_unary<Fn>, make_math_unary<Fn>, nullptr, true, nullptr};
}

}  // namespace

const OpDef kExpDef = unary_def<ExpFn>(OpKind::kExp, "Exp");
const OpDef kLogDef = unary_def<LogFn>(OpKind::kLog, "Log");
const OpDef kSqrtDef = unary_def<SqrtFn>(OpKind::kSqrt, "Sqrt");
const OpDef kNegDef = unary_def<NegFn>(OpKind::kNeg, "Neg");
const OpDef kAbsDef = unary_def<AbsFn>(OpKind::kAbs, "Abs");
const OpDef kReciprocalDef = unary_def<ReciprocalFn>(OpKind::kReciprocal, "Reciprocal");
const OpDef kErfDef = unary_def<ErfFn>(OpKind::kErf, "Erf");
const OpDef kFloorDef = unary_def<FloorFn>(OpKind::kFloor, "Floor");
const OpDef kCeilDef = unary_def<CeilFn>(OpKind::kCeil, "Ceil");
const OpDef kRoundDef = unary_def<RoundFn>(OpKind::kRound, "Round");
const OpDef kSignDef = unary_def<SignFn>(OpKind::kSign, "Sign");
const OpDef kSinDef = unary_def<SinFn>(OpKind::kSin, "Sin");
const OpDef kCosDef = unary_def<CosFn>(OpKind::kCos, "Cos");
const OpDef kTanDef = unary_def<TanFn>(OpKind::kTan, "Tan");
const OpDef kAsinDef = unary_def<AsinFn>(OpKind::kAsin, "Asin");
const OpDef kAcosDef = unary_def<AcosFn>(OpKind::kAcos, "Acos");
const OpDef kAtanDef = unary_def<AtanFn>(OpKind::kAtan, "Atan");
const OpDef kSinhDef = unary_def<SinhFn>(OpKind::kSinh, "Sinh");
const OpDef kCoshDef = unary_def<CoshFn>(OpKind::kCosh, "Cosh");
const OpDef kAsinhDef = unary_def<AsinhFn>(OpKind::kAsinh, "Asinh");
const OpDef kAcoshDef = unary_def<AcoshFn>(OpKind::kAcosh, "Acosh");
const OpDef kAtanhDef = unary_def<AtanhFn>(OpKind::kAtanh, "Atanh");
const OpDef kSoftplusDef = unary_def<SoftplusFn>(OpKind::kSoftplus, "Softplus");
const OpDef kSoftsignDef = unary_def<SoftsignFn>(OpKind::kSoftsign, "Softsign");
const OpDef kEluDef = unary_def<EluFn>(OpKind::kElu, "Elu");
const OpDef kSeluDef = unary_def<SeluFn>(OpKind::kSelu, "Selu");
const OpDef kCeluDef = unary_def<CeluFn>(OpKind::kCelu, "Celu");
const OpDef kThresholdedReluDef =
    unary_def<ThresholdedReluFn>(OpKind::kThresholdedRelu, "ThresholdedRelu");
const OpDef kClipDef = unary_def<ClipFn>(OpKind::kClip, "Clip");

}  // namespace minnow::ops
