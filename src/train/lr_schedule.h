// Learning-rate schedules, evaluated per optimizer step.
#pragma once

#include <cstdint>
#include <string>

namespace minnow {

struct ScheduleOptions {
  std::string kind = "constant";  // constant | step | cosine
  int64_t step_epochs = 0;        // step: decay every this many epochs
  double gamma = 0.1;             // step: decay factor
  double min_lr = 0.0;            // cosine: final learning rate
  int64_t warmup_steps = 0;       // linear warm-up from lr/warmup_steps to lr, any kind
};

class LrSchedule {
 public:
  // Throws minnow::Error for unknown kinds or invalid values.
  LrSchedule(const ScheduleOptions& opt, double base_lr, int64_t steps_per_epoch,
             int64_t total_steps);
  // Learning rate for optimizer step `step` (0-based).
  double at(int64_t step) const;

 private:
  ScheduleOptions opt_;
  double base_lr_;
  int64_t steps_per_epoch_, total_steps_;
};

}  // namespace minnow
