// Optimizers with PyTorch's update rules (torch.optim.SGD / Adam / AdamW), so that a run here
// and a run there with the same hyper-parameters follow the same trajectory up to rounding.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "train/training_session.h"

namespace minnow {

struct OptimizerOptions {
  std::string kind = "adam";                      // sgd | adam | adamw
  double momentum = 0.0;                          // sgd
  bool nesterov = false;                          // sgd
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // adam, adamw
  double weight_decay = 0.0;  // L2 added to the gradient (sgd, adam); decoupled (adamw)
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // Updates every parameter in place from its gradient with learning rate `lr`.
  virtual void step(std::vector<ParamRef>& params, double lr) = 0;
  // Optimizer state for checkpoints: tensors keyed "<slot>/<param>", plus the step count.
  virtual void save_state(std::map<std::string, Tensor>& tensors, int64_t& steps) const = 0;
  virtual void load_state(const std::map<std::string, Tensor>& tensors, int64_t steps) = 0;
};

// Throws minnow::Error for an unknown kind or invalid hyper-parameters.
std::unique_ptr<Optimizer> make_optimizer(const OptimizerOptions& opt,
                                          const std::vector<ParamRef>& params);

// Scales all gradients so that their global L2 norm is at most max_norm; returns the norm
// before clipping (torch.nn.utils.clip_grad_norm_).
double clip_grad_norm(std::vector<ParamRef>& params, double max_norm);

}  // namespace minnow
