// Losses: scalar means over the batch, PyTorch semantics (reduction="mean").
//
//  SoftmaxCrossEntropy(logits [N,C], labels [N] i64; label_smoothing s):
//    loss_i = -(1-s) log p_i[y_i] - (s/C) sum_c log p_i[c],  p = softmax(logits)
//    d loss / d logits = (p - q) / N with q = (1-s) onehot(y) + s/C   (F.cross_entropy)
//  MseLoss(pred, target): mean (pred - target)^2
//  BceWithLogits(x, t): mean max(x,0) - x t + log(1 + exp(-|x|))   (stable for any x)
//  DistillationLoss(logits, labels, teacher_logits; temperature, alpha): Hinton soft targets
//
// Reference kernels are the only kernels: each is one or two passes over small tensors.
// Sums are accumulated in double so the mean does not depend on the batch size's rounding.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "ops/op_defs.h"
#include "ops/op_util.h"

namespace minnow::ops {
namespace {

// Shapes are equal, treating the symbolic batch dim as matching itself only.
void require_same_shape(const Node& n, const ValueInfo& a, const ValueInfo& b) {
  if (a.shape != b.shape) {
    fail(n, "input '" + b.name + "' has shape " + shape_str(b.shape) + " but input '" + a.name +
                "' has " + shape_str(a.shape) + "; they must be equal");
  }
  if (a.dtype != b.dtype) {
    fail(n, "input '" + b.name + "' has dtype " + std::string(dtype_name(b.dtype)) +
                " but input '" + a.name + "' has " + std::string(dtype_name(a.dtype)));
  }
}

// The scale every element's gradient gets: d(mean)/d(element) times the incoming gradient.
template <class T>
double grad_scale(Tensors grad_out, int64_t count) {
  const double g = grad_out[0] ? static_cast<double>(grad_out[0]->data<T>()[0]) : 0.0;
  return g / static_cast<double>(count);
}

// ---------------------------------------------------------------------------------------------
// SoftmaxCrossEntropy

double label_smoothing(const Node& n) {
  const double s = n.attrs.get_float("label_smoothing", 0.0);
  if (!(s >= 0 && s <= 1)) {
    fail(n, "attribute label_smoothing must be in [0, 1], got " + std::to_string(s));
  }
  return s;
}

void infer_cross_entropy(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  label_smoothing(n);
  const ValueInfo& logits = input(n, in, 0);
  const ValueInfo& labels = input(n, in, 1);
  require_float(n, logits);
  require_rank(n, logits, 2);
  if (logits.shape[1] < 1) {
    fail(n, "logits '" + logits.name + "' have shape " + shape_str(logits.shape) +
                ", expected a concrete class count >= 1");
  }
  if (labels.dtype != DType::kI64) {
    fail(n, "labels '" + labels.name + "' have dtype " + std::string(dtype_name(labels.dtype)) +
                ", expected i64 class indices");
  }
  require_rank(n, labels, 1);
  const int64_t a = logits.shape[0], b = labels.shape[0];
  if (a != b && a != kDynamic && b != kDynamic) {
    fail(n, "logits '" + logits.name + "' have shape " + shape_str(logits.shape) + " but labels '" +
                labels.name + "' have shape " + shape_str(labels.shape) +
                "; expected one label per row");
  }
  out[0].dtype = logits.dtype;
  out[0].shape = {};
}

template <class T>
class CrossEntropyKernel final : public Kernel {
 public:
  CrossEntropyKernel(const Node& node, int64_t rows, int64_t classes)
      : node_(node),
        rows_(rows),
        classes_(classes),
        smoothing_(label_smoothing(node)),
        prob_(rows * classes) {}

  void forward(Tensors in, Tensors out, RunContext&) override {
    const T* x = in[0]->data<T>();
    const int64_t* y = in[1]->data<int64_t>();
    const int64_t C = classes_;
    for (int64_t i = 0; i < rows_; ++i) {
      if (y[i] < 0 || y[i] >= C) {
        fail(node_, "label " + std::to_string(y[i]) + " at index " + std::to_string(i) +
                        " is out of range [0, " + std::to_string(C) + ")");
      }
    }
    const double on = 1.0 - smoothing_, spread = smoothing_ / static_cast<double>(C);
    double total = 0;
    for (int64_t i = 0; i < rows_; ++i) {
      const T* r = x + i * C;
      T* p = prob_.data() + i * C;
      const T m = *std::max_element(r, r + C);
      double s = 0, sum_shifted = 0;
      for (int64_t c = 0; c < C; ++c) {
        p[c] = std::exp(r[c] - m);
        s += p[c];
        sum_shifted += r[c] - m;
      }
      const double log_s = std::log(s);
      // log p[c] = x[c] - m - log_s; the smoothing term needs their sum over c.
      const double nll = -(static_cast<double>(r[y[i]] - m) - log_s);
      const double smooth = -(sum_shifted - static_cast<double>(C) * log_s);
      total += on * nll + spread * smooth;
      const T inv = static_cast<T>(1.0 / s);
      for (int64_t c = 0; c < C; ++c) p[c] *= inv;
    }
    out[0]->data<T>()[0] = static_cast<T>(total / static_cast<double>(rows_));
  }

  void backward(Tensors in, Tensors, Tensors grad_out, Tensors grad_in, RunContext&) override {
    if (!grad_in[0]) return;
    T* dx = grad_in[0]->data<T>();
    const int64_t* y = in[1]->data<int64_t>();
    const int64_t C = classes_;
    const T g = static_cast<T>(grad_scale<T>(grad_out, rows_));
    const T spread = static_cast<T>(smoothing_ / static_cast<double>(C));
    const T on = static_cast<T>(1.0 - smoothing_);
    for (int64_t i = 0; i < rows_; ++i) {
      const T* p = prob_.data() + i * C;
      T* d = dx + i * C;
      for (int64_t c = 0; c < C; ++c) d[c] = g * (p[c] - spread);
      d[y[i]] -= g * on;
    }
  }

 private:
  Node node_;
  int64_t rows_, classes_;
  double smoothing_;
  std::vector<T> prob_;  // softmax of the last forward, reused by backward
};

std::unique_ptr<Kernel> make_cross_entropy(const Node& n, const InputInfos& in,
                                           const std::vector<ValueInfo>&) {
  const ValueInfo& logits = input(n, in, 0);
  const int64_t rows = logits.shape[0], classes = logits.shape[1];
  if (input(n, in, 1).shape != Shape{rows}) {
    fail(n, "labels have shape " + shape_str(in[1]->shape) + ", expected [" + std::to_string(rows) +
                "]");
  }
  return dispatch_float(logits.dtype, [&]<class T>() -> std::unique_ptr<Kernel> {
    return std::make_unique<CrossEntropyKernel<T>>(n, rows, classes);
  });
}

// ---------------------------------------------------------------------------------------------
// MseLoss and BceWithLogits: elementwise terms of two same-shape inputs, then the mean.

void infer_pair_loss(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  const ValueInfo& a = input(n, in, 0);
  const ValueInfo& b = input(n, in, 1);
  require_float(n, a);
  require_float(n, b);
  require_same_shape(n, a, b);
  out[0].dtype = a.dtype;
  out[0].shape = {};
}

struct MseFn {
  template <class T>
  static double value(T p, T t) {
    const double d = static_cast<double>(p) - static_cast<double>(t);
    return d * d;
  }
  // d term / d p and d term / d t.
  template <class T>
  static void grad(T p, T t, double* dp, double* dt) {
    *dp = 2.0 * (static_cast<double>(p) - static_cast<double>(t));
    *dt = -*dp;
  }
};

struct BceFn {
  template <class T>
  static double value(T x, T t) {
    const double v = x;
    return std::max(v, 0.0) - v * static_cast<double>(t) + std::log1p(std::exp(-std::abs(v)));
  }
  template <class T>
  static void grad(T x, T t, double* dx, double* dt) {
    const double v = x;
    // sigmoid without overflow on either side
    const double e = std::exp(-std::abs(v));
    const double sig = v >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
    *dx = sig - static_cast<double>(t);
    *dt = -v;
  }
};

template <class T, class Fn>
class PairLossKernel final : public Kernel {
 public:
  void forward(Tensors in, Tensors out, RunContext&) override {
    const T* a = in[0]->data<T>();
    const T* b = in[1]->data<T>();
    const int64_t n = in[0]->numel();
    double total = 0;
    for (int64_t i = 0; i < n; ++i) total += Fn::value(a[i], b[i]);
    out[0]->data<T>()[0] = static_cast<T>(total / static_cast<double>(n));
  }

  void backward(Tensors in, Tensors, Tensors grad_out, Tensors grad_in, RunContext&) override {
    const T* a = in[0]->data<T>();
    const T* b = in[1]->data<T>();
    const int64_t n = in[0]->numel();
    const double g = grad_scale<T>(grad_out, n);
    T* da = grad_in[0] ? grad_in[0]->data<T>() : nullptr;
    T* db = grad_in[1] ? grad_in[1]->data<T>() : nullptr;
    for (int64_t i = 0; i < n; ++i) {
      double ga, gb;
      Fn::grad(a[i], b[i], &ga, &gb);
      if (da) da[i] = static_cast<T>(g * ga);
      if (db) db[i] = static_cast<T>(g * gb);
    }
  }
};

template <class Fn>
std::unique_ptr<Kernel> make_pair_loss(const Node& n, const InputInfos& in,
                                       const std::vector<ValueInfo>&) {
  return dispatch_float(input(n, in, 0).dtype, [&]<class T>() -> std::unique_ptr<Kernel> {
    return std::make_unique<PairLossKernel<T, Fn>>();
  });
}

// ---------------------------------------------------------------------------------------------
// DistillationLoss(logits [N,C], labels [N] i64, teacher_logits [N,C]; temperature T, alpha a):
//   loss = a T^2 mean_i KL(softmax(t_i/T) || softmax(s_i/T)) + (1-a) mean_i CE(s_i, y_i)
// (Hinton et al. 2015; the T^2 keeps the soft term's gradient scale independent of T).
//   d/ds = [a T (q_s - q_t) + (1-a)(p_s - onehot(y))] / N,  q = softmax(./T), p = softmax(.)
//   d/dt = a T q_t (log q_t - log q_s - KL_i) / N
// The teacher gradient exists so the op is a complete table entry (and for the finite-difference
// test); training feeds the teacher's logits as data, so the session never asks for it.

struct DistillAttrs {
  double temperature, alpha;
};

DistillAttrs distill_attrs(const Node& n) {
  DistillAttrs a{n.attrs.get_float("temperature", 1.0), n.attrs.get_float("alpha", 0.5)};
  if (!(a.temperature > 0) || !std::isfinite(a.temperature)) {
    fail(n, "attribute temperature must be > 0, got " + std::to_string(a.temperature));
  }
  if (!(a.alpha >= 0 && a.alpha <= 1)) {
    fail(n, "attribute alpha must be in [0, 1], got " + std::to_string(a.alpha));
  }
  return a;
}

void infer_distillation(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  distill_attrs(n);
  infer_cross_entropy(n, in, out);  // logits and labels as for SoftmaxCrossEntropy
  const ValueInfo& logits = input(n, in, 0);
  require_same_shape(n, logits, input(n, in, 2));
}

// Softmax of row `x` divided by `scale` into `p` (as T), returns log of the normalizer of the
// shifted row so that log p[c] = (x[c] - m) / scale - log_z.
template <class T>
double softmax_row(const T* x, int64_t C, double scale, T* p, double* shift) {
  const double m = static_cast<double>(*std::max_element(x, x + C));
  double s = 0;
  for (int64_t c = 0; c < C; ++c) {
    const double e = std::exp((static_cast<double>(x[c]) - m) / scale);
    p[c] = static_cast<T>(e);
    s += e;
  }
  for (int64_t c = 0; c < C; ++c) p[c] = static_cast<T>(static_cast<double>(p[c]) / s);
  *shift = m;
  return std::log(s);
}

template <class T>
class DistillationKernel final : public Kernel {
 public:
  DistillationKernel(const Node& node, int64_t rows, int64_t classes)
      : node_(node),
        rows_(rows),
        classes_(classes),
        attrs_(distill_attrs(node)),
        p_(rows * classes),
        qs_(rows * classes),
        qt_(rows * classes),
        log_ratio_(rows * classes),
        kl_(rows) {}

  void forward(Tensors in, Tensors out, RunContext&) override {
    const T* s = in[0]->data<T>();
    const int64_t* y = in[1]->data<int64_t>();
    const T* t = in[2]->data<T>();
    const int64_t C = classes_;
    const double temp = attrs_.temperature, a = attrs_.alpha;
    double ce_total = 0, kl_total = 0;
    for (int64_t i = 0; i < rows_; ++i) {
      if (y[i] < 0 || y[i] >= C) {
        fail(node_, "label " + std::to_string(y[i]) + " at index " + std::to_string(i) +
                        " is out of range [0, " + std::to_string(C) + ")");
      }
      const T* si = s + i * C;
      const T* ti = t + i * C;
      double ms, mt, m1;
      const double lz1 = softmax_row(si, C, 1.0, p_.data() + i * C, &m1);
      ce_total += -((static_cast<double>(si[y[i]]) - m1) - lz1);
      const double lzs = softmax_row(si, C, temp, qs_.data() + i * C, &ms);
      const double lzt = softmax_row(ti, C, temp, qt_.data() + i * C, &mt);
      double kl = 0;
      for (int64_t c = 0; c < C; ++c) {
        const double log_qt = (static_cast<double>(ti[c]) - mt) / temp - lzt;
        const double log_qs = (static_cast<double>(si[c]) - ms) / temp - lzs;
        const double r = log_qt - log_qs;
        log_ratio_[i * C + c] = static_cast<T>(r);
        kl += static_cast<double>(qt_[i * C + c]) * r;
      }
      kl_[i] = static_cast<T>(kl);
      kl_total += kl;
    }
    const double n = static_cast<double>(rows_);
    out[0]->data<T>()[0] = static_cast<T>(a * temp * temp * kl_total / n + (1 - a) * ce_total / n);
  }

  void backward(Tensors in, Tensors, Tensors grad_out, Tensors grad_in, RunContext&) override {
    const int64_t* y = in[1]->data<int64_t>();
    const int64_t C = classes_;
    const double g = grad_scale<T>(grad_out, rows_);
    const double temp = attrs_.temperature, a = attrs_.alpha;
    if (grad_in[0]) {
      T* ds = grad_in[0]->data<T>();
      for (int64_t i = 0; i < rows_; ++i) {
        for (int64_t c = 0; c < C; ++c) {
          const int64_t k = i * C + c;
          const double hard = static_cast<double>(p_[k]) - (c == y[i] ? 1.0 : 0.0);
          const double soft = static_cast<double>(qs_[k]) - static_cast<double>(qt_[k]);
          ds[k] = static_cast<T>(g * (a * temp * soft + (1 - a) * hard));
        }
      }
    }
    if (grad_in[2]) {
      T* dt = grad_in[2]->data<T>();
      for (int64_t i = 0; i < rows_; ++i) {
        for (int64_t c = 0; c < C; ++c) {
          const int64_t k = i * C + c;
          const double d = static_cast<double>(qt_[k]) *
                           (static_cast<double>(log_ratio_[k]) - static_cast<double>(kl_[i]));
          dt[k] = static_cast<T>(g * a * temp * d);
        }
      }
    }
  }

 private:
  Node node_;
  int64_t rows_, classes_;
  DistillAttrs attrs_;
  // Saved by forward for backward: softmax(s), softmax(s/T), softmax(t/T), log(q_t/q_s), KL.
  std::vector<T> p_, qs_, qt_, log_ratio_, kl_;
};

std::unique_ptr<Kernel> make_distillation(const Node& n, const InputInfos& in,
                                          const std::vector<ValueInfo>&) {
  const ValueInfo& logits = input(n, in, 0);
  const int64_t rows = logits.shape[0], classes = logits.shape[1];
  if (input(n, in, 1).shape != Shape{rows}) {
    fail(n, "labels have shape " + shape_str(in[1]->shape) + ", expected [" + std::to_string(rows) +
                "]");
  }
  if (input(n, in, 2).shape != logits.shape) {
    fail(n, "teacher logits have shape " + shape_str(in[2]->shape) + ", expected " +
                shape_str(logits.shape));
  }
  return dispatch_float(logits.dtype, [&]<class T>() -> std::unique_ptr<Kernel> {
    return std::make_unique<DistillationKernel<T>>(n, rows, classes);
  });
}

}  // namespace

const OpDef kSoftmaxCrossEntropyDef = {
    OpKind::kSoftmaxCrossEntropy, "SoftmaxCrossEntropy", 2,       2,    1,
    infer_cross_entropy,          make_cross_entropy,    nullptr, true, nullptr};
const OpDef kMseLossDef = {OpKind::kMseLoss,      "MseLoss", 2,    2,      1, infer_pair_loss,
                           make_pair_loss<MseFn>, nullptr,   true, nullptr};
const OpDef kBceWithLogitsDef = {
    OpKind::kBceWithLogits, "BceWithLogits",       2,       2,    1,
    infer_pair_loss,        make_pair_loss<BceFn>, nullptr, true, nullptr};
const OpDef kDistillationLossDef = {
    OpKind::kDistillationLoss, "DistillationLoss", 3,       3,    1,
    infer_distillation,        make_distillation,  nullptr, true, nullptr};

}  // namespace minnow::ops
