#include "train/optimizer.h"

#include <cmath>

#include "minnow/error.h"

namespace minnow {
namespace {

// One state tensor per parameter, created zero-filled like PyTorch's lazily created buffers.
class SlotState {
 public:
  SlotState(std::string slot, const std::vector<ParamRef>& params) : slot_(std::move(slot)) {
    for (const ParamRef& p : params) tensors_.emplace_back(DType::kF32, p.value.shape());
    for (const ParamRef& p : params) names_.push_back(p.name);
  }
  float* at(size_t i) { return tensors_[i].f32(); }
  void save(std::map<std::string, Tensor>& out) const {
    for (size_t i = 0; i < tensors_.size(); ++i) out[slot_ + "/" + names_[i]] = tensors_[i].clone();
  }
  void load(const std::map<std::string, Tensor>& in) {
    for (size_t i = 0; i < tensors_.size(); ++i) {
      auto it = in.find(slot_ + "/" + names_[i]);
      if (it == in.end())
        throw Error("checkpoint lacks optimizer state '" + slot_ + "/" + names_[i] + "'");
      if (it->second.shape() != tensors_[i].shape() || it->second.dtype() != DType::kF32) {
        throw Error("checkpoint optimizer state '" + it->first + "' has the wrong shape");
      }
      tensors_[i] = it->second.clone();
    }
  }

 private:
  std::string slot_;
  std::vector<std::string> names_;
  std::vector<Tensor> tensors_;
};

// The update loops are free functions over restrict pointers with the variant fixed at compile
// time, so the compiler vectorizes them (the optimizer step is memory-bound; a scalar loop with
// a branch per element cost as much as all of LeNet-300's matrix products). Element-wise work
// is split across threads only for large tensors and gives the same bits for any thread count.
constexpr int64_t kParallelUpdate = 1 << 15;

enum SgdVariant { kPlain, kFirstMomentum, kFirstNesterov, kMomentum, kNesterov };

template <SgdVariant kVariant>
void sgd_update(int64_t n, float* __restrict w, const float* __restrict g, float* __restrict buf,
                float m, float wd, float lr) {
#pragma omp parallel for simd if (n >= kParallelUpdate) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    float d = g[i] + wd * w[i];
    if constexpr (kVariant == kFirstMomentum || kVariant == kFirstNesterov) {
      // PyTorch initializes the buffer with the first gradient (no dampening).
      buf[i] = d;
      if constexpr (kVariant == kFirstNesterov) d = d + m * d;
    } else if constexpr (kVariant == kMomentum) {
      buf[i] = m * buf[i] + d;
      d = buf[i];
    } else if constexpr (kVariant == kNesterov) {
      buf[i] = m * buf[i] + d;
      d = d + m * buf[i];
    }
    w[i] -= lr * d;
  }
}

struct AdamCoeffs {
  float b1, b2, step_size, inv_sqrt_bc2, eps, wd, decay;
};

// PyTorch's arithmetic order: denom = sqrt(v) / sqrt(1 - b2^t) + eps; w -= lr/(1 - b1^t) * m/denom.
template <bool kDecoupled>
void adam_update(int64_t n, float* __restrict w, const float* __restrict g, float* __restrict m,
                 float* __restrict v, const AdamCoeffs& c) {
  const float b1 = c.b1, b2 = c.b2, step_size = c.step_size, inv_sqrt_bc2 = c.inv_sqrt_bc2;
  const float eps = c.eps, wd = c.wd, decay = c.decay;
#pragma omp parallel for simd if (n >= kParallelUpdate) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float gi = kDecoupled ? g[i] : g[i] + wd * w[i];
    const float mi = b1 * m[i] + (1.0f - b1) * gi;
    const float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const float denom = std::sqrt(vi) * inv_sqrt_bc2 + eps;
    w[i] = w[i] * decay - step_size * mi / denom;
  }
}

class Sgd : public Optimizer {
 public:
  Sgd(const OptimizerOptions& o, const std::vector<ParamRef>& params)
      : o_(o), momentum_("momentum", params) {}
  void step(std::vector<ParamRef>& params, double lr) override {
    const float m = static_cast<float>(o_.momentum), wd = static_cast<float>(o_.weight_decay);
    const float step_lr = static_cast<float>(lr);
    for (size_t k = 0; k < params.size(); ++k) {
      float* w = params[k].value.f32();
      const float* g = params[k].grad.f32();
      float* buf = momentum_.at(k);
      const int64_t n = params[k].value.numel();
      if (m == 0.0f) {
        sgd_update<kPlain>(n, w, g, buf, m, wd, step_lr);
      } else if (steps_ == 0 && o_.nesterov) {
        sgd_update<kFirstNesterov>(n, w, g, buf, m, wd, step_lr);
      } else if (steps_ == 0) {
        sgd_update<kFirstMomentum>(n, w, g, buf, m, wd, step_lr);
      } else if (o_.nesterov) {
        sgd_update<kNesterov>(n, w, g, buf, m, wd, step_lr);
      } else {
        sgd_update<kMomentum>(n, w, g, buf, m, wd, step_lr);
      }
    }
    ++steps_;
  }
  void save_state(std::map<std::string, Tensor>& t, int64_t& steps) const override {
    momentum_.save(t);
    steps = steps_;
  }
  void load_state(const std::map<std::string, Tensor>& t, int64_t steps) override {
    momentum_.load(t);
    steps_ = steps;
  }

 private:
  OptimizerOptions o_;
  SlotState momentum_;
  int64_t steps_ = 0;
};

class Adam : public Optimizer {
 public:
  Adam(const OptimizerOptions& o, const std::vector<ParamRef>& params, bool decoupled)
      : o_(o), decoupled_(decoupled), m_("adam.m", params), v_("adam.v", params) {}
  void step(std::vector<ParamRef>& params, double lr) override {
    ++steps_;
    const double bc1 = 1.0 - std::pow(o_.beta1, static_cast<double>(steps_));
    const double bc2 = 1.0 - std::pow(o_.beta2, static_cast<double>(steps_));
    AdamCoeffs c;
    c.b1 = static_cast<float>(o_.beta1);
    c.b2 = static_cast<float>(o_.beta2);
    c.step_size = static_cast<float>(lr / bc1);
    c.inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
    c.eps = static_cast<float>(o_.eps);
    c.wd = static_cast<float>(o_.weight_decay);
    c.decay = decoupled_ ? static_cast<float>(1.0 - lr * o_.weight_decay) : 1.0f;
    for (size_t k = 0; k < params.size(); ++k) {
      float* w = params[k].value.f32();
      const float* g = params[k].grad.f32();
      float* m = m_.at(k);
      float* v = v_.at(k);
      const int64_t n = params[k].value.numel();
      if (decoupled_) {
        adam_update<true>(n, w, g, m, v, c);
      } else {
        adam_update<false>(n, w, g, m, v, c);
      }
    }
  }
  void save_state(std::map<std::string, Tensor>& t, int64_t& steps) const override {
    m_.save(t);
    v_.save(t);
    steps = steps_;
  }
  void load_state(const std::map<std::string, Tensor>& t, int64_t steps) override {
    m_.load(t);
    v_.load(t);
    steps_ = steps;
  }

 private:
  OptimizerOptions o_;
  bool decoupled_;
  SlotState m_, v_;
  int64_t steps_ = 0;
};

}  // namespace

std::unique_ptr<Optimizer> make_optimizer(const OptimizerOptions& opt,
                                          const std::vector<ParamRef>& params) {
  if (opt.weight_decay < 0) throw Error("--weight-decay must be >= 0");
  if (opt.momentum < 0 || opt.momentum >= 1) throw Error("--momentum must be in [0, 1)");
  if (opt.nesterov && opt.momentum == 0) throw Error("--nesterov needs --momentum > 0");
  if (opt.beta1 < 0 || opt.beta1 >= 1 || opt.beta2 < 0 || opt.beta2 >= 1 || opt.eps <= 0) {
    throw Error("Adam betas must be in [0, 1) and eps > 0");
  }
  if (opt.kind == "sgd") return std::make_unique<Sgd>(opt, params);
  if (opt.kind == "adam") return std::make_unique<Adam>(opt, params, false);
  if (opt.kind == "adamw") return std::make_unique<Adam>(opt, params, true);
  throw Error("unknown optimizer '" + opt.kind + "' (expected sgd, adam or adamw)");
}

double clip_grad_norm(std::vector<ParamRef>& params, double max_norm) {
  double sq = 0;
  for (ParamRef& p : params) {
    const float* g = p.grad.f32();
    for (int64_t i = 0; i < p.grad.numel(); ++i) sq += static_cast<double>(g[i]) * g[i];
  }
  double norm = std::sqrt(sq);
  if (max_norm > 0 && norm > max_norm) {
    float scale = static_cast<float>(max_norm / (norm + 1e-6));
    for (ParamRef& p : params) {
      float* g = p.grad.f32();
      for (int64_t i = 0; i < p.grad.numel(); ++i) g[i] *= scale;
    }
  }
  return norm;
}

}  // namespace minnow
