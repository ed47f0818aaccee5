#include "compress/prune_schedule.h"

#include <algorithm>
#include <cmath>

#include "minnow/error.h"

namespace minnow::compress {

double scheduled_sparsity(const GradualSchedule& s, double final_sparsity, int64_t step) {
  const double si = std::min(s.initial_sparsity, final_sparsity);
  if (step <= s.begin_step) return si;
  if (step >= s.end_step) return final_sparsity;
  const double progress =
      static_cast<double>(step - s.begin_step) / static_cast<double>(s.end_step - s.begin_step);
  const double r = 1.0 - progress;
  return final_sparsity + (si - final_sparsity) * r * r * r;
}

bool is_pruning_step(const GradualSchedule& s, int64_t step) {
  if (step < s.begin_step || step > s.end_step) return false;
  return step == s.end_step || (step - s.begin_step) % s.frequency == 0;
}

void validate_schedule(const GradualSchedule& s, int64_t total_steps) {
  if (!(s.initial_sparsity >= 0 && s.initial_sparsity < 1)) {
    throw Error("--initial-sparsity must be in [0, 1), got " + std::to_string(s.initial_sparsity));
  }
  if (s.frequency <= 0)
    throw Error("--frequency must be positive, got " + std::to_string(s.frequency));
  if (s.begin_step < 0) throw Error("--begin-step must be >= 0");
  if (s.end_step <= s.begin_step) {
    throw Error("--end-step (" + std::to_string(s.end_step) + ") must be after --begin-step (" +
                std::to_string(s.begin_step) + ")");
  }
  if (s.end_step >= total_steps) {
    throw Error("--end-step " + std::to_string(s.end_step) +
                " is not before the end of training (" + std::to_string(total_steps) +
                " optimizer steps): the final sparsity would never be reached; raise --epochs or "
                "lower --end-step/--end-epoch");
  }
}

struct GradualPruner::State {
  std::map<std::string, Tensor> weights;  // share storage with the graph (and the session)
  passes::MagnitudePlan final_plan;
  GradualSchedule schedule;
  std::shared_ptr<PruneMasks> masks;
  std::vector<GradualPruneEvent> events;

  void prune_at(int64_t step) {
    passes::MagnitudePlan plan;
    double target = 0;
    for (const auto& [name, s] : final_plan.per_layer) {
      plan.per_layer[name] = scheduled_sparsity(schedule, s, step);
      target = std::max(target, plan.per_layer[name]);
    }
    if (!final_plan.global.empty()) {
      plan.global = final_plan.global;
      plan.global_sparsity = scheduled_sparsity(schedule, final_plan.global_sparsity, step);
      target = std::max(target, plan.global_sparsity);
    }
    passes::apply_magnitude_plan(weights, plan);
    int64_t zeros = 0, params = 0;
    for (const auto& [name, t] : weights) {
      masks->update_from_zeros(name, t);
      zeros += masks->pruned_count(name);
      params += t.numel();
    }
    events.push_back(GradualPruneEvent{
        step, target, params ? static_cast<double>(zeros) / static_cast<double>(params) : 0.0});
  }
};

GradualPruner::GradualPruner(Graph& graph, const std::vector<PrunableLayer>& layers,
                             passes::MagnitudePlan final_plan, GradualSchedule schedule)
    : state_(std::make_shared<State>()) {
  state_->final_plan = std::move(final_plan);
  state_->schedule = schedule;
  auto take = [&](const std::string& name) {
    auto it = graph.initializers.find(name);
    if (it == graph.initializers.end()) {
      throw Error("gradual pruning: weight '" + name + "' is not an initializer of the model");
    }
    state_->weights[name] = it->second.value;
  };
  for (const auto& [name, s] : state_->final_plan.per_layer) take(name);
  for (const std::string& name : state_->final_plan.global) take(name);
  state_->masks = std::make_shared<PruneMasks>(PruneMasks::from_zeros(graph, layers));
}

void GradualPruner::install(TrainConfig& config) {
  auto state = state_;
  auto after = config.after_step;
  config.after_step = [state, after](int64_t step, std::vector<ParamRef>& params) {
    if (after) after(step, params);
    if (is_pruning_step(state->schedule, step)) state->prune_at(step);
  };
  // Masks run last in both hooks: gradients of pruned weights are zero when the optimizer
  // steps, and whatever momentum or weight decay did to them is undone after it.
  PruneMasks::install(state->masks, config);
}

const std::vector<GradualPruneEvent>& GradualPruner::events() const { return state_->events; }

}  // namespace minnow::compress
