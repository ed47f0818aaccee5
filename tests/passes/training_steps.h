// Training steps of a graph on its own copy of the parameters, for tests that compare a
// training-time graph pass on and off (the session's options choose the passes).
#pragma once

#include <vector>

#include "core/rng.h"
#include "minnow/graph.h"
#include "train/training_session.h"

namespace minnow::testing {

struct StepResult {
  float loss = 0;                  // of the last step
  std::vector<Tensor> grads;       // per parameter, after the last step
  std::vector<Tensor> statistics;  // the non-trainable initializers (BatchNorm running stats)
};

// A batch of n images (sample shape 1 x side x side) uniform in [-1, 1] and labels i % 10.
struct Batch {
  Tensor x, y;
};
inline Batch random_batch(int64_t n, int64_t side, uint64_t seed) {
  Batch b{Tensor(DType::kF32, {n, 1, side, side}), Tensor(DType::kI64, {n})};
  Rng data(seed);
  for (int64_t i = 0; i < b.x.numel(); ++i) b.x.f32()[i] = data.uniform(-1, 1);
  for (int64_t i = 0; i < n; ++i) b.y.data<int64_t>()[i] = i % 10;
  return b;
}

inline StepResult train_steps(const Graph& g, const SessionOptions& options, const Tensor& x,
                              const Tensor& y, int steps = 1) {
  Graph copy = g;
  for (auto& [name, init] : copy.initializers) init.value = init.value.clone();
  TrainingSession session(copy, options);
  Rng rng(0);
  StepResult r;
  for (int step = 0; step < steps; ++step) r.loss = session.train_step(x, y, rng);
  for (ParamRef& p : session.params()) r.grads.push_back(p.grad.clone());
  for (auto& [name, init] : copy.initializers) {
    if (!init.trainable) r.statistics.push_back(init.value.clone());
  }
  return r;
}

}  // namespace minnow::testing
