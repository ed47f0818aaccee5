#include <gtest/gtest.h>

#include "minnow/error.h"
#include "train/lr_schedule.h"
#include "train/optimizer.h"

namespace minnow {
namespace {

// Three steps on w = [1, -2] with fixed gradients; expected values are from PyTorch 1.13
// (torch.optim.SGD/Adam/AdamW with the same hyper-parameters, Debian python3-torch).
std::vector<float> three_steps(OptimizerOptions o, double lr) {
  std::vector<ParamRef> params(1);
  params[0].name = "w";
  params[0].value = Tensor(DType::kF32, {2});
  params[0].grad = Tensor(DType::kF32, {2});
  params[0].value.f32()[0] = 1.0f;
  params[0].value.f32()[1] = -2.0f;
  auto opt = make_optimizer(o, params);
  const float grads[3][2] = {{0.5f, 0.25f}, {-1.0f, 0.75f}, {0.3f, -0.2f}};
  for (const auto& g : grads) {
    params[0].grad.f32()[0] = g[0];
    params[0].grad.f32()[1] = g[1];
    opt->step(params, lr);
  }
  return {params[0].value.f32()[0], params[0].value.f32()[1]};
}

void expect_pair(const std::vector<float>& got, float a, float b) {
  EXPECT_NEAR(got[0], a, 2e-6);
  EXPECT_NEAR(got[1], b, 2e-6);
}

TEST(Optimizer, SgdMomentumMatchesPyTorch) {
  OptimizerOptions o;
  o.kind = "sgd";
  o.momentum = 0.9;
  expect_pair(three_steps(o, 0.1), 1.0245f, -2.1902502f);
}

TEST(Optimizer, SgdNesterovWithWeightDecayMatchesPyTorch) {
  OptimizerOptions o;
  o.kind = "sgd";
  o.momentum = 0.9;
  o.nesterov = true;
  o.weight_decay = 0.01;
  expect_pair(three_steps(o, 0.1), 1.0341685f, -2.2346268f);
}

TEST(Optimizer, AdamMatchesPyTorch) {
  OptimizerOptions o;
  expect_pair(three_steps(o, 0.1), 0.9473775f, -2.2448783f);
  o.weight_decay = 0.1;
  expect_pair(three_steps(o, 0.1), 0.9219793f, -2.1903949f);
}

TEST(Optimizer, AdamWDecouplesWeightDecayLikePyTorch) {
  OptimizerOptions o;
  o.kind = "adamw";
  o.weight_decay = 0.1;
  expect_pair(three_steps(o, 0.1), 0.9193004f, -2.1825688f);
}

TEST(Optimizer, StateRoundTripContinuesIdentically) {
  OptimizerOptions o;
  std::vector<ParamRef> p(1);
  p[0].name = "w";
  p[0].value = Tensor(DType::kF32, {3});
  p[0].grad = Tensor(DType::kF32, {3});
  for (int i = 0; i < 3; ++i) p[0].grad.f32()[i] = 0.1f * (i + 1);
  auto a = make_optimizer(o, p);
  a->step(p, 0.01);
  std::map<std::string, Tensor> state;
  int64_t steps = 0;
  a->save_state(state, steps);
  EXPECT_EQ(steps, 1);
  auto b = make_optimizer(o, p);
  b->load_state(state, steps);
  std::vector<ParamRef> q = p;
  q[0].value = p[0].value.clone();
  a->step(p, 0.01);
  b->step(q, 0.01);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(p[0].value.f32()[i], q[0].value.f32()[i]);
}

TEST(Optimizer, BadSettingsAreErrors) {
  OptimizerOptions o;
  o.kind = "rmsprop";
  EXPECT_THROW(make_optimizer(o, {}), Error);
  o.kind = "sgd";
  o.weight_decay = -1;
  EXPECT_THROW(make_optimizer(o, {}), Error);
}

TEST(Optimizer, ClipGradNormScalesToTheLimit) {
  std::vector<ParamRef> p(1);
  p[0].value = Tensor(DType::kF32, {2});
  p[0].grad = Tensor(DType::kF32, {2});
  p[0].grad.f32()[0] = 3;
  p[0].grad.f32()[1] = 4;
  EXPECT_NEAR(clip_grad_norm(p, 1.0), 5.0, 1e-9);
  EXPECT_NEAR(p[0].grad.f32()[0], 0.6f, 1e-5);
  EXPECT_NEAR(p[0].grad.f32()[1], 0.8f, 1e-5);
}

TEST(LrSchedule, StepCosineAndWarmup) {
  ScheduleOptions s;
  s.kind = "step";
  s.step_epochs = 2;
  s.gamma = 0.5;
  LrSchedule step(s, 1.0, 10, 100);
  EXPECT_DOUBLE_EQ(step.at(0), 1.0);
  EXPECT_DOUBLE_EQ(step.at(19), 1.0);
  EXPECT_DOUBLE_EQ(step.at(20), 0.5);
  EXPECT_DOUBLE_EQ(step.at(45), 0.25);
  ScheduleOptions c;
  c.kind = "cosine";
  LrSchedule cosine(c, 1.0, 10, 100);
  EXPECT_DOUBLE_EQ(cosine.at(0), 1.0);
  EXPECT_NEAR(cosine.at(50), 0.5, 1e-12);
  EXPECT_NEAR(cosine.at(100), 0.0, 1e-12);
  ScheduleOptions w;
  w.warmup_steps = 4;
  LrSchedule warm(w, 1.0, 10, 100);
  EXPECT_DOUBLE_EQ(warm.at(0), 0.25);
  EXPECT_DOUBLE_EQ(warm.at(3), 1.0);
  EXPECT_DOUBLE_EQ(warm.at(4), 1.0);
  ScheduleOptions bad;
  bad.kind = "exp";
  EXPECT_THROW(LrSchedule(bad, 1.0, 10, 100), Error);
  EXPECT_THROW(LrSchedule(ScheduleOptions{}, -1.0, 10, 100), Error);
}

}  // namespace
}  // namespace minnow
