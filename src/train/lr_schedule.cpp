#include "train/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "minnow/error.h"

namespace minnow {

LrSchedule::LrSchedule(const ScheduleOptions& opt, double base_lr, int64_t steps_per_epoch,
                       int64_t total_steps)
    : opt_(opt),
      base_lr_(base_lr),
      steps_per_epoch_(std::max<int64_t>(1, steps_per_epoch)),
      total_steps_(std::max<int64_t>(1, total_steps)) {
  if (!(base_lr > 0) || !std::isfinite(base_lr)) throw Error("--lr must be a positive number");
  if (opt.kind != "constant" && opt.kind != "step" && opt.kind != "cosine") {
    throw Error("unknown --schedule '" + opt.kind + "' (expected constant, step or cosine)");
  }
  if (opt.kind == "step" && opt.step_epochs <= 0) throw Error("--step-epochs must be positive");
  if (opt.gamma <= 0) throw Error("--gamma must be positive");
  if (opt.warmup_steps < 0) throw Error("--warmup-steps must be >= 0");
  if (opt.min_lr < 0 || opt.min_lr > base_lr) throw Error("--min-lr must be in [0, lr]");
}

double LrSchedule::at(int64_t step) const {
  double lr = base_lr_;
  if (opt_.kind == "step") {
    int64_t epoch = step / steps_per_epoch_;
    lr = base_lr_ * std::pow(opt_.gamma, static_cast<double>(epoch / opt_.step_epochs));
  } else if (opt_.kind == "cosine") {
    double t = std::min(1.0, static_cast<double>(step) / static_cast<double>(total_steps_));
    lr = opt_.min_lr + 0.5 * (base_lr_ - opt_.min_lr) * (1.0 + std::cos(M_PI * t));
  }
  if (step < opt_.warmup_steps) {
    lr *= static_cast<double>(step + 1) / static_cast<double>(opt_.warmup_steps);
  }
  return lr;
}

}  // namespace minnow
