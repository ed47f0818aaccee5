// Gradual magnitude pruning during training (Zhu & Gupta 2017, "To prune, or not to prune"):
// every Δt optimizer steps from t0 the weights are pruned to
//   s_t = s_f + (s_i - s_f) (1 - (t - t0) / (n Δt))^3,
// fast at first, while the network has redundant weights, slowing towards the final sparsity
// s_f at t0 + n Δt; training then continues at s_f with the masks held.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "compress/prune_masks.h"
#include "passes/prune_weights.h"
#include "train/trainer.h"

namespace minnow::compress {

struct GradualSchedule {
  double initial_sparsity = 0;  // s_i
  int64_t begin_step = 0;       // t0
  int64_t end_step = 0;         // t0 + n Δt: the final sparsity is reached here
  int64_t frequency = 100;      // Δt, in optimizer steps
};

// s_t for a layer whose final sparsity is `final_sparsity` (s_i is capped at it); s_i before
// t0 and s_f from end_step on.
double scheduled_sparsity(const GradualSchedule& s, double final_sparsity, int64_t step);
// Steps at which the weights are pruned: t0, t0 + Δt, ... up to and including end_step.
bool is_pruning_step(const GradualSchedule& s, int64_t step);
// Throws minnow::Error naming the flag at fault (--begin-step, --end-step, --frequency,
// --initial-sparsity) when the schedule is inconsistent or ends after `total_steps`.
void validate_schedule(const GradualSchedule& s, int64_t total_steps);

struct GradualPruneEvent {
  int64_t step = 0;
  double target = 0;    // s_t of the largest final sparsity in the plan
  double achieved = 0;  // zeros / params over all pruned weights after this step's pruning
};

// Drives gradual pruning through the training hooks: prunes `graph`'s weights in place at the
// schedule's steps towards the sparsities of `final_plan` (per-layer thresholds or one global
// threshold), and holds every pruned weight at zero in between (masks; zeros already in the
// weights at the start count as pruned).
class GradualPruner {
 public:
  GradualPruner(Graph& graph, const std::vector<PrunableLayer>& layers,
                passes::MagnitudePlan final_plan, GradualSchedule schedule);
  // Chains the pruning and masking hooks onto `config` (whose lifetime may exceed this
  // object's: the hooks share its state).
  void install(TrainConfig& config);
  const std::vector<GradualPruneEvent>& events() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace minnow::compress
